"""One reading of `append_batch` calldata: the Rollup takes only the canonical ABI encoding, and
the nodes' reader (`contracts.calldata`, `read_batch_calldata`) refuses exactly what it refuses.

Each hostile encoding below is one an adversarial review built against the earlier, lenient
Rollup (it accepted them; no node could read them, so a wrong root inside could not be proven).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from contracts_harness import Harness, user_address
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from contracts.bindings import Sender, TransactionReverted, read_batch_calldata, send_transaction
from contracts.build import compile_all
from contracts.calldata import (
    APPEND_BATCH_SELECTOR,
    HEAD_BYTES,
    AppendBatchCall,
    CalldataError,
    decode_append_batch,
    encode_append_batch,
)
from sequencer.stf.constants import MAX_TX_BYTES

_ROLLUP = Web3().eth.contract(address="0x" + "11" * 20, abi=compile_all()["Rollup"].abi)
"""The Rollup's ABI, for web3's own encoding of a call (no node needed)."""
APPEND_TYPES = ["bytes32", "uint256", "uint256", "uint256", "bytes[]", "bytes32[]"]
WORD = 32
WRAP = 2**256


def _word(args: bytes, at: int) -> int:
    return int.from_bytes(args[at : at + WORD], "big")


def _set_word(args: bytearray, at: int, value: int) -> None:
    args[at : at + WORD] = (value % WRAP).to_bytes(WORD, "big")


def _canonical(h: Harness, txs: list[bytes], roots: list[bytes]) -> bytes:
    """The arguments (no selector) as web3 encodes them for the current tip."""
    tip = h.rollup.tip()
    return abi_encode(
        APPEND_TYPES, [tip.post_root, tip.queue_end, tip.queue_end, h.default_l2_time(), txs, roots]
    )


def _send(h: Harness, seq: Sender, args: bytes) -> None:
    data = APPEND_BATCH_SELECTOR + args
    send_transaction(
        h.w3, seq, {"to": h.rollup.address, "data": "0x" + data.hex(), "gas": 3_000_000}, label="raw"
    )


# The batch every hostile variant starts from: a 61-byte item (3 bytes of padding), an empty item
# and a full one, and a last root ending in a zero byte (so a calldata cut short inside it is
# padded back to the same value by the EVM).
TXS = [b"\x01" * 61, b"", b"\x02" * MAX_TX_BYTES]
ROOTS = [b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 31 + b"\x00"]
TX0_OFFSET_AT = HEAD_BYTES + WORD  # the word holding transaction 0's offset


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.binary(max_size=MAX_TX_BYTES), min_size=1, max_size=40),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**256 - 1),
    st.integers(0, 2**64),
)
def test_encode_append_batch__any_batch__web3s_encoding_and_read_back_whole(
    txs: list[bytes], root: bytes, queue: int, l2_time: int
) -> None:
    """The sequencer's own encoder gives byte for byte what web3 encodes for the Rollup's ABI,
    and the nodes' reader gives back the call it encoded."""
    roots = [root] * len(txs)
    call = AppendBatchCall(root, queue, queue, l2_time, tuple(txs), tuple(roots))
    data = encode_append_batch(call)
    web3s = _ROLLUP.functions.append_batch(root, queue, queue, l2_time, txs, roots)._encode_transaction_data()
    assert data == bytes.fromhex(web3s[2:])
    assert decode_append_batch(data) == call


def _wrapped_tx_offset(args: bytearray) -> bytes:
    # offset 2^256 - 32: wraps back onto the array's length word
    _set_word(args, TX0_OFFSET_AT, WRAP - WORD)
    return bytes(args)


def _tx_offset_past_end(args: bytearray) -> bytes:
    _set_word(args, TX0_OFFSET_AT, len(args) * 4)
    return bytes(args)


def _overlapping_items(args: bytearray) -> bytes:
    # transaction 1 read from where transaction 0 is
    _set_word(args, TX0_OFFSET_AT + WORD, _word(args, TX0_OFFSET_AT))
    return bytes(args)


def _cut_inside_last_root(args: bytearray) -> bytes:
    return bytes(args[:-1])


def _trailing_bytes(args: bytearray) -> bytes:
    return bytes(args) + b"\x00" * WORD


def _dirty_padding(args: bytearray) -> bytes:
    at = bytes(args).find(TXS[0]) + len(TXS[0])
    args[at] = 0xFF
    return bytes(args)


def _txs_moved_after_roots(args: bytearray) -> bytes:
    # the same arguments, laid out differently: `txs` after `roots` (a lenient decoder reads the
    # same batch; a second layout is a second reading all the same)
    head, body = bytes(args[:HEAD_BYTES]), bytes(args[HEAD_BYTES:])
    roots_at = _word(args, 160)
    txs_part, roots_part = body[: roots_at - HEAD_BYTES], body[roots_at - HEAD_BYTES :]
    out = bytearray(head + roots_part + txs_part)
    _set_word(out, 160, HEAD_BYTES)
    _set_word(out, 128, HEAD_BYTES + len(roots_part))
    return bytes(out)


def _tx_length_grown(args: bytearray) -> bytes:
    # transaction 0 claims 96 bytes: it swallows its padding and the next item's length word
    # (64 would be a canonical encoding of another batch: the 61 bytes and 3 zero bytes)
    at = HEAD_BYTES + WORD + _word(args, TX0_OFFSET_AT)
    _set_word(args, at, 96)
    return bytes(args)


def _roots_offset_wrapped(args: bytearray) -> bytes:
    _set_word(args, 160, _word(args, 160) + WRAP)  # the same value mod 2^256: a no-op control
    _set_word(args, 160, _word(args, 160) - WORD)  # now one word early
    return bytes(args)


HOSTILE: dict[str, Callable[[bytearray], bytes]] = {
    "wrapped_tx_offset": _wrapped_tx_offset,
    "tx_offset_past_end": _tx_offset_past_end,
    "overlapping_items": _overlapping_items,
    "cut_inside_last_root": _cut_inside_last_root,
    "trailing_bytes": _trailing_bytes,
    "dirty_padding": _dirty_padding,
    "txs_moved_after_roots": _txs_moved_after_roots,
    "tx_length_grown": _tx_length_grown,
    "roots_offset_one_word_early": _roots_offset_wrapped,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_append_batch__hostile_encoding__reverts_nothing_recorded_and_reader_refuses(
    h: Harness, name: str
) -> None:
    seq = h.account(1)
    h.bond(seq)
    args = HOSTILE[name](bytearray(_canonical(h, TXS, ROOTS)))
    with pytest.raises(TransactionReverted) as err:
        _send(h, seq, args)
    # Vyper's own decoder refuses some shapes first (no reason); the rest meet the canonical check
    assert err.value.reason in ("rollup: non-canonical calldata", "b''")
    assert h.rollup.batch_count() == 0
    with pytest.raises(CalldataError):
        decode_append_batch(APPEND_BATCH_SELECTOR + args)


def test_append_batch__canonical_encoding__accepted_and_read_back_exactly(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    args = _canonical(h, TXS, ROOTS)
    _send(h, seq, args)
    (event,) = h.rollup.batch_appended_events(0)
    assert not event.unreadable
    assert (event.txs, event.roots) == (tuple(TXS), tuple(ROOTS))
    # the strict standard decoder reads the same
    strict = abi_decode(APPEND_TYPES, args, strict=True)
    assert (list(strict[4]), list(strict[5])) == (TXS, ROOTS)


def test_read_batch_calldata__input_of_another_batch__refused_naming_the_commitments(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    _send(h, seq, _canonical(h, TXS, ROOTS))
    (event,) = h.rollup.batch_appended_events(0)
    tip = h.rollup.tip()
    other = APPEND_BATCH_SELECTOR + abi_encode(
        APPEND_TYPES, [event.header.prev_root, 0, 0, event.header.l2_time, [b"\x09", b"", TXS[2]], ROOTS]
    )
    with pytest.raises(CalldataError, match="tx_root and roots_root"):
        read_batch_calldata(event.header, other)
    assert tip.batch_count == 1


@pytest.mark.parametrize(
    ("txs", "roots", "message"),
    [
        ([], [], "0 transactions"),
        ([b"\x01"] * 257, [b"\x00" * 32] * 257, "257 transactions"),
        ([b"\x01" * (MAX_TX_BYTES + 1)], [b"\x00" * 32], "1025 bytes"),
        ([b"\x01", b"\x02"], [b"\x00" * 32], "the number of roots"),
    ],
)
def test_decode_append_batch__shape_the_rollup_refuses__refused(
    txs: list[bytes], roots: list[bytes], message: str
) -> None:
    args = abi_encode(APPEND_TYPES, [b"\x00" * 32, 0, 0, 0, txs, roots])
    with pytest.raises(CalldataError, match=message):
        decode_append_batch(APPEND_BATCH_SELECTOR + args)


def test_decode_append_batch__other_selector__refused() -> None:
    args = abi_encode(APPEND_TYPES, [b"\x00" * 32, 0, 0, 0, [b"\x01"], [b"\x00" * 32]])
    with pytest.raises(CalldataError, match="not an append_batch call"):
        decode_append_batch(b"\x12\x34\x56\x78" + args)


def test_append_batch__deposit_batch_on_the_queue__accepted_with_queue_range(h: Harness) -> None:
    """A control on the static words: a real deposit batch, canonical, consumes its entry."""
    seq = h.account(1)
    h.bond(seq)
    h.deposit(user_address(0), 1000)
    txs = [h.deposit_tx(0, user_address(0), 1000)]
    batch = h.append(seq, txs, queue_end=1)
    assert (batch.header.queue_start, batch.header.queue_end, batch.header.tx_count) == (0, 1, 1)
