"""Canonical encodings (protocol sections 2 and 3): transactions and leaf values.

All integers are unsigned big-endian; lengths are exact.
"""

from __future__ import annotations

from sequencer.stf.constants import (
    DEPOSIT_TX_BYTES,
    SIGNED_TX_BYTES,
    TX_TYPE_DEPOSIT,
    TX_TYPE_TRANSFER,
    TX_TYPE_WITHDRAW,
    UINT64_MAX,
    UINT256_MAX,
)
from sequencer.stf.errors import DecodeError
from sequencer.stf.hashing import keccak
from sequencer.stf.types import Account, Deposit, Transfer, Tx, Withdraw

_from_bytes = int.from_bytes
_ZERO12 = bytes(12)


def _check_address(name: str, value: bytes) -> None:
    if type(value) is not bytes or len(value) != 20:
        raise DecodeError(f"{name} must be 20 bytes")


def _check_uint(name: str, value: int, maximum: int) -> None:
    if type(value) is not int or not 0 <= value <= maximum:
        raise DecodeError(f"{name} out of range")


def encode_tx(tx: Tx) -> bytes:
    """The canonical bytes of a transaction; raises DecodeError if a field does not fit."""
    if type(tx) is Deposit:
        _check_uint("queue_index", tx.queue_index, UINT64_MAX)
        _check_address("to", tx.to)
        _check_uint("amount", tx.amount, UINT256_MAX)
        return (
            bytes((TX_TYPE_DEPOSIT,))
            + tx.queue_index.to_bytes(8, "big")
            + tx.to
            + tx.amount.to_bytes(32, "big")
        )
    if type(tx) is Transfer or type(tx) is Withdraw:
        _check_address("from", tx.sender)
        _check_address("to", tx.to)
        _check_uint("amount", tx.amount, UINT256_MAX)
        _check_uint("nonce", tx.nonce, UINT64_MAX)
        _check_uint("r", tx.r, UINT256_MAX)
        _check_uint("s", tx.s, UINT256_MAX)
        _check_uint("v", tx.v, 255)
        kind = TX_TYPE_TRANSFER if type(tx) is Transfer else TX_TYPE_WITHDRAW
        return b"".join(
            (
                bytes((kind,)),
                tx.sender,
                tx.to,
                tx.amount.to_bytes(32, "big"),
                tx.nonce.to_bytes(8, "big"),
                tx.r.to_bytes(32, "big"),
                tx.s.to_bytes(32, "big"),
                bytes((tx.v,)),
            )
        )
    raise DecodeError(f"not a transaction: {type(tx).__name__}")


def decode_tx(raw: bytes) -> Tx:
    """Decode canonical bytes; raises DecodeError on an unknown type or a wrong length."""
    if not raw:
        raise DecodeError("empty transaction")
    kind = raw[0]
    n = len(raw)
    if kind == TX_TYPE_TRANSFER or kind == TX_TYPE_WITHDRAW:
        if n != SIGNED_TX_BYTES:
            raise DecodeError(f"a signed transaction is {SIGNED_TX_BYTES} bytes, got {n}")
        cls = Transfer if kind == TX_TYPE_TRANSFER else Withdraw
        return cls(
            bytes(raw[1:21]),
            bytes(raw[21:41]),
            _from_bytes(raw[41:73], "big"),
            _from_bytes(raw[73:81], "big"),
            _from_bytes(raw[81:113], "big"),
            _from_bytes(raw[113:145], "big"),
            raw[145],
        )
    if kind == TX_TYPE_DEPOSIT:
        if n != DEPOSIT_TX_BYTES:
            raise DecodeError(f"a deposit is {DEPOSIT_TX_BYTES} bytes, got {n}")
        return Deposit(_from_bytes(raw[1:9], "big"), bytes(raw[9:29]), _from_bytes(raw[29:61], "big"))
    raise DecodeError(f"unknown transaction type 0x{kind:02x}")


def tx_hash(raw: bytes) -> bytes:
    """keccak of the encoded transaction: the sequencer's id for it."""
    return keccak(raw)


def encode_account(account: Account) -> bytes:
    """Account leaf value: `word(collateral) || word(nonce)`."""
    return account.collateral.to_bytes(32, "big") + account.nonce.to_bytes(32, "big")


def decode_account(value: bytes) -> Account:
    """Inverse of `encode_account` (64 bytes)."""
    if len(value) != 64:
        raise ValueError("an account value is 64 bytes")
    return Account(_from_bytes(value[:32], "big"), _from_bytes(value[32:], "big"))


def encode_global(next_deposit_index: int) -> bytes:
    """Global leaf value: `word(next_deposit_index)`."""
    return next_deposit_index.to_bytes(32, "big")


def decode_global(value: bytes) -> int:
    """Inverse of `encode_global` (32 bytes)."""
    if len(value) != 32:
        raise ValueError("the global value is 32 bytes")
    return _from_bytes(value, "big")


def encode_withdrawal_value(l1_recipient: bytes, amount: int) -> bytes:
    """Withdrawal leaf value: `word(l1_recipient) || word(amount)`."""
    if len(l1_recipient) != 20:
        raise ValueError("an address is 20 bytes")
    return _ZERO12 + l1_recipient + amount.to_bytes(32, "big")


def decode_withdrawal_value(value: bytes) -> tuple[bytes, int]:
    """Inverse of `encode_withdrawal_value`: `(l1_recipient, amount)`."""
    if len(value) != 64 or value[:12] != _ZERO12:
        raise ValueError("a withdrawal value is word(address) || word(amount)")
    return bytes(value[12:32]), _from_bytes(value[32:], "big")


def deposit_hash(index: int, to: bytes, amount: int) -> bytes:
    """`keccak(word(index) || word(to) || word(amount))`, as the Bridge stores it."""
    if len(to) != 20:
        raise ValueError("an address is 20 bytes")
    return keccak(index.to_bytes(32, "big") + _ZERO12 + to + amount.to_bytes(32, "big"))
