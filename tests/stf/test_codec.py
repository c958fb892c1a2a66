"""Canonical encodings: exact lengths, round trips, refusals."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from sequencer.stf.codec import (
    decode_account,
    decode_tx,
    decode_withdrawal_value,
    deposit_hash,
    encode_account,
    encode_tx,
    encode_withdrawal_value,
    read_acct,
    tx_hash,
    write_acct,
)
from sequencer.stf.errors import DecodeError, InvalidTransaction
from sequencer.stf.hashing import keccak
from sequencer.stf.types import (
    Account,
    Acct,
    BatchHeader,
    Deposit,
    Position,
    Transfer,
    Withdraw,
    checksum_address,
)

addresses = st.binary(min_size=20, max_size=20)
u256 = st.integers(0, 2**256 - 1)
u64 = st.integers(0, 2**64 - 1)
deposits = st.builds(Deposit, u64, addresses, u256)
signed = st.one_of(
    st.builds(Transfer, addresses, addresses, u256, u64, u256, u256, st.integers(0, 255)),
    st.builds(Withdraw, addresses, addresses, u256, u64, u256, u256, st.integers(0, 255)),
)


@given(st.one_of(deposits, signed))
def test_tx__round_trips_with_exact_length(tx: Deposit | Transfer | Withdraw) -> None:
    raw = encode_tx(tx)
    assert len(raw) == (61 if isinstance(tx, Deposit) else 146)
    assert decode_tx(raw) == tx
    assert tx_hash(raw) == keccak(raw)


def test_tx__layout_of_transfer() -> None:
    tx = Transfer(b"\xaa" * 20, b"\xbb" * 20, 5, 7, 1, 2, 27)
    raw = encode_tx(tx)
    assert raw == (
        b"\x02" + b"\xaa" * 20 + b"\xbb" * 20 + (5).to_bytes(32, "big") + (7).to_bytes(8, "big")
        + (1).to_bytes(32, "big") + (2).to_bytes(32, "big") + b"\x1b"
    )  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 61,
        b"\x0d" * 146,
        b"\x0c" * 9,
        b"\xff",
        b"\x01" * 60,
        b"\x01" * 62,
        b"\x02" * 145,
        b"\x02" * 147,
        b"\x03" * 61,
        b"\x01" * 146,
    ],
)
def test_decode__refuses_unknown_type_and_wrong_length(raw: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode_tx(raw)
    assert isinstance(info.value, InvalidTransaction) and info.value.code == "malformed"


@given(st.binary(max_size=300))
def test_decode__any_bytes_decode_or_raise_decode_error(raw: bytes) -> None:
    try:
        tx = decode_tx(raw)
    except DecodeError:
        return
    assert encode_tx(tx) == raw


@pytest.mark.parametrize(
    "tx",
    [
        Deposit(2**64, b"\x01" * 20, 1),
        Deposit(0, b"\x01" * 19, 1),
        Transfer(b"\x01" * 20, b"\x02" * 20, 2**256, 0, 1, 1, 27),
        Transfer(b"\x01" * 20, b"\x02" * 20, -1, 0, 1, 1, 27),
        Withdraw(b"\x01" * 20, b"\x02" * 20, 1, 0, 1, 1, 256),
    ],
)
def test_encode__refuses_fields_that_do_not_fit(tx: Deposit | Transfer | Withdraw) -> None:
    with pytest.raises(DecodeError):
        encode_tx(tx)


i256 = st.integers(-(2**255), 2**255 - 1)
positions = st.lists(
    st.builds(Position, st.integers(0, 15), i256.filter(bool), i256, i256),
    max_size=8,
    unique_by=lambda p: p.market,
).map(lambda ps: tuple(sorted(ps, key=lambda p: p.market)))


@given(i256, u256, positions)
def test_account__round_trips_as_abi_words(collateral: int, nonce: int, held: tuple[Position, ...]) -> None:
    value = encode_account(Account(collateral, nonce, held))
    words = [collateral, nonce] + [
        x for p in held for x in (p.market, p.size, p.open_notional, p.funding_snapshot)
    ]
    types = ["int256", "uint256"] + ["uint256", "int256", "int256", "int256"] * len(held)
    assert value == abi_encode(types, words)
    assert decode_account(value) == Account(collateral, nonce, held)


i128 = st.integers(-(2**127), 2**127 - 1)


@given(
    st.integers(-(2**127), 2**127),
    st.integers(0, 2**64),
    st.dictionaries(st.integers(0, 15), st.tuples(i128.filter(bool), i128, i128), max_size=8),
)
def test_read_write_acct__round_trip(
    collateral: int, nonce: int, held: dict[int, tuple[int, int, int]]
) -> None:
    a = Acct(collateral, nonce, {m: list(p) for m, p in held.items()})
    b = read_acct(write_acct(a))
    assert (b.collateral, b.nonce, b.positions) == (a.collateral, a.nonce, a.positions)


@given(addresses, u256)
def test_withdrawal_value__is_two_abi_words(to: bytes, amount: int) -> None:
    value = encode_withdrawal_value(to, amount)
    assert value == abi_encode(["address", "uint256"], [to, amount])
    assert decode_withdrawal_value(value) == (to, amount)


@given(u64, addresses, u256)
def test_deposit_hash__is_keccak_of_abi_words(index: int, to: bytes, amount: int) -> None:
    assert deposit_hash(index, to, amount) == keccak(
        abi_encode(["uint256", "address", "uint256"], [index, to, amount])
    )


@given(st.integers(0, 2**64), st.binary(min_size=32, max_size=32), addresses, st.integers(1, 2**40))
def test_batch_header__abi_encoding_and_hash(n: int, root: bytes, sequencer: bytes, ts: int) -> None:
    header = BatchHeader(n, root, keccak(root), root[::-1], bytes(32), 3, n, n + 2, ts - 1, sequencer, ts)
    types = [
        "uint256",
        "bytes32",
        "bytes32",
        "bytes32",
        "bytes32",
        "uint256",
        "uint256",
        "uint256",
        "uint256",
        "address",
        "uint256",
    ]
    expected = abi_encode([f"({','.join(types)})"], [header.as_tuple()])
    assert header.encode() == expected == abi_encode(types, list(header.as_tuple()))
    assert header.hash() == keccak(expected)
    assert BatchHeader.decode(header.encode()) == header
    assert header.as_tuple()[9] == to_checksum_address(sequencer) == checksum_address(sequencer)
