"""What the sequencer set's log holds: each entry is a kind byte, then its body.

- `Round` (0x01): what the leader's durable log committed since its previous entry: each commit's
  transactions with their sequence numbers, and the order records written with them
  (`sequencer.journal`), in order.
- `TermStart` (0x02): a new leader's first entry, appended once it has read the log to its end;
  from then on an append by any earlier leader, fenced on an older end, is refused.
- `BatchPosted` (0x03): the leader's batch was mined on L1: its index, the roots it goes from and
  to, the L1 transaction and block that hold it, and the sequence numbers of the log's
  transactions it holds, so a new leader knows what the old one already sent.

Integers are big-endian, lengths are explicit, and a decoder reads every byte exactly once:
anything else is `BadEntry` (docs/protocol.md, "The sequencer set's log").
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

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
_BATCH_HEAD = struct.Struct(">QQ32s32s32sI")
_SEQ = struct.Struct(">Q")
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
class BatchPosted:
    """A batch the leader appended on L1 (mined), and which of the log's transactions it holds."""

    batch_index: int
    """The batch's index on the Rollup."""
    l1_block: int
    """The L1 block that holds the append (a reorganisation of the L1 may still take it out)."""
    prev_root: bytes
    """The state root the batch was built on (32 bytes)."""
    post_root: bytes
    """The state root after the batch (32 bytes)."""
    l1_tx: bytes
    """The hash of the L1 transaction that appended it (32 bytes)."""
    seqs: tuple[int, ...]
    """The sequence numbers of the log's transactions it holds, in batch order (queue entries,
    which are in no Round, are not named)."""


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
    if any(len(b) != 32 for b in (entry.prev_root, entry.post_root, entry.l1_tx)):
        raise ValueError("prev_root, post_root and l1_tx must be 32 bytes each")
    head = _BATCH_HEAD.pack(
        entry.batch_index, entry.l1_block, entry.prev_root, entry.post_root, entry.l1_tx, len(entry.seqs)
    )
    return b"".join([bytes([KIND_BATCH_POSTED]), head, *(_SEQ.pack(seq) for seq in entry.seqs)])


def decode_entry(data: bytes) -> Entry:
    """Read an entry; raises BadEntry for an unknown kind, a wrong length or a bad field."""
    if not data:
        raise BadEntry("empty log entry")
    kind, body = data[0], memoryview(data)[1:]
    if kind == KIND_ROUND:
        return _decode_round(data if type(data) is bytes else bytes(data))
    if kind == KIND_TERM_START:
        return _decode_term_start(body)
    if kind == KIND_BATCH_POSTED:
        return _decode_batch_posted(body)
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


_TX_HEAD = struct.Struct(">QQQI")
"""A transaction row and the length of its bytes, as `_encode_commit` lays them out."""
_U16 = struct.Struct(">H")


def _text_at(data: bytes, at: int, what: str) -> tuple[str | None, int]:
    """The text (or None) at `at` and where the next field starts."""
    (size,) = _U16.unpack_from(data, at)
    at += 2
    if size == NO_REASON:
        return None, at
    stop = at + size
    if stop > len(data):
        raise BadEntry(f"round entry ends inside {what}")
    try:
        return data[at:stop].decode(), stop
    except UnicodeDecodeError as err:
        raise BadEntry(f"{what} is not UTF-8") from err


def _count_at(data: bytes, at: int, what: str, least_each: int) -> int:
    """The count of `what` at `at`; BadEntry if that many cannot fit in the bytes after it."""
    (n,) = _U32.unpack_from(data, at)
    if n * least_each > len(data) - at - 4:
        raise BadEntry(f"round entry claims {n} {what} in {len(data)} bytes")
    return int(n)


def _decode_round(data: bytes) -> Round:
    """A `Round` from its entry bytes (`data[0]` is the kind byte); fields are read in place with
    `unpack_from`, since every member decodes every round of the log."""
    try:
        wall_ms, count = _ROUND_HEAD.unpack_from(data, 1)
        at = 1 + _ROUND_HEAD.size
        commits = []
        for _ in range(count):
            commit, at = _decode_commit(data, at)
            commits.append(commit)
    except struct.error as err:  # a fixed-size field that the bytes end inside
        raise BadEntry(f"round entry ends inside a field: {err}") from err
    if at != len(data):
        raise BadEntry(f"round entry has {len(data) - at} bytes after its last commit")
    return Round(wall_ms, tuple(commits))


def _decode_commit(data: bytes, at: int) -> tuple[Commit, int]:
    end = len(data)
    txs = []
    n = _count_at(data, at, "transactions", _TX_HEAD.size)
    at += 4
    for _ in range(n):
        seq, clock, deadline, size = _TX_HEAD.unpack_from(data, at)
        at += _TX_HEAD.size
        stop = at + size
        if stop > end:
            raise BadEntry("round entry ends inside a transaction")
        txs.append(TxRow(seq, clock, deadline, data[at:stop]))
        at = stop
    records = OrderRecords()
    n = _count_at(data, at, "order inserts", _INSERT.size + 10)
    at += 4
    for _ in range(n):
        digest, seq, trader, market = _INSERT.unpack_from(data, at)
        kind, at = _text_at(data, at + _INSERT.size, "a kind")
        status, at = _text_at(data, at, "a status")
        reason, at = _text_at(data, at, "a reason")
        if kind is None or status is None:
            raise BadEntry("an order insert has no kind or no status")
        (size,) = _U32.unpack_from(data, at)
        stop = at + 4 + size
        if stop > end:
            raise BadEntry("round entry ends inside an order")
        records.inserts.append((digest, seq, kind, trader, market, data[at + 4 : stop], status, reason))
        at = stop
    n = _count_at(data, at, "status changes", 36)
    at += 4
    for _ in range(n):
        if at + 32 > end:
            raise BadEntry("round entry ends inside a digest")
        digest = data[at : at + 32]
        status, at = _text_at(data, at + 32, "a status")
        reason, at = _text_at(data, at, "a reason")
        if status is None:
            raise BadEntry("a status change has no status")
        records.statuses.append((digest, status, reason))
    for layout, rows, what in ((_MOVE, records.moves, "fill moves"), (_FILL, records.fills, "fills")):
        n = _count_at(data, at, what, layout.size)
        at += 4
        stop = at + n * layout.size
        rows.extend(layout.iter_unpack(data[at:stop]))
        at = stop
    return Commit(tuple(txs), records if records else None), at


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


def _decode_batch_posted(body: memoryview) -> BatchPosted:
    if len(body) < _BATCH_HEAD.size:
        raise BadEntry(f"batch-posted entry of {len(body)} bytes is shorter than its head")
    index, l1_block, prev_root, post_root, l1_tx, count = _BATCH_HEAD.unpack_from(body)
    if len(body) != _BATCH_HEAD.size + count * _SEQ.size:
        raise BadEntry(
            f"batch-posted entry of {len(body)} bytes, expected {_BATCH_HEAD.size + count * _SEQ.size}"
        )
    seqs = tuple(seq for (seq,) in _SEQ.iter_unpack(body[_BATCH_HEAD.size :]))
    return BatchPosted(index, l1_block, bytes(prev_root), bytes(post_root), bytes(l1_tx), seqs)
