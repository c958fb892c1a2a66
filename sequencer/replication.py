"""The sequencer set's log, written by its leader and applied by the other members.

The leader's durable log tells `Replicator.record` of each commit as soon as it is made
(`Mempool.journal`); the replicator appends what was recorded to the set's log (`sequencer.cluster`)
as `Round` entries, several commits per entry when they came while the previous append was in
flight (group commit again, one level up), each append fenced on the last position the leader
saw; a `BatchPosted` entry for each batch the leader appended on L1 goes in between them
(`record_entry`). Nothing of a commit is answered before its entry is appended (`barrier`), and
no batch holds a transaction before its entry is appended (`replicated_seq`): what a client was
told, and what L1 holds, is in the log.

A member that does not lead writes each entry into its own durable log (`Applier`): the same
transactions under the same sequence numbers, the same order records; its view and books follow
entry by entry (`Mempool.follow`, `Exchange.follow`), and are rebuilt whole only when they could
not (`dirty`). A `BatchPosted` entry goes to `on_batch_posted` (`sequencer.batchlog`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from contracts.logs import get_logger
from sequencer.cluster.entries import (
    BatchPosted,
    Round,
    TermStart,
    decode_entry,
    encode_commit,
    encode_round,
)
from sequencer.cluster.errors import ClusterUnavailable, EntryTooLarge, Fenced
from sequencer.cluster.log import Record, ReplicatedLog
from sequencer.errors import NotLeader
from sequencer.exchange.orderlog import write_records
from sequencer.journal import Commit, OrderRecords
from sequencer.mempool import Mempool, PendingTx
from sequencer.metrics import CLUSTER_APPEND_SECONDS, CLUSTER_ENTRY_COMMITS
from sequencer.stf.codec import decode_tx, tx_hash
from sequencer.stf.types import Tx
from sequencer.store import Store

log = get_logger("cluster")

MAX_ENTRY_BYTES = 768 * 1024
"""Most bytes of commits put in one entry (under NATS's default 1 MiB message)."""
RETRY_PAUSE_S = 0.05
"""Pause between two tries of an append NATS did not acknowledge."""


class Replicator:
    """The leader's side: every commit recorded goes into the log, in order, before it is answered."""

    def __init__(
        self,
        log_: ReplicatedLog,
        holds_lease: Callable[[], bool],
        on_fatal: Callable[[str], None],
        *,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
    ) -> None:
        self.log = log_
        self.holds_lease = holds_lease
        """Whether this member still holds the lease (it stops appending the moment it does not)."""
        self.on_fatal = on_fatal
        """Called once if the log refuses this leader (fenced) or it loses the lease with commits
        not appended: what it committed locally since is in no log, so the member must stop."""
        self.max_entry_bytes = max_entry_bytes
        self.position = 0
        """The log's last position as this leader wrote it (set by the leader's term start)."""
        self.recorded = 0
        """Commits recorded so far."""
        self.appended = 0
        """Commits in the log so far."""
        self.replicated_seq = 0
        """Highest transaction sequence number in the log (batches hold none above it)."""
        self.failed: str | None = None
        """Why this leader can append no more (then nothing is answered again)."""
        self._buffer: list[bytes] = []
        self._other: list[bytes] = []
        """Entries other than Rounds waiting to be appended (`record_entry`)."""
        self._top_seqs: list[int] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self.entries = 0
        """Entries appended (each holds one or more commits)."""

    def record(self, commit: Commit) -> None:
        """A commit made durable locally: it goes into the next entry."""
        if self.failed is not None:
            return
        self._buffer.append(encode_commit(commit))
        self._top_seqs.append(max((row.seq for row in commit.txs), default=0))
        self.recorded += 1
        self._wake.set()

    def record_entry(self, entry: bytes) -> None:
        """An entry other than a Round (a `BatchPosted`): appended after the Rounds recorded
        before it, fenced like them."""
        if self.failed is not None:
            return
        self._other.append(entry)
        self._wake.set()

    def barrier(self) -> asyncio.Future[None] | None:
        """A future done once every commit recorded so far is in the log (None if they already
        are); it fails with `NotLeader` if they never will be."""
        if self.failed is None and not self.holds_lease():  # (paused past its lease, say)
            self._fail("the lease lapsed")
        if self.failed is not None:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.set_exception(NotLeader(f"this member stopped leading: {self.failed}"))
            return future
        if self.appended >= self.recorded:
            return None
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((self.recorded, future))
        return future

    async def run(self) -> None:
        """Append what is recorded, for as long as this member leads."""
        task = asyncio.current_task()
        while self.failed is None:
            await self._wake.wait()
            self._wake.clear()
            while (self._buffer or self._other) and self.failed is None:
                if self._buffer:
                    await self._append_some()
                if self._other and self.failed is None and await self._append_fenced(self._other[0]):
                    del self._other[0]
                    self.entries += 1
            if task is not None and task.cancelling():  # nats-py swallows a cancel that lands mid-publish
                raise asyncio.CancelledError

    async def _append_some(self) -> None:
        size, count = 0, 0
        for encoded in self._buffer:
            if count and size + len(encoded) > self.max_entry_bytes:
                break
            size += len(encoded)
            count += 1
        payload = encode_round(int(time.time() * 1000), self._buffer[:count])
        if not await self._append_fenced(payload):
            return
        del self._buffer[:count]
        CLUSTER_ENTRY_COMMITS.observe(count)
        self.replicated_seq = max(self.replicated_seq, *self._top_seqs[:count])
        del self._top_seqs[:count]
        self.appended += count
        self.entries += 1
        done = 0
        for target, future in self._waiters:
            if target > self.appended:
                break
            done += 1
            if not future.done():
                future.set_result(None)
        del self._waiters[:done]

    async def _append_fenced(self, payload: bytes) -> bool:
        """Append one entry at the next position while the lease holds; False (and this leader
        has failed) if it could not be, or the lease lapsed meanwhile."""
        while True:
            if not self.holds_lease():
                self._fail("the lease lapsed with entries not in the log")
                return False
            try:
                started = time.perf_counter()
                self.position = await self.log.append(payload, self.position)
                CLUSTER_APPEND_SECONDS.observe(time.perf_counter() - started)
                break
            except ClusterUnavailable as exc:  # retried as it was: the message id dedups it
                log.warning("log_append_retry", position=self.position + 1, error=str(exc))
                await asyncio.sleep(RETRY_PAUSE_S)
            except (Fenced, EntryTooLarge) as exc:
                self._fail(str(exc))
                return False
        if not self.holds_lease():  # in the log, but answered by no one: the next leader has it
            self._fail("the lease lapsed while the append was in flight")
            return False
        return True

    def _fail(self, reason: str) -> None:
        if self.failed is not None:
            return
        self.failed = reason
        log.error("leader_cannot_append", reason=reason, position=self.position, unappended=len(self._buffer))
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(NotLeader(f"this member stopped leading: {reason}"))
        self._waiters = []
        self.on_fatal(reason)


@dataclass
class Applied:
    """Where a member that does not lead stands in the log."""

    position: int = 0
    """The last position applied."""
    term: int = 0
    """The term of the last leader that started in the log."""
    holder: str = ""
    """That leader's name."""
    last_wall_ms: int = 0
    """The leader's wall clock in the last round applied."""


class Applier:
    """A member that does not lead: each entry of the log into its durable log, its pending list
    and view, and (through `on_commit`) its books."""

    def __init__(
        self,
        store: Store,
        mempool: Mempool,
        on_l1: Callable[[bytes], int | None],
        on_commit: Callable[[list[Tx], OrderRecords | None], bool] | None = None,
    ) -> None:
        self.store = store
        self.mempool = mempool
        self.on_l1 = on_l1
        """The L1 batch that already holds a transaction (by hash), if this member saw it first."""
        self.on_commit = on_commit
        """The books after a round's transactions joined the view (`Exchange.follow`); False if
        they must be rebuilt. None: the books are only ever rebuilt."""
        self.on_batch_posted: Callable[[BatchPosted], None] | None = None
        """Told of each `BatchPosted` entry (`LoggedBatches.note`); None: the entry changes nothing."""
        self.applied = Applied()
        self.dirty = False
        """The view or the books could not follow the log one entry at a time since they were
        last rebuilt: they must be rebuilt from the durable log before they are read or led."""
        self.since_refresh: list[Tx] = []
        """The transactions applied while dirty: the risk index notes them again once the view
        has them (it forgets a trader it reads flat, which a view older than the log may show)."""

    def apply(self, record: Record) -> None:
        """Apply the entry at the next position (BadEntry if its bytes are not one)."""
        entry = decode_entry(record.data)
        if isinstance(entry, Round):
            self._apply_round(entry)
        elif isinstance(entry, TermStart):
            self.applied.term, self.applied.holder = entry.term, entry.holder
            log.info("log_term_seen", term=entry.term, holder=entry.holder, position=record.seq)
        elif isinstance(entry, BatchPosted) and self.on_batch_posted is not None:
            self.on_batch_posted(entry)
        self.applied.position = record.seq

    def _apply_round(self, entry: Round) -> None:
        rows: list[tuple[int, bytes, bytes, int]] = []
        fresh: list[PendingTx] = []
        batched: list[tuple[int, int]] = []
        txs: list[Tx] = []
        records = [c.orders for c in entry.commits if c.orders]
        for commit in entry.commits:
            for row in commit.txs:
                h = tx_hash(row.raw)
                rows.append((row.seq, h, row.raw, row.clock))
                tx = decode_tx(row.raw)
                txs.append(tx)
                index = self.on_l1(h)
                if index is not None:
                    batched.append((row.seq, index))
                else:
                    fresh.append(PendingTx(row.seq, h, row.raw, tx, row.clock, row.deadline))

        def orders(db: object) -> None:
            for r in records:
                write_records(db, r)  # type: ignore[arg-type]

        self.store.replay(rows, orders if records else None)
        for seq, index in batched:
            self.store.mark_batched([seq], index)
        mempool = self.mempool
        again = {p.hash for p in fresh} & mempool.hashes
        if again:  # a dropped transaction pending again under a new seq: its old place is in the view
            mempool.pending = [p for p in mempool.pending if p.hash not in again]
            self.dirty = True
        for ptx in fresh:
            if not self.dirty and mempool.follow(ptx):
                continue
            self.dirty = True
            mempool.pending.append(ptx)
            mempool.hashes.add(ptx.hash)
            mempool.risk.note(ptx.tx)
            self.since_refresh.append(ptx.tx)
        self.applied.last_wall_ms = entry.wall_ms
        if self.dirty or not (txs or records):
            return
        if self.on_commit is None or not self.on_commit(txs, merged(records)):
            self.dirty = True


def merged(records: list[OrderRecords]) -> OrderRecords | None:
    """The order records of several commits as one, in order (None if there are none)."""
    if not records:
        return None
    if len(records) == 1:
        return records[0]
    out = OrderRecords()
    for r in records:
        out.inserts += r.inserts
        out.statuses += r.statuses
        out.moves += r.moves
        out.fills += r.fills
    return out
