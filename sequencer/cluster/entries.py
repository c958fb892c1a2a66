"""What the sequencer set's log holds: each entry is a kind byte, then its body.

- `Round` (0x01): one admission round as the leader admitted it: its clocks and the encoded
  transactions (protocol section 3), in order.
- `TermStart` (0x02): a new leader's first entry, appended once it has read the log to its end;
  from then on an append by any earlier leader, fenced on an older end, is refused.
- `BatchPosted` (0x03): the leader saw its batch on L1; the batch holds the log's transactions
  from one cursor up to another, so a new leader knows where batching goes on.

Integers are big-endian, lengths are explicit, and a decoder reads every byte exactly once:
anything else is `BadEntry` (docs/protocol.md, "The sequencer set's log").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sequencer.cluster.errors import BadEntry

KIND_ROUND = 0x01
KIND_TERM_START = 0x02
KIND_BATCH_POSTED = 0x03

_ROUND_HEAD = struct.Struct(">QQI")
_TX_LEN = struct.Struct(">I")
_TERM_HEAD = struct.Struct(">QB")
_BATCH = struct.Struct(">QQIQI32s")
MAX_HOLDER_BYTES = 255


@dataclass(frozen=True)
class Round:
    """One admission round: the transactions the leader admitted together, in order."""

    clock: int
    """The batch clock (seconds) the round's transactions were admitted at."""
    wall_ms: int
    """The leader's wall clock at admission, in milliseconds."""
    txs: tuple[bytes, ...]
    """The encoded transactions (protocol section 3), in admission order."""


@dataclass(frozen=True)
class TermStart:
    """A leader's first entry in its term."""

    term: int
    """The lease's term (its revision when taken)."""
    holder: str
    """The member that holds the lease (at most 255 bytes of UTF-8)."""


@dataclass(frozen=True)
class LogCursor:
    """A transaction of the log: the one at `index` in the round at log position `seq`."""

    seq: int
    """Log position of the round."""
    index: int
    """Index of the transaction within the round."""


@dataclass(frozen=True)
class BatchPosted:
    """A batch the leader saw on L1, and which of the log's transactions it holds."""

    batch_index: int
    """The batch's index on the Rollup."""
    first: LogCursor
    """The first log transaction the batch holds."""
    end: LogCursor
    """The log transaction after the batch's last one (where the next batch begins)."""
    batch_hash: bytes
    """The batch's `batch_hash` as the Rollup stores it (protocol section 4; 32 bytes)."""


Entry = Round | TermStart | BatchPosted


def encode_entry(entry: Entry) -> bytes:
    """The entry's bytes in the log: its kind byte, then its body; ValueError if a field does
    not fit its width."""
    try:
        return _encode(entry)
    except struct.error as err:
        raise ValueError(f"log entry field out of range: {err}") from err


def _encode(entry: Entry) -> bytes:
    if isinstance(entry, Round):
        parts = [bytes([KIND_ROUND]), _ROUND_HEAD.pack(entry.clock, entry.wall_ms, len(entry.txs))]
        for tx in entry.txs:
            parts += [_TX_LEN.pack(len(tx)), tx]
        return b"".join(parts)
    if isinstance(entry, TermStart):
        holder = entry.holder.encode()
        if len(holder) > MAX_HOLDER_BYTES:
            raise ValueError(f"holder name of {len(holder)} bytes is over {MAX_HOLDER_BYTES}")
        return bytes([KIND_TERM_START]) + _TERM_HEAD.pack(entry.term, len(holder)) + holder
    if len(entry.batch_hash) != 32:
        raise ValueError("batch_hash must be 32 bytes")
    first, end = entry.first, entry.end
    body = _BATCH.pack(entry.batch_index, first.seq, first.index, end.seq, end.index, entry.batch_hash)
    return bytes([KIND_BATCH_POSTED]) + body


def decode_entry(data: bytes) -> Entry:
    """Read an entry; raises BadEntry for an unknown kind, a wrong length or a bad field."""
    if not data:
        raise BadEntry("empty log entry")
    kind, body = data[0], memoryview(data)[1:]
    if kind == KIND_ROUND:
        return _decode_round(body)
    if kind == KIND_TERM_START:
        return _decode_term_start(body)
    if kind == KIND_BATCH_POSTED:
        if len(body) != _BATCH.size:
            raise BadEntry(f"batch-posted entry of {len(body)} bytes, expected {_BATCH.size}")
        index, first_seq, first_index, end_seq, end_index, root = _BATCH.unpack(body)
        return BatchPosted(index, LogCursor(first_seq, first_index), LogCursor(end_seq, end_index), root)
    raise BadEntry(f"unknown log entry kind 0x{kind:02x}")


def _decode_round(body: memoryview) -> Round:
    if len(body) < _ROUND_HEAD.size:
        raise BadEntry(f"round entry of {len(body)} bytes is shorter than its head")
    clock, wall_ms, count = _ROUND_HEAD.unpack_from(body)
    at = _ROUND_HEAD.size
    if count * _TX_LEN.size > len(body) - at:
        raise BadEntry(f"round entry claims {count} transactions in {len(body)} bytes")
    txs = []
    for _ in range(count):
        if at + _TX_LEN.size > len(body):
            raise BadEntry("round entry ends inside a transaction's length")
        (size,) = _TX_LEN.unpack_from(body, at)
        at += _TX_LEN.size
        if at + size > len(body):
            raise BadEntry("round entry ends inside a transaction")
        txs.append(bytes(body[at : at + size]))
        at += size
    if at != len(body):
        raise BadEntry(f"round entry has {len(body) - at} bytes after its last transaction")
    return Round(clock, wall_ms, tuple(txs))


def _decode_term_start(body: memoryview) -> TermStart:
    if len(body) < _TERM_HEAD.size:
        raise BadEntry(f"term-start entry of {len(body)} bytes is shorter than its head")
    term, size = _TERM_HEAD.unpack_from(body)
    if len(body) != _TERM_HEAD.size + size:
        raise BadEntry(f"term-start entry of {len(body)} bytes, expected {_TERM_HEAD.size + size}")
    try:
        holder = bytes(body[_TERM_HEAD.size :]).decode()
    except UnicodeDecodeError as err:
        raise BadEntry("term-start holder is not UTF-8") from err
    return TermStart(term, holder)
