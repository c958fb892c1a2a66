"""What the sequencer set's log holds: each entry is a kind byte, then its body.

- `Round` (0x01): what the leader's durable log committed since its previous entry: each commit's
  transactions with their sequence numbers, and the order records written with them
  (`sequencer.journal`), in order.
- `TermStart` (0x02): a new leader's first entry, appended once it has read the log to its end;
  from then on an append by any earlier leader, fenced on an older end, is refused.
- `BatchPosted` (0x03): the leader saw its batch on L1; the batch holds the log's transactions
  from one cursor up to another, so a new leader knows where batching goes on.

Integers are big-endian, lengths are explicit, and a decoder reads every byte exactly once:
anything else is `BadEntry` (docs/protocol.md, "The sequencer set's log").
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sequencer.cluster.errors import BadEntry
from sequencer.journal import Commit, OrderRecords, TxRow

KIND_ROUND = 0x01
KIND_TERM_START = 0x02
KIND_BATCH_POSTED = 0x03

_ROUND_HEAD = struct.Struct(">QI")
_U32 = struct.Struct(">I")
_TX_ROW = struct.Struct(">QQQ")
_INSERT = struct.Struct(">32sQ20si")
_FILL = struct.Struct(">QB20s20s32s32s")
_MOVE = struct.Struct(">QQ")
NO_REASON = 0xFFFF
"""Length written for an absent reason."""
_TERM_HEAD = struct.Struct(">QB")
_BATCH = struct.Struct(">QQIQI32s")
MAX_HOLDER_BYTES = 255


@dataclass(frozen=True)
class Round:
    """What the leader committed since its previous entry, commit by commit, in order."""

    wall_ms: int
    """The leader's wall clock when it appended the entry, in milliseconds."""
    commits: tuple[Commit, ...]
    """The commits (transactions, then order records), in the order the leader made them."""


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


def encode_commit(commit: Commit) -> bytes:
    """One commit's bytes within a `Round` (for `encode_round`); ValueError if a field does not
    fit its width."""
    parts: list[bytes] = []
    try:
        _encode_commit(commit, parts)
    except struct.error as err:
        raise ValueError(f"log entry field out of range: {err}") from err
    return b"".join(parts)


def encode_round(wall_ms: int, commits: Sequence[bytes]) -> bytes:
    """A `Round` entry from commits already encoded (`encode_commit`)."""
    return bytes([KIND_ROUND]) + _ROUND_HEAD.pack(wall_ms, len(commits)) + b"".join(commits)


def _encode(entry: Entry) -> bytes:
    if isinstance(entry, Round):
        parts = [bytes([KIND_ROUND]), _ROUND_HEAD.pack(entry.wall_ms, len(entry.commits))]
        for commit in entry.commits:
            _encode_commit(commit, parts)
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


def _text(value: str | None, parts: list[bytes]) -> None:
    if value is None:
        parts.append(struct.pack(">H", NO_REASON))
        return
    data = value.encode()
    if len(data) >= NO_REASON:
        raise ValueError(f"text of {len(data)} bytes is too long for a log entry")
    parts += [struct.pack(">H", len(data)), data]


def _blob(value: bytes, parts: list[bytes]) -> None:
    parts += [_U32.pack(len(value)), value]


def _encode_commit(commit: Commit, parts: list[bytes]) -> None:
    parts.append(_U32.pack(len(commit.txs)))
    for row in commit.txs:
        parts.append(_TX_ROW.pack(row.seq, row.clock, row.deadline))
        _blob(row.raw, parts)
    records = commit.orders if commit.orders is not None else OrderRecords()
    parts.append(_U32.pack(len(records.inserts)))
    for digest, seq, kind, trader, market, raw, status, reason in records.inserts:
        parts.append(_INSERT.pack(digest, seq, trader, market))
        _text(kind, parts)
        _text(status, parts)
        _text(reason, parts)
        _blob(raw, parts)
    parts.append(_U32.pack(len(records.statuses)))
    for digest, status, reason in records.statuses:
        parts.append(digest)
        _text(status, parts)
        _text(reason, parts)
    parts.append(_U32.pack(len(records.moves)))
    parts += [_MOVE.pack(new, old) for new, old in records.moves]
    parts.append(_U32.pack(len(records.fills)))
    parts += [_FILL.pack(*fill) for fill in records.fills]


class _Reader:
    """Reads a body front to back; every short read is BadEntry."""

    def __init__(self, body: memoryview) -> None:
        self.body = body
        self.at = 0

    def take(self, size: int, what: str) -> memoryview:
        if size < 0 or self.at + size > len(self.body):
            raise BadEntry(f"round entry ends inside {what}")
        out = self.body[self.at : self.at + size]
        self.at += size
        return out

    def unpack(self, layout: struct.Struct, what: str) -> tuple[Any, ...]:
        return layout.unpack(self.take(layout.size, what))

    def count(self, what: str, least_each: int) -> int:
        (n,) = self.unpack(_U32, f"the count of {what}")
        if n * least_each > len(self.body) - self.at:
            raise BadEntry(f"round entry claims {n} {what} in {len(self.body)} bytes")
        return int(n)

    def blob(self, what: str) -> bytes:
        (size,) = self.unpack(_U32, f"the length of {what}")
        return bytes(self.take(size, what))

    def text(self, what: str) -> str | None:
        (size,) = struct.unpack(">H", self.take(2, f"the length of {what}"))
        if size == NO_REASON:
            return None
        try:
            return bytes(self.take(size, what)).decode()
        except UnicodeDecodeError as err:
            raise BadEntry(f"{what} is not UTF-8") from err


def _decode_round(body: memoryview) -> Round:
    reader = _Reader(body)
    wall_ms, count = reader.unpack(_ROUND_HEAD, "its head")
    commits = tuple(_decode_commit(reader) for _ in range(count))
    if reader.at != len(body):
        raise BadEntry(f"round entry has {len(body) - reader.at} bytes after its last commit")
    return Round(wall_ms, commits)


def _decode_commit(r: _Reader) -> Commit:
    txs = []
    for _ in range(r.count("transactions", _TX_ROW.size + 4)):
        seq, clock, deadline = r.unpack(_TX_ROW, "a transaction row")
        txs.append(TxRow(seq, clock, deadline, r.blob("a transaction")))
    records = OrderRecords()
    for _ in range(r.count("order inserts", _INSERT.size + 10)):
        digest, seq, trader, market = r.unpack(_INSERT, "an order insert")
        kind, status, reason = r.text("a kind"), r.text("a status"), r.text("a reason")
        if kind is None or status is None:
            raise BadEntry("an order insert has no kind or no status")
        records.inserts.append(
            (bytes(digest), seq, kind, bytes(trader), market, r.blob("an order"), status, reason)
        )
    for _ in range(r.count("status changes", 36)):
        digest = bytes(r.take(32, "a digest"))
        status, reason = r.text("a status"), r.text("a reason")
        if status is None:
            raise BadEntry("a status change has no status")
        records.statuses.append((digest, status, reason))
    for _ in range(r.count("fill moves", _MOVE.size)):
        records.moves.append(r.unpack(_MOVE, "a fill move"))
    for _ in range(r.count("fills", _FILL.size)):
        records.fills.append(r.unpack(_FILL, "a fill"))
    return Commit(tuple(txs), records if records else None)


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
