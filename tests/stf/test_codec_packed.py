"""The packed encodings of orders and signatures (`encode_order`, `encode_signature`,
`order_struct_hash`) give exactly what the field-by-field definitions give: the same bytes for
every value in range, the same error for every value out of range or of the wrong type. The
packed decoding (`decode_order`) reads every byte string, at every offset, as field-by-field
reading does."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sequencer.stf.codec import _check_address, _u, _uint, decode_order, encode_order, encode_signature
from sequencer.stf.eip712 import _ZERO12, ORDER_TYPEHASH, _w, order_struct_hash
from sequencer.stf.hashing import keccak
from sequencer.stf.types import Order, Signature


def encode_order_by_field(o: Order) -> bytes:
    """`encode_order` as the protocol defines it, one checked field after the other."""
    _check_address("trader", o.trader)
    return b"".join(
        (
            o.trader,
            _uint("market", o.market, 2),
            _uint("side", o.side, 1),
            _uint("price", o.price, 8),
            _uint("size", o.size, 8),
            _uint("flags", o.flags, 1),
            _uint("expiry", o.expiry, 8),
            _uint("salt", o.salt, 8),
        )
    )


def encode_signature_by_field(sig: Signature) -> bytes:
    return _uint("r", sig.r, 32) + _uint("s", sig.s, 32) + _uint("v", sig.v, 1)


def order_struct_hash_by_word(o: Order) -> bytes:
    words = (o.market, o.side, o.price, o.size, o.flags, o.expiry, o.salt)
    return keccak(ORDER_TYPEHASH + _ZERO12 + o.trader + b"".join(_w(w) for w in words))


def outcome(f: Any, *args: Any) -> tuple[str, object]:
    try:
        return "ok", f(*args)
    except Exception as exc:
        return type(exc).__name__, str(exc)


EDGES = [0, 1, 255, 256, 2**16 - 1, 2**16, 2**64 - 1, 2**64, 2**256 - 1, 2**256, -1, True]
values = st.one_of(st.sampled_from(EDGES), st.integers(0, 2**70), st.integers(-(2**70), 2**300))
traders = st.one_of(st.binary(min_size=20, max_size=20), st.binary(min_size=19, max_size=21))
orders = st.builds(Order, traders, values, values, values, values, values, values, values)


@given(orders)
def test_encode_order__packed__same_bytes_or_same_error_as_field_by_field(o: Order) -> None:
    assert outcome(encode_order, o) == outcome(encode_order_by_field, o)


@given(orders)
def test_order_struct_hash__packed__same_hash_or_same_error_as_word_by_word(o: Order) -> None:
    assert outcome(order_struct_hash, o) == outcome(order_struct_hash_by_word, o)


@given(st.builds(Signature, values, values, values))
def test_encode_signature__packed__same_bytes_or_same_error_as_field_by_field(sig: Signature) -> None:
    assert outcome(encode_signature, sig) == outcome(encode_signature_by_field, sig)


def decode_order_by_field(data: bytes, b: int) -> Order:
    """`decode_order` as the protocol defines it, one field after the other."""
    return Order(
        bytes(data[b : b + 20]),
        _u(data, b + 20, 2),
        data[b + 22],
        _u(data, b + 23, 8),
        _u(data, b + 31, 8),
        data[b + 39],
        _u(data, b + 40, 8),
        _u(data, b + 48, 8),
    )


@given(st.binary(min_size=40, max_size=140), st.integers(0, 100))
def test_decode_order__packed__same_order_as_field_by_field_at_every_offset(data: bytes, start: int) -> None:
    try:
        expected: Any = decode_order_by_field(data, start)
    except IndexError as exc:  # a short string: the same error either way
        expected = type(exc)
    try:
        got: Any = decode_order(data, start)
    except IndexError as exc:
        got = type(exc)
    assert got == expected
    if start + 56 <= len(data):
        assert decode_order(bytearray(data), start) == expected  # a bytearray reads the same
