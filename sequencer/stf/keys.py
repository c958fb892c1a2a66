"""State keys (protocol section 2): `key(kind, id) = keccak(kind || id)`."""

from __future__ import annotations

from functools import lru_cache

from sequencer.stf.constants import (
    KIND_ACCOUNT,
    KIND_GLOBAL,
    KIND_INSURANCE,
    KIND_MARKETS,
    KIND_ORACLE,
    KIND_ORDER,
    KIND_WITHDRAWAL,
)
from sequencer.stf.hashing import keccak

_ZERO_PAD = bytes(12)
_GLOBAL_KEY = keccak(KIND_GLOBAL + bytes(32))
_MARKETS_KEY = keccak(KIND_MARKETS + bytes(32))
_INSURANCE_KEY = keccak(KIND_INSURANCE + bytes(32))
_ORACLE_KEY = keccak(KIND_ORACLE + bytes(32))


def word_address(address: bytes) -> bytes:
    """`word(address)`: a 20-byte address left-padded to 32 bytes."""
    if len(address) != 20:
        raise ValueError("an address is 20 bytes")
    return _ZERO_PAD + address


def global_key() -> bytes:
    """Key of the Global leaf (`next_queue_index`)."""
    return _GLOBAL_KEY


def markets_key() -> bytes:
    """Key of the Markets leaf (every market's record)."""
    return _MARKETS_KEY


def insurance_key() -> bytes:
    """Key of the Insurance leaf."""
    return _INSURANCE_KEY


def oracle_key() -> bytes:
    """Key of the Oracle leaf (the price committee)."""
    return _ORACLE_KEY


def order_key(digest: bytes) -> bytes:
    """Key of the Order leaf of an order's (or bundle's) EIP-712 digest."""
    return keccak(KIND_ORDER + digest)


@lru_cache(maxsize=1 << 18)
def account_key(address: bytes) -> bytes:
    """Key of the Account leaf of a 20-byte address."""
    return keccak(KIND_ACCOUNT + word_address(address))


def withdrawal_key(account: bytes, nonce: int) -> bytes:
    """Key of the Withdrawal leaf `(account, nonce)`."""
    return keccak(KIND_WITHDRAWAL + keccak(word_address(account) + nonce.to_bytes(32, "big")))
