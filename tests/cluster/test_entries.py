"""The log's entry envelope (docs/protocol.md, "The sequencer set's log"): every kind reads back
as written, byte for byte as the protocol lays it out, and any other bytes are `BadEntry`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequencer.cluster.entries import (
    BatchPosted,
    Round,
    TermStart,
    decode_entry,
    encode_entry,
)
from sequencer.cluster.errors import BadEntry
from sequencer.journal import Commit, OrderRecords, TxRow

u64 = st.integers(0, 2**64 - 1)
u32 = st.integers(0, 2**32 - 1)
b20, b32 = st.binary(min_size=20, max_size=20), st.binary(min_size=32, max_size=32)
texts = st.none() | st.text(max_size=40)
records = st.builds(
    OrderRecords,
    inserts=st.lists(
        st.tuples(
            b32,
            u64,
            st.text(max_size=8),
            b20,
            st.integers(-(2**31), 2**31 - 1),
            st.binary(max_size=130),
            st.text(max_size=10),
            texts,
        ),
        max_size=3,
    ),
    statuses=st.lists(st.tuples(b32, st.text(max_size=10), texts), max_size=3),
    moves=st.lists(st.tuples(u64, u64), max_size=2),
    fills=st.lists(st.tuples(u64, st.integers(0, 255), b20, b20, b32, b32), max_size=3),
)
commits = st.builds(
    Commit,
    st.lists(st.builds(TxRow, u64, u64, u64, st.binary(max_size=64)), max_size=4).map(tuple),
    st.none() | records.filter(bool),
)
rounds = st.builds(Round, u64, st.lists(commits, max_size=3).map(tuple))
terms = st.builds(TermStart, u64, st.text(max_size=60))
batches = st.builds(
    BatchPosted,
    u64,
    u64,
    b32,
    b32,
    b32,
    st.lists(u64, max_size=5).map(tuple),
)


@given(st.one_of(rounds, terms, batches))
def test_entry__encoded__decodes_to_itself(entry: Round | TermStart | BatchPosted) -> None:
    assert decode_entry(encode_entry(entry)) == entry


@given(rounds, st.data())
def test_round__cut_short_or_a_byte_changed__bad_entry_or_a_round(entry: Round, data: st.DataObject) -> None:
    encoded = encode_entry(entry)
    cut = data.draw(st.integers(1, len(encoded) - 1))
    with pytest.raises(BadEntry):
        decode_entry(encoded[:cut])
    at = data.draw(st.integers(0, len(encoded) - 1))
    changed = bytearray(encoded)
    changed[at] ^= data.draw(st.integers(1, 255))
    try:
        decoded = decode_entry(bytes(changed))
    except BadEntry:
        return
    assert encode_entry(decoded) == bytes(changed)  # whatever decodes reads back as those bytes


def test_entry__layout__kind_byte_then_big_endian_fields() -> None:
    commit = Commit(
        (TxRow(seq=9, clock=2, deadline=4, raw=b"\xaa"),),
        OrderRecords(statuses=[(b"\x22" * 32, "filled", None)], moves=[(9, 5)]),
    )
    assert encode_entry(Round(wall_ms=3, commits=(commit,))) == bytes.fromhex(
        "01"
        + "0000000000000003"  # wall clock
        + "00000001"  # one commit
        + "00000001"  # one transaction: seq, clock, deadline, then its bytes
        + "0000000000000009"
        + "0000000000000002"
        + "0000000000000004"
        + "00000001aa"
        + "00000000"  # no order inserted
        + "00000001"  # one status change: digest, status, no reason
        + "22" * 32
        + "0006"
        + b"filled".hex()
        + "ffff"
        + "00000001"  # one fill move: new seq, old seq
        + "0000000000000009"
        + "0000000000000005"
        + "00000000"  # no fill
    )
    assert (
        encode_entry(TermStart(term=7, holder="s1"))
        == bytes.fromhex("02" + "0000000000000007" + "02") + b"s1"
    )
    posted = BatchPosted(5, 10, b"\x11" * 32, b"\x22" * 32, b"\x33" * 32, (12, 14))
    assert encode_entry(posted) == bytes.fromhex(
        "03"
        + "0000000000000005"  # batch index
        + "000000000000000a"  # L1 block
        + "11" * 32  # prev root
        + "22" * 32  # post root
        + "33" * 32  # L1 transaction
        + "00000002"  # two sequence numbers
        + "000000000000000c"
        + "000000000000000e"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x04" + bytes(8),
        bytes.fromhex("01" + "00" * 11),  # a round head one byte short
        bytes.fromhex("01" + "00" * 8 + "00000001"),  # one commit claimed, none there
        bytes.fromhex("01" + "00" * 8 + "00000001" + "00000001" + "00" * 24 + "00000005aa"),  # a tx cut short
        bytes.fromhex("01" + "00" * 8 + "00000000" + "ff"),  # a byte after the last commit
        bytes.fromhex("01" + "00" * 8 + "00000001" + "ffffffff"),  # more transactions than bytes
        bytes.fromhex("01" + "00" * 8 + "00000001" + "00000000" + "00000001" + "00" * 64 + "ffff"),  # no kind
        bytes.fromhex("02" + "00" * 8 + "03") + b"ab",  # holder shorter than its length
        bytes.fromhex("02" + "00" * 8 + "01") + b"\xff",  # holder not UTF-8
        bytes.fromhex("03") + bytes(115),  # a batch record's head one byte short
        bytes.fromhex("03") + bytes(112) + bytes.fromhex("00000001") + bytes(7),  # a seq cut short
        bytes.fromhex("03") + bytes(116) + b"\x00",  # a byte after the last seq
    ],
)
def test_entry__not_an_entry__bad_entry(data: bytes) -> None:
    with pytest.raises(BadEntry):
        decode_entry(data)


def test_entry__field_out_of_range__value_error_before_any_bytes() -> None:
    with pytest.raises(ValueError):
        encode_entry(TermStart(term=1, holder="x" * 256))
    with pytest.raises(ValueError):
        encode_entry(Round(wall_ms=2**64, commits=()))
    with pytest.raises(ValueError):
        encode_entry(BatchPosted(0, 0, b"short", bytes(32), bytes(32), ()))
    with pytest.raises(ValueError):
        encode_entry(BatchPosted(0, 0, bytes(32), bytes(32), bytes(32), (2**64,)))
