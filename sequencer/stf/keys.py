"""State keys (protocol section 2): `key(kind, id) = keccak(kind || id)`."""

from __future__ import annotations

from functools import lru_cache

from sequencer.stf.constants import KIND_ACCOUNT, KIND_GLOBAL, KIND_WITHDRAWAL
from sequencer.stf.hashing import keccak

_ZERO_PAD = bytes(12)
_GLOBAL_KEY = keccak(KIND_GLOBAL + bytes(32))


def word_address(address: bytes) -> bytes:
    """`word(address)`: a 20-byte address left-padded to 32 bytes."""
    if len(address) != 20:
        raise ValueError("an address is 20 bytes")
    return _ZERO_PAD + address


def global_key() -> bytes:
    """Key of the Global leaf (`next_deposit_index`)."""
    return _GLOBAL_KEY


@lru_cache(maxsize=1 << 18)
def account_key(address: bytes) -> bytes:
    """Key of the Account leaf of a 20-byte address."""
    return keccak(KIND_ACCOUNT + word_address(address))


def withdrawal_key(account: bytes, nonce: int) -> bytes:
    """Key of the Withdrawal leaf `(account, nonce)`."""
    return keccak(KIND_WITHDRAWAL + keccak(word_address(account) + nonce.to_bytes(32, "big")))
