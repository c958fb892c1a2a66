"""This sequencer as a member of the sequencer set: it follows the set's log, takes the lease when
no one holds it, and leads while it holds it.

- A member that does not lead applies every entry of the log as it is appended (`Applier`), its
  view and books following entry by entry, and refuses writes (`NotLeader`, naming the leader;
  the API forwards them to the leader). When its view or books could not follow an entry (dirty),
  it rebuilds them from what it applied within `refresh_s`.
- When the lease is free it takes it (`Lease`, a compare-and-set in JetStream's key-value store),
  applies the log to its end as the stream's Raft leader has it, appends its `TermStart` fenced on
  that end (an earlier leader's late append is refused from then on), rebuilds its view and books
  only if dirty (after its L1 read has reached the batches the log names), and admits: from then
  on each commit goes into the log before it is answered (`Replicator`). A take-over that has
  not ended within `TAKE_OVER_LIMIT_S` deposes the member, so the lease passes to another one.
- The lease is renewed from a thread of its own (`Renewer`), so a long turn of this loop does not
  lose it; a loop that has not turned for `renewer.MAX_STALL_S` is no longer renewed.
- A leader that loses the lease (it could not renew it in time: cut off, paused, or the key taken)
  or whose append is refused stops acknowledging at once and is deposed: what it committed since
  its last append is in no log, so the process ends (`on_deposed`) and, started again, rebuilds
  its durable log from the set's log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contracts.logs import get_logger
from sequencer.batchlog import LoggedBatches, posted_entry
from sequencer.cluster.entries import TermStart, encode_entry
from sequencer.cluster.errors import ClusterUnavailable, Fenced
from sequencer.cluster.lease import Lease
from sequencer.cluster.log import ReplicatedLog
from sequencer.cluster.renewer import Renewer
from sequencer.errors import CriticalError, NotLeader
from sequencer.metrics import CLUSTER_LEADER, CLUSTER_LEADER_CHANGES, CLUSTER_LOG_POSITION
from sequencer.replication import Applier, Replicator

if TYPE_CHECKING:
    from contracts.l1 import Mined
    from sequencer.builder import BuiltBatch
    from sequencer.node import SequencerNode

log = get_logger("cluster")

REFRESH_S = 1.0
"""How soon a member that does not lead rebuilds its view and books once they could not follow."""
TERM_START_TRIES = 5
LOOK_EVERY_S = 0.5
"""How often a member reads who holds the lease and where the log ends (for /health)."""
TAKE_EVERY_S = 0.1
"""How often a member that does not lead tries to take the lease (the failover's last delay)."""
IN_FLIGHT_WAIT_S = 10.0
"""Longest a new leader that must rebuild waits for its L1 read to reach the log's batches."""
HEARTBEAT_S = 0.1
"""How often the member's loop tells the lease renewer that it turns."""
FOLLOW_STOP_S = 2.0
"""Longest a member taking over waits for its follow task to end (it applies nothing after the
term starts, ended or not)."""
TAKE_OVER_LIMIT_S = 30.0
"""Longest a member holding the lease may take to lead: past it the member is deposed, so that a
take-over stuck on anything lets another member lead instead of holding the set still."""


@dataclass
class MemberOptions:
    """How a member leads and follows."""

    name: str
    """This member's name in the lease: the URL its API answers at (followers name it to clients)."""
    refresh_s: float = REFRESH_S


class Member:
    """One member of the sequencer set (see the module docstring)."""

    def __init__(
        self,
        node: SequencerNode,
        log_: ReplicatedLog,
        lease: Lease,
        options: MemberOptions,
        on_deposed: Callable[[str], None],
        renewer: Renewer | None = None,
    ) -> None:
        self.node = node
        self.log = log_
        self.lease = lease
        self.options = options
        self.on_deposed = on_deposed
        self.renewer = renewer
        """Renews the lease from its own thread while this member leads (None: this loop does)."""
        self.role = "follower"
        """follower, candidate (taking over), leader, or deposed."""
        self.applier = Applier(node.store, node.mempool, node.follower.included_on_l1, node.exchange.follow)
        self.replicator = Replicator(log_, lease.held, self._depose)
        self.batches = LoggedBatches(node.follower)
        """Batches the log says a leader appended that this member's L1 read has not reached."""
        self.applier.on_batch_posted = self.batches.note
        self.leader_name: str | None = None
        """The lease holder as last read (None: unknown, or no one)."""
        self.log_end = 0
        """The log's last position as last read."""
        self.leader_changes = 0
        self.was_slashed = False
        """A batch of this member's was proven wrong (it takes the lease no more)."""
        self.broken: str | None = None
        """Why this member cannot apply the log any more (a critical error; it takes no lease)."""
        self._next_look = 0.0
        self._follow_task: asyncio.Task[None] | None = None
        self._following = False
        """The follow task may apply entries (false from the moment this member's term starts)."""
        self._tasks: list[asyncio.Task[Any]] = []

    # ---- what the node asks ------------------------------------------------------------

    def slashed(self) -> None:
        """One of this member's batches was proven wrong on L1 (its bond is gone): it never leads
        again in this process, and stops at once if it leads."""
        self.was_slashed = True
        if self.role in ("leader", "candidate"):
            self._depose("slashed: a batch of ours was proven wrong on L1")

    def leading(self) -> bool:
        """Whether this member may acknowledge and post now (it leads and its lease holds)."""
        return self.role == "leader" and self.lease.held() and self.replicator.failed is None

    def check_leading(self) -> None:
        """Raise `NotLeader` unless this member may acknowledge now."""
        if not self.leading():
            leader = self.leader_name if self.leader_name != self.options.name else None
            raise NotLeader(
                f"this sequencer ({self.options.name}) is a {self.role} of the set;"
                + (f" the leader is {leader}" if leader else " no leader is known yet"),
                leader,
            )

    def barrier(self) -> asyncio.Future[None] | None:
        """What an admission round waits for before answering (`Replicator.barrier`)."""
        return self.replicator.barrier()

    def batch_posted(self, index: int, prev_root: bytes, built: BuiltBatch, mined: Mined) -> None:
        """This leader's batch `index`, built on `prev_root`, was mined on L1: a `BatchPosted`
        entry into the log, fenced like every append (a new leader then waits for it on L1 instead
        of building on the tip it moves)."""
        if self.role == "leader":
            entry = posted_entry(index, prev_root, built, mined.tx_hash, mined.l1_block)
            self.replicator.record_entry(encode_entry(entry))

    def postable_seq(self) -> int:
        """Highest transaction sequence number a batch may hold (what the log holds)."""
        return self.replicator.replicated_seq

    def position(self) -> int:
        """The last position of the set's log this member's state holds."""
        return self.replicator.position if self.role == "leader" else self.applier.applied.position

    def status(self) -> dict[str, Any]:
        """The member's role, the lease holder and its log position (for /health)."""
        applied = self.position()
        return {
            "name": self.options.name,
            "role": self.role,
            "leader": self.leader_name,
            "term": self.lease.term if self.role == "leader" else self.applier.applied.term,
            "log_position": applied,
            "log_end": max(self.log_end, applied),
            "log_lag": max(0, self.log_end - applied),
            "leader_changes": self.leader_changes,
        }

    # ---- start and run -----------------------------------------------------------------

    async def catch_up(self) -> None:
        """Apply the log from its beginning to its end as it is now (at start, before the node
        reconciles its durable log with L1)."""
        end = await self.log.last_seq()
        self.applier.dirty = True  # the node's start rebuilds the view and books from it all
        async with self.log.reader(self.applier.applied.position) as reader:
            while reader.position < end:
                record = await reader.next(30.0)
                if record is None:
                    raise ClusterUnavailable(f"log entries up to {end} did not arrive")
                self.applier.apply(record)
        self.log_end = end
        # the durable log is the truth from here: the node reconciles it with L1 and plans what
        # is pending again (transactions the log brought that L1 already holds are not pending)
        self.node.mempool.pending = []
        self.node.mempool.hashes = set()
        CLUSTER_LOG_POSITION.set(self.applier.applied.position)
        log.info("log_caught_up", position=self.applier.applied.position, term=self.applier.applied.term)

    def start(self) -> None:
        """Start following the log and contending for the lease (after `catch_up` and the node's
        start)."""
        self.applier.dirty = False  # the node's start rebuilt the view and books from the log
        self.applier.since_refresh = []
        self._following = True
        self._follow_task = asyncio.create_task(self._follow())
        self._tasks = [
            asyncio.create_task(self._lease_loop()),
            asyncio.create_task(self._refresh_loop()),
            asyncio.create_task(self.lease.watch()),
        ]
        if self.renewer is not None:
            self._tasks.append(asyncio.create_task(self._heartbeat(self.renewer)))

    async def stop(self) -> None:
        """Stop the member's tasks and give the lease up if held."""
        tasks = [*self._tasks, *([self._follow_task] if self._follow_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.renewer is not None:
            await asyncio.to_thread(self.renewer.stop)
        if self.role == "leader":
            try:
                await self.lease.release()
            except ClusterUnavailable as exc:
                log.warning("lease_release_failed", error=str(exc))

    async def _follow(self) -> None:
        """Apply entries as they are appended, for as long as this member does not lead."""
        while True:
            try:
                async with self.log.reader(self.applier.applied.position) as reader:
                    while True:
                        record = await reader.next(None)
                        assert record is not None
                        if not self._following:
                            return  # this member's term started: it writes the log from here
                        self.applier.apply(record)
                        CLUSTER_LOG_POSITION.set(record.seq)
            except ClusterUnavailable as exc:
                log.warning("log_follow_retry", position=self.applier.applied.position, error=str(exc))
                await asyncio.sleep(0.25)
            except CriticalError as exc:  # the log is not what it must be: this member stops here
                self.broken = f"{type(exc).__name__}: {exc}"
                log.critical("log_unreadable", position=self.applier.applied.position, error=self.broken)
                return

    async def _refresh_loop(self) -> None:
        """A follower's view and books, rebuilt from what it applied when dirty (checked every
        `refresh_s`)."""
        while True:
            await asyncio.sleep(self.options.refresh_s)
            if self.role == "follower" and self.applier.dirty:
                await self.refresh()

    async def refresh(self) -> None:
        """Rebuild the view and the books from the durable log as applied so far."""
        async with self.node.follower.lock:
            self.applier.dirty = False
            applied, self.applier.since_refresh = self.applier.since_refresh, []
            self.node.follower.rebase([])
            for tx in applied:
                self.node.mempool.risk.note(tx)

    async def _lease_loop(self) -> None:
        """Renew the lease every fifth of its ttl while leading (or taking over); else try to take
        it every `TAKE_EVERY_S` once the lease may have lapsed (`Lease.may_be_free`)."""
        take_over: asyncio.Task[None] | None = None
        while self.role != "deposed":
            try:
                if self.role in ("leader", "candidate"):
                    held = self.lease.held() if self.renewer is not None else await self.lease.renew()
                    if not held:
                        self._depose("the lease was lost")
                        return
                elif (
                    not self.was_slashed
                    and self.broken is None
                    and self.lease.may_be_free()
                    and await self.lease.try_acquire()
                ):
                    self.role = "candidate"
                    self._renewing(True)
                    take_over = asyncio.create_task(self._take_over_or_give_up())
                    self._tasks.append(take_over)
                if time.monotonic() >= self._next_look:  # who leads, and where the log ends
                    self._next_look = time.monotonic() + LOOK_EVERY_S
                    current = await self.lease.current()
                    self._note_leader(None if current is None else current.holder)
                    self.log_end = await self.log.last_seq()
            except ClusterUnavailable as exc:
                if self.role in ("leader", "candidate") and not self.lease.held():
                    self._depose(f"the lease could not be renewed in time: {exc}")
                    return
                log.warning("lease_loop_retry", role=self.role, error=str(exc))
            leading = self.role in ("leader", "candidate")
            await asyncio.sleep(self.lease.ttl / 5 if leading else self.lease.next_try_in(TAKE_EVERY_S))

    def _note_leader(self, name: str | None) -> None:
        if name != self.leader_name:
            log.info("leader_seen", leader=name, previous=self.leader_name, member=self.options.name)
            if name is not None:
                self.leader_changes += 1
                CLUSTER_LEADER_CHANGES.inc()
            self.leader_name = name

    async def _take_over_or_give_up(self) -> None:
        """`_take_over`; if it fails (NATS away, the log unreadable), the lease goes back; if it
        has not ended within `TAKE_OVER_LIMIT_S`, the member is deposed (holding the lease without
        leading would hold the whole set still)."""
        task = asyncio.create_task(self._take_over())
        try:
            await asyncio.wait_for(asyncio.shield(task), TAKE_OVER_LIMIT_S)
        except TimeoutError:
            where = [f"{f.f_code.co_name}:{f.f_lineno}" for f in task.get_stack()]
            task.cancel()
            log.error("take_over_stuck", limit_s=TAKE_OVER_LIMIT_S, where=where)
            self._depose(f"taking over did not end within {TAKE_OVER_LIMIT_S:.0f} s")
        except asyncio.CancelledError:  # the member stops
            task.cancel()
            raise
        except Exception as exc:
            if self.role == "deposed":
                return
            log.error("take_over_failed", error=f"{type(exc).__name__}: {exc}")
            if self._follow_task is None:  # it led for a moment: its state is the log's no more
                self._depose(f"taking over failed: {exc}")
                return
            self.role = "follower"
            await self._give_up_lease()

    async def _heartbeat(self, renewer: Renewer) -> None:
        """Tell the renewer this loop turns (it stops renewing a lease whose loop is stuck)."""
        while True:
            renewer.beat()
            await asyncio.sleep(HEARTBEAT_S)

    def _renewing(self, on: bool) -> None:
        if self.renewer is not None:
            self.renewer.active = on

    async def _take_over(self) -> None:
        """Holding the lease: apply the log to its end, start the term in it, rebuild, lead."""
        started = time.monotonic()
        term = self.lease.term or 0
        position = None
        for _ in range(TERM_START_TRIES):
            end = await self.log.last_seq()
            while self.applier.applied.position < end:  # the follow task applies; wait for it
                if not self.lease.held():
                    break
                await asyncio.sleep(0.005)
            if not self.lease.held():
                break
            try:
                position = await self.log.append(encode_entry(TermStart(term, self.options.name)), end)
                break
            except Fenced:
                continue  # a late append of the old leader landed: apply it too, and again
        if position is None or not self.lease.held():
            self.role = "follower"
            log.warning("take_over_abandoned", term=term)
            await self._give_up_lease()
            return
        if self._follow_task is not None:
            self._following = False
            self._follow_task.cancel()
            done, _ = await asyncio.wait({self._follow_task}, timeout=FOLLOW_STOP_S)
            if not done:
                where = [f"{f.f_code.co_name}:{f.f_lineno}" for f in self._follow_task.get_stack()]
                log.warning("follow_task_slow_to_stop", waited_s=FOLLOW_STOP_S, where=where)
            self._follow_task = None
        self.applier.applied.position = position
        self.replicator.position = position
        self.replicator.replicated_seq = self.node.store.top_seq()
        self.node.mempool.journal = self.replicator.record
        self.node.mempool.replica = False
        self._tasks.append(asyncio.create_task(self.replicator.run()))
        if self.applier.dirty or self.node.mempool.unwritten_drops:
            # a rebuild plans the pending list on this member's L1 tip: not on one older than the
            # batches the log says were appended (their deposits would be missing, and work
            # that needs them dropped)
            deadline = time.monotonic() + IN_FLIGHT_WAIT_S
            while self.batches.waiting() and self.lease.held() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await self.refresh()  # rebuilding writes what changed (drops, statuses): into the log too
        self.role = "leader"
        self._note_leader(self.options.name)
        CLUSTER_LEADER.set(1)
        log.info(
            "leading",
            term=term,
            position=position,
            pending=len(self.node.mempool),
            took_ms=round((time.monotonic() - started) * 1000),
        )

    async def _give_up_lease(self) -> None:
        self._renewing(False)
        try:
            await self.lease.release()
        except ClusterUnavailable as exc:
            log.warning("lease_release_failed", error=str(exc))

    def _depose(self, reason: str) -> None:
        """Stop acknowledging at once; the process ends (`on_deposed`)."""
        if self.role == "deposed":
            return
        was = self.role
        self.role = "deposed"
        self._renewing(False)
        CLUSTER_LEADER.set(0)
        log.critical("deposed", reason=reason, was=was, member=self.options.name)
        self.on_deposed(reason)
