"""Records of the state machine: transactions, accounts, chain config, batch header, L1 context.

Addresses are 20-byte `bytes`, hashes and roots 32-byte `bytes`, amounts integers in the
collateral token's smallest unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from sequencer.stf.constants import EIP712_NAME, EIP712_VERSION
from sequencer.stf.hashing import keccak

EIP712_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
"""keccak of the EIP-712 domain type string."""


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: bytes) -> bytes:
    if len(address) != 20:
        raise ValueError("an address is 20 bytes")
    return bytes(12) + address


def checksum_address(address: bytes) -> str:
    """The EIP-55 mixed-case hex form of a 20-byte address (what web3 expects)."""
    hex_address = address.hex()
    digest = keccak(hex_address.encode()).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hex_address))


@dataclass(frozen=True, slots=True)
class Deposit:
    """Credit a deposit made on the L1 Bridge (consumed in queue order)."""

    queue_index: int
    """Position of the deposit in the Bridge's queue (uint64)."""
    to: bytes
    """Rollup account credited."""
    amount: int
    """Collateral credited."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """Move collateral between two rollup accounts (EIP-712 signed by `sender`)."""

    sender: bytes
    """The signer and debited account (`from`)."""
    to: bytes
    """The credited account."""
    amount: int
    """Collateral moved (> 0)."""
    nonce: int
    """The sender's next nonce (uint64)."""
    r: int
    """Signature r."""
    s: int
    """Signature s (low half of the curve order)."""
    v: int
    """Signature v (27 or 28)."""


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Move collateral out to an L1 address (EIP-712 signed by `sender`)."""

    sender: bytes
    """The signer and debited account (`from`)."""
    to: bytes
    """The L1 recipient."""
    amount: int
    """Collateral withdrawn (> 0)."""
    nonce: int
    """The sender's next nonce (uint64); also names the withdrawal leaf."""
    r: int
    """Signature r."""
    s: int
    """Signature s (low half of the curve order)."""
    v: int
    """Signature v (27 or 28)."""


Tx = Deposit | Transfer | Withdraw
"""A decoded transaction."""

SignedTx = Transfer | Withdraw
"""A transaction carrying an EIP-712 signature."""


@dataclass(frozen=True, slots=True)
class Account:
    """The value of an Account leaf."""

    collateral: int = 0
    """Collateral held, in the token's smallest unit."""
    nonce: int = 0
    """Next nonce the account must sign with."""


EMPTY_ACCOUNT = Account(0, 0)
"""What an absent Account leaf means."""


@dataclass(frozen=True)
class ChainConfig:
    """What binds signatures to one deployment: the L1 chain id and the Rollup address."""

    chain_id: int
    """EIP-155 chain id of the L1."""
    rollup: bytes
    """Address of the Rollup contract (the EIP-712 `verifyingContract`)."""

    @cached_property
    def domain_separator(self) -> bytes:
        """The EIP-712 domain separator (computed once per config)."""
        return keccak(
            EIP712_DOMAIN_TYPEHASH
            + keccak(EIP712_NAME.encode())
            + keccak(EIP712_VERSION.encode())
            + _word(self.chain_id)
            + _address_word(self.rollup)
        )


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """A batch header as stored on L1 (protocol section 4); hashed as ten ABI words."""

    index: int
    """Position in the chain of batches, from 0."""
    prev_root: bytes
    """State root before the batch."""
    post_root: bytes
    """State root after the batch (= the last per-tx root)."""
    tx_root: bytes
    """Root of the transaction tree."""
    roots_root: bytes
    """Root of the per-transaction state-root tree."""
    tx_count: int
    """Number of transactions."""
    queue_start: int
    """First deposit-queue index the batch may consume."""
    queue_end: int
    """One past the last deposit index consumed."""
    sequencer: bytes
    """Address of the sequencer that appended the batch."""
    timestamp: int
    """L1 block timestamp of the append."""

    def encode(self) -> bytes:
        """`abi.encode(header)`: ten 32-byte words in field order."""
        for name in ("prev_root", "post_root", "tx_root", "roots_root"):
            if len(getattr(self, name)) != 32:
                raise ValueError(f"{name} is 32 bytes")
        return b"".join(
            (
                _word(self.index),
                self.prev_root,
                self.post_root,
                self.tx_root,
                self.roots_root,
                _word(self.tx_count),
                _word(self.queue_start),
                _word(self.queue_end),
                _address_word(self.sequencer),
                _word(self.timestamp),
            )
        )

    def hash(self) -> bytes:
        """`batch_hash = keccak(abi.encode(header))`."""
        return keccak(self.encode())

    def as_tuple(self) -> tuple[int, bytes, bytes, bytes, bytes, int, int, int, str, int]:
        """The header as a web3 struct argument (field order; the address EIP-55 checksummed)."""
        return (
            self.index,
            self.prev_root,
            self.post_root,
            self.tx_root,
            self.roots_root,
            self.tx_count,
            self.queue_start,
            self.queue_end,
            checksum_address(self.sequencer),
            self.timestamp,
        )

    @classmethod
    def decode(cls, data: bytes) -> BatchHeader:
        """Inverse of `encode` (320 bytes)."""
        if len(data) != 320:
            raise ValueError("an encoded header is 320 bytes")
        w = [data[i : i + 32] for i in range(0, 320, 32)]
        if w[8][:12] != bytes(12):
            raise ValueError("sequencer word is not an address")

        def n(b: bytes) -> int:
            return int.from_bytes(b, "big")

        return cls(n(w[0]), w[1], w[2], w[3], w[4], n(w[5]), n(w[6]), n(w[7]), w[8][12:], n(w[9]))


@dataclass(frozen=True)
class L1Context:
    """What the state machine needs from L1 to apply one batch."""

    queue_end: int
    """The batch's `queue_end`: deposits at or after it may not be consumed."""
    deposit_hashes: Mapping[int, bytes] = field(default_factory=dict)
    """`deposit_hash(i)` as the Bridge stores it, for (at least) every `i < queue_end` in play."""
