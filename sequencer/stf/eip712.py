"""EIP-712 signatures of Transfer and Withdraw (protocol section 3).

Digest: `keccak(0x19 || 0x01 || domain_separator || struct_hash)`. A signature is valid iff
`v in {27, 28}`, `0 < r < n`, `0 < s <= n/2` and the recovered address is `from`.
"""

from __future__ import annotations

from coincurve import PrivateKey, PublicKey

from sequencer.stf.constants import SECP256K1_N, SECP256K1_N_HALF
from sequencer.stf.hashing import keccak
from sequencer.stf.types import ChainConfig, SignedTx, Transfer, Withdraw

TRANSFER_TYPEHASH = keccak(b"Transfer(address from,address to,uint256 amount,uint64 nonce)")
"""keccak of the Transfer type string."""

WITHDRAW_TYPEHASH = keccak(b"Withdraw(address from,address to,uint256 amount,uint64 nonce)")
"""keccak of the Withdraw type string."""

_ZERO12 = bytes(12)
_PREFIX = b"\x19\x01"


def _struct_hash(typehash: bytes, sender: bytes, to: bytes, amount: int, nonce: int) -> bytes:
    return keccak(
        typehash + _ZERO12 + sender + _ZERO12 + to + amount.to_bytes(32, "big") + nonce.to_bytes(32, "big")
    )


def struct_hash(tx: SignedTx) -> bytes:
    """`hashStruct` of the transaction's message (signature fields excluded)."""
    typehash = TRANSFER_TYPEHASH if type(tx) is Transfer else WITHDRAW_TYPEHASH
    return _struct_hash(typehash, tx.sender, tx.to, tx.amount, tx.nonce)


def signing_digest(tx: SignedTx, config: ChainConfig) -> bytes:
    """The 32-byte digest the sender signs."""
    return keccak(_PREFIX + config.domain_separator + struct_hash(tx))


def public_key_address(public_key: PublicKey) -> bytes:
    """The 20-byte Ethereum address of a public key."""
    return keccak(public_key.format(compressed=False)[1:])[12:]


def recover_digest(digest: bytes, r: int, s: int, v: int) -> bytes | None:
    """The address that signed a 32-byte digest, or None if the signature is invalid or malleable."""
    if (v != 27 and v != 28) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N_HALF:
        return None
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v - 27,))
    try:
        public_key = PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except ValueError:
        return None
    return public_key_address(public_key)


def recover_signer(tx: SignedTx, config: ChainConfig) -> bytes | None:
    """The address that signed `tx`, or None if the signature is invalid or malleable."""
    return recover_digest(signing_digest(tx, config), tx.r, tx.s, tx.v)


def signature_valid(tx: SignedTx, config: ChainConfig) -> bool:
    """True iff `tx` carries a valid signature by `tx.sender`."""
    return recover_signer(tx, config) == tx.sender


def address_of(private_key: bytes) -> bytes:
    """The address of a 32-byte secp256k1 private key."""
    return public_key_address(PrivateKey(private_key).public_key)


def sign_digest(private_key: bytes, digest: bytes) -> tuple[int, int, int]:
    """`(r, s, v)` of a 32-byte digest (low s, v in {27, 28})."""
    sig = PrivateKey(private_key).sign_recoverable(digest, hasher=None)  # libsecp256k1: low s
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64] + 27


def sign_transfer(private_key: bytes, to: bytes, amount: int, nonce: int, config: ChainConfig) -> Transfer:
    """A Transfer from the key's address, signed."""
    unsigned = Transfer(address_of(private_key), to, amount, nonce, 0, 0, 0)
    r, s, v = sign_digest(private_key, signing_digest(unsigned, config))
    return Transfer(unsigned.sender, to, amount, nonce, r, s, v)


def sign_withdraw(private_key: bytes, to: bytes, amount: int, nonce: int, config: ChainConfig) -> Withdraw:
    """A Withdraw from the key's address to L1 address `to`, signed."""
    unsigned = Withdraw(address_of(private_key), to, amount, nonce, 0, 0, 0)
    r, s, v = sign_digest(private_key, signing_digest(unsigned, config))
    return Withdraw(unsigned.sender, to, amount, nonce, r, s, v)
