"""The poster: the batch trigger, building a batch on the chain's tip, and appending it to L1.

It posts when `batch_max_txs` are pending or `batch_interval_ms` has passed, one batch in flight
at a time (until the follower has folded it, or folded past its block without it: an L1 read
with confirmations sees it only that many blocks later), and never on top of a batch it found
invalid. The batch's clock comes from the `L2Clock`; an append refused because another batch
already extended its `prev_root` (another sequencer's, or after a failover the previous leader's)
is an expected outcome, not a failure: counted, logged at info, and the poster plans again from
the L1 tip. Any other refusal is an L1 hiccup (the follower resyncs, the next turn builds again,
/health says so until a batch is appended), and the Rollup's clock refusals move the clock. A
set's leader records each batch it appended in the set's log (`on_appended`), and builds nothing
while a batch the log names is not yet decided by its L1 read (`log_batch_waits`). Once the
Rollup is frozen (protocol section 12) it posts nothing more: it says so once, and /health says
`rollup_frozen`.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections.abc import Callable
from typing import Protocol

from contracts.follow import LoopHealth
from contracts.l1 import Mined
from contracts.logs import get_logger
from sequencer.builder import BuiltBatch, build_batch_steps
from sequencer.errors import TransientError
from sequencer.follower import Follower
from sequencer.l2clock import L2Clock
from sequencer.mempool import Mempool, PendingTx
from sequencer.metrics import BATCH_POST_FAILURES, BATCH_TXS, BATCHES_POSTED, BATCHES_SUPERSEDED
from sequencer.stf.chain import Chain
from sequencer.stf.l1types import L1Frozen
from sequencer.stf.queue import due_queue
from sequencer.stf.types import ChainConfig
from sequencer.store import Store

log = get_logger("sequencer")

POSTING = "poster"
"""The source of a failed append in the node's `LoopHealth` (the builder loop itself goes on)."""

REFUSED_PREV_ROOT = "rollup: wrong prev_root"
"""The Rollup's refusal of a batch built on a root that is no longer its tip (protocol section 4)."""

BUILD_SLICE_SECONDS = 0.002
"""Longest stretch of batch building between two turns of the event loop (requests wait no
longer than this for the builder)."""


class L1Writer(Protocol):
    """What the sequencer sends to L1."""

    address: bytes
    """The sequencer's L1 account."""

    def head_timestamp(self) -> int:
        """Timestamp of the latest L1 block."""
        ...

    def append_batch(
        self,
        txs: list[bytes],
        roots: list[bytes],
        prev_root: bytes,
        queue_start: int,
        queue_end: int,
        l2_time: int,
    ) -> Mined:
        """Append a batch built on (`prev_root`, `queue_start`) with the clock `l2_time`.

        Returns the mined L1 transaction; raises with the revert reason (an exception with a
        `reason` attribute, as `contracts.bindings.TransactionReverted`).
        """
        ...

    def ensure_bonded(self, bond_wei: int) -> None:
        """Register with a bond unless already bonded."""
        ...


class Poster:
    """Builds batches from the mempool on the chain's tip and appends them with `writer`."""

    def __init__(
        self,
        config: ChainConfig,
        chain: Chain,
        store: Store,
        mempool: Mempool,
        follower: Follower,
        writer: L1Writer,
        clock: L2Clock,
        health: LoopHealth,
        *,
        batch_max_txs: int,
        batch_interval_ms: int,
    ) -> None:
        self.config = config
        self.chain = chain
        self.store = store
        self.mempool = mempool
        self.follower = follower
        self.writer = writer
        self.clock = clock
        self.health = health
        """Where a failed append is reported (`last_error`, until a batch is appended)."""
        self.batch_max_txs = batch_max_txs
        self.batch_interval_ms = batch_interval_ms
        self.due = asyncio.Event()
        """Set when enough is pending for a full batch: the builder loop posts without waiting."""
        self.last_post = time.monotonic()
        self.may_post: Callable[[], bool] = lambda: True
        """Whether this node posts now (a set's leader only)."""
        self.postable_seq: Callable[[], int] | None = None
        """Highest transaction sequence number a batch may hold (a set's leader: what its log
        holds); None: any pending one."""
        self.on_appended: Callable[[int, bytes, BuiltBatch, Mined], None] | None = None
        """Told of each batch appended: its index, the root it was built on, the batch and its L1
        transaction (a set's leader records it in the log)."""
        self.log_batch_waits: Callable[[], bool] = lambda: False
        """Whether a batch the set's log names is still to be decided by the L1 read (then the
        tip is about to move, and nothing is built on it)."""
        self.superseded = 0
        """Appends refused because another batch had already extended their `prev_root`."""
        self.frozen_reported = False
        """Whether the freeze of the Rollup was logged (the poster stops at it)."""
        self.unposted_since: float | None = None
        """`time.monotonic()` since when there has been work to post and no batch appended (the
        attempts failed, hang, or wait for the L1); None while nothing waits."""

    def trigger(self) -> None:
        """After admission: post at once if a full batch is pending."""
        if len(self.mempool) >= self.batch_max_txs:
            self.due.set()

    async def build(self, l2_time: int, take: int | None = None) -> BuiltBatch | None:
        """Build the next batch in slices of about `BUILD_SLICE_SECONDS`, serving requests in
        between (admission only appends to the pending list; the follower, which could move the
        chain under the build, waits for its lock)."""
        steps = build_batch_steps(
            self.chain.state,
            self.chain.queue,
            self._postable(),
            self.config,
            l2_time=l2_time,
            max_txs=self.batch_max_txs,
            take=take,
        )
        slice_started = time.perf_counter()
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if time.perf_counter() - slice_started > BUILD_SLICE_SECONDS:
                await asyncio.sleep(0)
                slice_started = time.perf_counter()

    def _postable(self) -> list[PendingTx]:
        """The pending transactions a batch may hold, in order."""
        pending = self.mempool.pending
        if self.postable_seq is None:
            return pending
        return pending[: bisect_right(pending, self.postable_seq(), key=lambda p: p.seq)]

    async def _upper(self) -> int:
        """The latest clock the batch about to be built may have (reads the L1 head)."""
        try:
            head_timestamp = await asyncio.to_thread(self.writer.head_timestamp)
        except Exception as exc:
            raise TransientError(f"L1 head timestamp: {exc}") from exc
        return self.clock.upper(head_timestamp)

    async def build_and_post(self) -> bool:
        """Post one batch if there is anything to post; True if a batch was appended."""
        if self.chain.fraud is not None or self.chain.valid_count != len(self.chain.batches):
            return False  # never build on a batch we found invalid
        if self.chain.frozen is not None:
            self._stop_frozen(self.chain.frozen)
            return False
        if not self.may_post():
            return False
        if self.follower.in_flight is not None:
            return False  # our last batch is not folded yet (the L1 read lags by its confirmations)
        if self.log_batch_waits():
            return False  # the previous leader's batch is on L1 beyond our read: wait to fold it
        postable = self._postable()
        if not postable and not due_queue(self.chain.state, self.chain.queue, 1):
            self._posted()  # nothing waits: no need to ask L1 for the time
            return False
        if self.unposted_since is None:
            self.unposted_since = time.monotonic()
        upper = await self._upper()
        async with self.follower.lock:  # the chain stays as it is while the batch is built on it
            l2_time, take = self.clock.plan(self._postable(), upper, self.batch_max_txs)
            built = await self.build(l2_time, take)
        if built is None:
            self._posted()  # nothing to post after all
            return False
        self.store.drop_many([(ptx.seq, reason) for ptx, reason in built.skipped])
        self.mempool.remove_included({ptx.hash for ptx, _ in built.skipped})
        for ptx, reason in built.skipped:
            log.warning("tx_dropped", hash=ptx.hash, reason=reason)
        if built.skipped:  # the speculative view had drifted from the chain: rebuild it
            self.follower.rebase([])
        if not built.txs:  # every transaction it took was dropped: the next build goes on
            return False
        if not self.may_post():  # (a set's leader paused or cut off while building: it lost the lease)
            return False
        self.follower.expect(built)
        index, prev_root = len(self.chain.batches), self.chain.tip_root
        try:
            mined = await asyncio.to_thread(
                self.writer.append_batch,
                built.txs,
                built.roots,
                self.chain.tip_root,
                self.chain.queue_end,
                built.queue_end,
                built.l2_time,
            )
        except Exception as exc:  # temporary: lost a race or L1 hiccup; the follower resyncs
            self.follower.give_up(built)
            if getattr(exc, "reason", None) == REFUSED_PREV_ROOT:
                self._superseded(built, index)
                await self.follower.poll()  # fold the batch that took the tip; plan again on it
                return False
            BATCH_POST_FAILURES.inc()
            self.health.fail(POSTING, f"append failed: {exc}")
            self.clock.refused(getattr(exc, "reason", None))
            log.warning("batch_post_failed", error=str(exc), txs=len(built.txs), l2_time=built.l2_time)
            await self.follower.poll()
            return False
        self.follower.mined(built, mined.l1_block)
        self.appended(built, mined.tx_hash)
        if self.on_appended is not None:
            self.on_appended(index, prev_root, built, mined)
        await self.follower.poll()  # fold our own batch now, before building the next
        return True

    def _superseded(self, built: BuiltBatch, index: int) -> None:
        """Another batch extended the tip first (a race, or a failover's double post): expected;
        its transactions stay pending and are planned again on the new tip."""
        self.superseded += 1
        BATCHES_SUPERSEDED.inc()
        l1_read = self.follower.cursor.next_block - 1
        log.info("batch_superseded", index=index, txs=len(built.txs), l1_read=l1_read)

    def _stop_frozen(self, frozen: L1Frozen) -> None:
        """The Rollup is frozen: no append can succeed again, so none is tried (said once)."""
        self.unposted_since = None
        self.health.recover(POSTING)
        if not self.frozen_reported:
            self.frozen_reported = True
            log.warning("rollup_frozen", frozen_at=frozen.timestamp, post_root="0x" + frozen.post_root.hex())

    def _posted(self) -> None:
        """Nothing waits to be posted any more: posting is not failing."""
        self.unposted_since = None
        if self.health.recover(POSTING):
            log.info("batch_post_recovered")

    def appended(self, built: BuiltBatch, l1_tx: bytes) -> None:
        """A batch is on L1: count and log it."""
        self.last_post = time.monotonic()
        self._posted()
        BATCHES_POSTED.inc()
        BATCH_TXS.observe(len(built.txs))
        log.info(
            "batch_posted", txs=len(built.txs), queue_end=built.queue_end, l2_time=built.l2_time, l1_tx=l1_tx
        )

    async def step(self) -> bool:
        """One turn of the builder loop: wait for the size or the time trigger, then post."""
        try:
            await asyncio.wait_for(self.due.wait(), timeout=self.batch_interval_ms / 1000)
        except TimeoutError:
            pass
        self.due.clear()
        posted = await self.build_and_post()
        if posted and len(self.mempool) >= self.batch_max_txs:
            self.due.set()
        return False
