"""EIP-712 signatures of every signed structure (protocol section 3, "Signed structures").

Digest: `keccak(0x19 || 0x01 || domain_separator || hashStruct(message))`. A signature is valid iff
`v in {27, 28}`, `0 < r < n`, `0 < s <= n/2` and the recovered address is the named signer. The
type strings are the ones a wallet (`eth_signTypedData_v4`) hashes, so a trader can sign orders
with MetaMask.
"""

from __future__ import annotations

import struct

from coincurve import PrivateKey, PublicKey

from sequencer.stf.constants import SECP256K1_N, SECP256K1_N_HALF
from sequencer.stf.hashing import keccak
from sequencer.stf.types import (
    Bundle,
    ChainConfig,
    Leg,
    Liquidate,
    Order,
    Signature,
    SignedOrder,
    SignedTx,
    Transfer,
    Withdraw,
)

TRANSFER_TYPE = "Transfer(address from,address to,uint256 amount,uint64 nonce)"
WITHDRAW_TYPE = "Withdraw(address from,address to,uint256 amount,uint64 nonce)"
ORDER_TYPE = (
    "Order(address trader,uint16 market,uint8 side,uint64 price,uint64 size,uint8 flags,"
    "uint64 expiry,uint64 salt)"
)
CANCEL_TYPE = "Cancel(Order order)" + ORDER_TYPE
PRICE_TYPE = "Price(uint16 market,uint64 mark,uint64 index,uint64 timestamp)"
LIQUIDATE_TYPE = "Liquidate(address liquidator,address account,uint16 market,uint64 size,uint64 nonce)"
LEG_TYPE = "Leg(uint16 market,uint8 side,uint64 price,uint64 size)"
BUNDLE_TYPE = "Bundle(address trader,Leg[] legs,uint64 expiry,uint64 salt)" + LEG_TYPE

TRANSFER_TYPEHASH = keccak(TRANSFER_TYPE.encode())
"""keccak of the Transfer type string."""
WITHDRAW_TYPEHASH = keccak(WITHDRAW_TYPE.encode())
"""keccak of the Withdraw type string."""
ORDER_TYPEHASH = keccak(ORDER_TYPE.encode())
"""keccak of the Order type string."""
CANCEL_TYPEHASH = keccak(CANCEL_TYPE.encode())
"""keccak of the Cancel type string (with the Order type appended, as EIP-712 encodes it)."""
PRICE_TYPEHASH = keccak(PRICE_TYPE.encode())
"""keccak of the Price type string."""
LIQUIDATE_TYPEHASH = keccak(LIQUIDATE_TYPE.encode())
"""keccak of the Liquidate type string."""
LEG_TYPEHASH = keccak(LEG_TYPE.encode())
"""keccak of the Leg type string."""
BUNDLE_TYPEHASH = keccak(BUNDLE_TYPE.encode())
"""keccak of the Bundle type string (with the Leg type appended)."""

_ZERO12 = bytes(12)
_PREFIX = b"\x19\x01"
_ORDER_WORDS = struct.Struct(">32s12x20s30xH31xB24xQ24xQ31xB24xQ24xQ")
"""The type hash and the eight words of an `Order` (`order_struct_hash`), packed at once when
every field fits its EIP-712 type."""


def _w(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _digest(config: ChainConfig, struct_hash_: bytes) -> bytes:
    return keccak(_PREFIX + config.domain_separator + struct_hash_)


# ---- struct hashes ---------------------------------------------------------------------


def struct_hash(tx: SignedTx) -> bytes:
    """`hashStruct` of a Transfer or Withdraw message (signature fields excluded)."""
    typehash = TRANSFER_TYPEHASH if type(tx) is Transfer else WITHDRAW_TYPEHASH
    return keccak(typehash + _ZERO12 + tx.sender + _ZERO12 + tx.to + _w(tx.amount) + _w(tx.nonce))


def order_struct_hash(order: Order) -> bytes:
    """`hashStruct(Order)`."""
    o = order
    if type(o.trader) is bytes and len(o.trader) == 20:
        try:
            return keccak(
                _ORDER_WORDS.pack(
                    ORDER_TYPEHASH, o.trader, o.market, o.side, o.price, o.size, o.flags, o.expiry, o.salt
                )
            )
        except struct.error:
            pass  # a value wider than its type: hashed as the 32-byte words below
    return keccak(
        ORDER_TYPEHASH
        + _ZERO12
        + o.trader
        + _w(o.market)
        + _w(o.side)
        + _w(o.price)
        + _w(o.size)
        + _w(o.flags)
        + _w(o.expiry)
        + _w(o.salt)
    )


def cancel_struct_hash(order: Order) -> bytes:
    """`hashStruct(Cancel{order})`."""
    return keccak(CANCEL_TYPEHASH + order_struct_hash(order))


def price_struct_hash(market: int, mark: int, index: int, timestamp: int) -> bytes:
    """`hashStruct(Price)`."""
    return keccak(PRICE_TYPEHASH + _w(market) + _w(mark) + _w(index) + _w(timestamp))


def liquidate_struct_hash(tx: Liquidate) -> bytes:
    """`hashStruct(Liquidate)`."""
    return keccak(
        LIQUIDATE_TYPEHASH
        + _ZERO12
        + tx.liquidator
        + _ZERO12
        + tx.account
        + _w(tx.market)
        + _w(tx.size)
        + _w(tx.nonce)
    )


def leg_struct_hash(leg: Leg) -> bytes:
    """`hashStruct(Leg)`."""
    return keccak(LEG_TYPEHASH + _w(leg.market) + _w(leg.side) + _w(leg.price) + _w(leg.size))


def bundle_struct_hash(bundle: Bundle) -> bytes:
    """`hashStruct(Bundle)`: the legs array is `keccak` of the legs' struct hashes."""
    legs = keccak(b"".join(leg_struct_hash(leg) for leg in bundle.legs))
    return keccak(BUNDLE_TYPEHASH + _ZERO12 + bundle.trader + legs + _w(bundle.expiry) + _w(bundle.salt))


# ---- digests ---------------------------------------------------------------------------


def signing_digest(tx: SignedTx, config: ChainConfig) -> bytes:
    """The digest a Transfer's or Withdraw's sender signs."""
    return _digest(config, struct_hash(tx))


def order_digest(order: Order, config: ChainConfig) -> bytes:
    """The digest a trader signs for an order; it also names the order's Order leaf."""
    return _digest(config, order_struct_hash(order))


def cancel_digest(order: Order, config: ChainConfig) -> bytes:
    """The digest a trader signs to cancel an order."""
    return _digest(config, cancel_struct_hash(order))


def price_digest(market: int, mark: int, index: int, timestamp: int, config: ChainConfig) -> bytes:
    """The digest a committee member signs for a price."""
    return _digest(config, price_struct_hash(market, mark, index, timestamp))


def liquidate_digest(tx: Liquidate, config: ChainConfig) -> bytes:
    """The digest a liquidator signs."""
    return _digest(config, liquidate_struct_hash(tx))


def bundle_digest(bundle: Bundle, config: ChainConfig) -> bytes:
    """The digest a trader signs for a bundle; it also names the bundle's Order leaf."""
    return _digest(config, bundle_struct_hash(bundle))


# ---- recovery --------------------------------------------------------------------------


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


def recover_sig(digest: bytes, sig: Signature) -> bytes | None:
    """`recover_digest` with a `Signature` record."""
    return recover_digest(digest, sig.r, sig.s, sig.v)


def recover_signer(tx: SignedTx, config: ChainConfig) -> bytes | None:
    """The address that signed a Transfer or Withdraw, or None if the signature is invalid."""
    return recover_digest(signing_digest(tx, config), tx.r, tx.s, tx.v)


def signature_valid(tx: SignedTx, config: ChainConfig) -> bool:
    """True iff `tx` carries a valid signature by `tx.sender`."""
    return recover_signer(tx, config) == tx.sender


def order_signed(signed: SignedOrder, config: ChainConfig) -> bool:
    """True iff the order carries a valid signature by its trader."""
    return recover_sig(order_digest(signed.order, config), signed.sig) == signed.order.trader


# ---- signing (wallets, tests, the devnet's committee) ----------------------------------


def address_of(private_key: bytes) -> bytes:
    """The address of a 32-byte secp256k1 private key."""
    return public_key_address(PrivateKey(private_key).public_key)


def sign_digest(private_key: bytes, digest: bytes) -> tuple[int, int, int]:
    """`(r, s, v)` of a 32-byte digest (low s, v in {27, 28})."""
    sig = PrivateKey(private_key).sign_recoverable(digest, hasher=None)  # libsecp256k1: low s
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64] + 27


def sign(private_key: bytes, digest: bytes) -> Signature:
    """A `Signature` of a 32-byte digest."""
    return Signature(*sign_digest(private_key, digest))


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


def sign_order(private_key: bytes, order: Order, config: ChainConfig) -> SignedOrder:
    """`order` signed by `private_key` (whose address should be `order.trader`)."""
    return SignedOrder(order, sign(private_key, order_digest(order, config)))


def sign_cancel(private_key: bytes, order: Order, config: ChainConfig) -> Signature:
    """The trader's signature cancelling `order`."""
    return sign(private_key, cancel_digest(order, config))


def sign_price(
    private_key: bytes, market: int, mark: int, index: int, timestamp: int, config: ChainConfig
) -> Signature:
    """A committee member's signature of a price."""
    return sign(private_key, price_digest(market, mark, index, timestamp, config))


def sign_liquidate(
    private_key: bytes, account: bytes, market: int, size: int, nonce: int, config: ChainConfig
) -> Liquidate:
    """A Liquidate by the key's address, signed."""
    unsigned = Liquidate(address_of(private_key), account, market, size, nonce, Signature(0, 0, 0))
    return Liquidate(
        unsigned.liquidator,
        account,
        market,
        size,
        nonce,
        sign(private_key, liquidate_digest(unsigned, config)),
    )


def sign_bundle(private_key: bytes, bundle: Bundle, config: ChainConfig) -> Signature:
    """The trader's signature of a bundle."""
    return sign(private_key, bundle_digest(bundle, config))
