"""Derivation: the rollup chain as L1 data alone defines it.

`Chain` folds L1 events (queue entries: deposits, governance messages and forced transactions;
appended batches; reverts) into the canonical state, checking every batch with the one state
machine (`sequencer.stf.check_batch`). The sequencer uses it to follow the L1, the watcher
(`prover`) to find fraud: both run this same code.

A batch whose commitments do not match re-execution is recorded as `fraud` and nothing after it
is applied (all of it will be reverted when the fraud is proven); an honest sequencer does not
build on it. A batch whose calldata this node could not read as the contract committed to it
(`L1Batch.unreadable`: impossible while the Rollup and `contracts.calldata` agree) is recorded as
`unreadable` and derivation stops there too, until a revert removes it: the chain never skips a
batch it cannot check. A freeze of the Rollup (`L1Frozen`, protocol section 12) is recorded in
`frozen`: no batch follows it.

An L1 can reorganise its recent blocks. The chain keeps a journal of what each event folded from
a block that may still be reorganised away changed, and `rewind` takes back every event of the
blocks after a given one; `settle` drops the journal of blocks that will no longer be rewound.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sequencer.stf.errors import InvalidBatch
from sequencer.stf.l1types import (
    L1Batch,
    L1Deposit,
    L1Event,
    L1ForcedTx,
    L1Fraud,
    L1Frozen,
    L1Message,
    L1QueueEntry,
    L1Revert,
)
from sequencer.stf.state import State, copy_state, genesis_state, state_root
from sequencer.stf.transition import check_batch
from sequencer.stf.types import ChainConfig, L1Context


@dataclass(frozen=True)
class Fraud:
    """The first wrong commitment found on L1."""

    batch_index: int
    tx_index: int
    """Transaction whose post-root is wrong; -1 for a batch-level mismatch (queue fraud)."""
    reason: str
    """`InvalidBatch.reason` (a `REASON_*` of `sequencer.stf.transition`)."""


@dataclass(frozen=True)
class Unreadable:
    """The first batch on L1 whose data this node could not read: a critical error."""

    batch_index: int
    l1_tx_hash: bytes
    """The append transaction."""
    reason: str
    """What the calldata reader refused (`L1Batch.unreadable`)."""

    def describe(self) -> str:
        """One line for logs and health: what and where."""
        return (
            f"batch {self.batch_index} (L1 tx 0x{self.l1_tx_hash.hex()}) cannot be read: {self.reason}; "
            "the Rollup accepted calldata this node does not read as it did"
        )


@dataclass(frozen=True)
class RevertUndo:
    """What a revert changed, to take it back (`Chain.rewind`)."""

    batches: tuple[L1Batch, ...]
    """The batches it removed."""
    snapshots: dict[int, State]
    """The snapshots it dropped with them."""
    state: State
    valid_count: int
    fraud: Fraud | None
    unreadable: Unreadable | None


@dataclass(frozen=True)
class Folded:
    """One event folded from a block that may still be reorganised away (`Chain.journal`)."""

    event: L1Event
    revert: RevertUndo | None = None
    """For a revert: what it changed."""


@dataclass(frozen=True)
class Rewound:
    """What `Chain.rewind` took back."""

    l1_block: int
    """The block the chain was rewound to: every event after it is taken back."""
    events: list[L1Event]
    """The events taken back, in L1 order."""
    from_index: int
    """The first batch position whose batch changed; every batch before it stands."""
    batches_gone: int
    """Batches from `from_index` on that are no longer on the chain."""
    batches_back: int
    """Batches from `from_index` on that are on the chain again (a revert taken back)."""

    def facts(self) -> dict[str, int]:
        """The rewind in numbers, for a log line."""
        return {
            "fork_block": self.l1_block,
            "events_undone": len(self.events),
            "from_index": self.from_index,
            "batches_gone": self.batches_gone,
            "batches_back": self.batches_back,
        }


@dataclass
class Chain:
    """The canonical chain derived from L1 events."""

    config: ChainConfig
    state: State = field(default_factory=genesis_state)
    """State after the last valid batch."""
    batches: list[L1Batch] = field(default_factory=list)
    """Batches as they stand on L1 (position = batch index)."""
    queue: dict[int, L1QueueEntry] = field(default_factory=dict)
    """The Bridge queue (deposits, governance messages, forced transactions) by index."""
    valid_count: int = 0
    """How many batches (a prefix of `batches`) are applied and verified."""
    fraud: Fraud | None = None
    """The first invalid batch, until a revert removes it."""
    unreadable: Unreadable | None = None
    """The first batch whose data could not be read, until a revert removes it."""
    snapshots: dict[int, State] = field(default_factory=dict)
    """State before batch k (for reverts and fraud witnesses)."""
    challenge_window_seconds: int | None = None
    """When set, snapshots of final batches (which no proof can revert) are dropped."""
    frauds_seen: list[L1Fraud] = field(default_factory=list)
    reverts_seen: list[L1Revert] = field(default_factory=list)
    journal: deque[Folded] = field(default_factory=deque)
    """The events folded from blocks after `settled_block`, in L1 order (`rewind` takes them back)."""
    settled_block: int = -1
    """The last L1 block the chain will not be rewound to before (`settle`); the snapshots of the
    batches after it are kept whatever their age."""
    frozen: L1Frozen | None = None
    """The Rollup's freeze, once it happened: no batch is appended after it."""
    presigned: Callable[[bytes], bool] | None = None
    """Transactions (by hash) whose signatures need not be recovered again when a batch is
    re-executed (`check_batch`); None: every signature is checked."""

    def context(self, batch: L1Batch) -> L1Context:
        """What the state machine needs from L1 to apply `batch`: its queue range and its clock."""
        return L1Context(
            queue_end=batch.header.queue_end,
            # only the entries this batch may consume: [queue_start, queue_end)
            queue_hashes={
                i: self.queue[i].hash
                for i in range(batch.header.queue_start, batch.header.queue_end)
                if i in self.queue
            },
            l2_time=batch.header.l2_time,
        )

    def apply_event(self, event: L1Event) -> None:
        """Fold one L1 event into the chain."""
        undo: RevertUndo | None = None
        if isinstance(event, L1Deposit | L1Message | L1ForcedTx):
            self.queue[event.index] = event
        elif isinstance(event, L1Batch):
            self._on_batch(event)
        elif isinstance(event, L1Revert):
            undo = self._on_revert(event)
        elif isinstance(event, L1Frozen):
            self.frozen = event
        else:
            self.frauds_seen.append(event)
        self._journal(event, undo)

    def _journal(self, event: L1Event, revert: RevertUndo | None = None) -> None:
        if event.l1_block > self.settled_block:
            self.journal.append(Folded(event, revert))

    def settle(self, l1_block: int) -> None:
        """The chain will not be rewound to before `l1_block`: forget the journal up to it."""
        self.settled_block = max(self.settled_block, l1_block)
        while self.journal and self.journal[0].event.l1_block <= self.settled_block:
            self.journal.popleft()

    def rewind(self, l1_block: int) -> Rewound:
        """Take back every event folded from an L1 block after `l1_block` (those blocks were
        reorganised away), newest first, as if they had never been read. `l1_block` may not be
        before `settled_block` (a ValueError)."""
        if l1_block < self.settled_block:
            raise ValueError(f"cannot rewind to L1 block {l1_block}: settled up to {self.settled_block}")
        before = list(self.batches)
        undone: list[L1Event] = []
        while self.journal and self.journal[-1].event.l1_block > l1_block:
            folded = self.journal.pop()
            self._undo(folded)
            undone.append(folded.event)
        same = min(len(before), len(self.batches))
        first = next((i for i in range(same) if before[i] is not self.batches[i]), same)
        return Rewound(l1_block, undone[::-1], first, len(before) - first, len(self.batches) - first)

    def _undo(self, folded: Folded) -> None:
        event = folded.event
        if isinstance(event, L1Deposit | L1Message | L1ForcedTx):
            del self.queue[event.index]
        elif isinstance(event, L1Batch):
            self._truncate(event.header.index)
        elif isinstance(event, L1Revert):
            self.reverts_seen.pop()
            undo = folded.revert
            assert undo is not None  # every revert is journalled with what it changed
            self.batches.extend(undo.batches)
            self.snapshots.update(undo.snapshots)
            self.state, self.valid_count = undo.state, undo.valid_count
            self.fraud, self.unreadable = undo.fraud, undo.unreadable
        elif isinstance(event, L1Frozen):
            self.frozen = None  # (a freeze is seen once: nothing is appended after it)
        else:
            self.frauds_seen.pop()

    def _on_batch(self, batch: L1Batch) -> None:
        if batch.header.index != len(self.batches):
            raise InvalidBatch(
                f"L1 batch index {batch.header.index} does not follow {len(self.batches) - 1}", tx_index=-1
            )
        self.batches.append(batch)
        if self.fraud is None and self.unreadable is None and self.valid_count == batch.header.index:
            self._verify_next()

    def adopt_own(self, batch: L1Batch, post_state: State) -> bool:
        """Fold a batch this node built itself, without executing it again.

        Only when it is exactly what was built (the Rollup recomputed its commitments from our
        calldata) and it extends a fully verified chain: then `post_state` is what re-execution
        would give. Returns False (and does nothing) otherwise; the caller folds it normally.
        """
        if (
            self.fraud is not None
            or self.unreadable is not None
            or self.valid_count != len(self.batches)
            or batch.header.index != len(self.batches)
            or batch.header.prev_root != state_root(self.state)
            or state_root(post_state) != batch.header.post_root
        ):
            return False
        self.batches.append(batch)
        self.snapshots[batch.header.index] = self.state
        self.state = post_state
        self.valid_count += 1
        self._prune(batch.header.timestamp)
        self._journal(batch)
        return True

    def _verify_next(self) -> None:
        while self.fraud is None and self.unreadable is None and self.valid_count < len(self.batches):
            batch = self.batches[self.valid_count]
            if batch.unreadable:
                self.unreadable = Unreadable(batch.header.index, batch.l1_tx_hash, batch.unreadable)
                return
            before = copy_state(self.state)
            self.snapshots[batch.header.index] = before
            try:
                self.execute(batch)
            except InvalidBatch as exc:
                self.state = copy_state(before)
                self.fraud = Fraud(
                    batch.header.index, -1 if exc.tx_index is None else exc.tx_index, exc.reason
                )
                return
            self.valid_count += 1
            self._prune(batch.header.timestamp)

    def execute(self, batch: L1Batch) -> None:
        """Apply `batch` to `state` with the state machine, checking every commitment it makes;
        raises `InvalidBatch` at the first one that re-execution does not give."""
        check_batch(
            self.state,
            batch.header,
            list(batch.txs),
            list(batch.roots),
            self.context(batch),
            self.config,
            self.presigned,
        )

    def _prune(self, now: int) -> None:
        """Drop snapshots of batches that are final by `now` (an L1 time the chain has reached)
        and settled (a rewind cannot remove them)."""
        window = self.challenge_window_seconds
        if window is None:
            return
        for i in [
            i
            for i in self.snapshots
            if i < len(self.batches)
            and self.batches[i].header.timestamp + window < now
            and self.batches[i].l1_block <= self.settled_block
        ]:
            del self.snapshots[i]

    def _on_revert(self, event: L1Revert) -> RevertUndo:
        self.reverts_seen.append(event)
        k = event.from_index
        undo = RevertUndo(
            tuple(self.batches[k:]),
            {i: s for i, s in self.snapshots.items() if i > k},
            copy_state(self.state),  # a revert that removes nothing leaves the live state in place
            self.valid_count,
            self.fraud,
            self.unreadable,
        )
        if k < len(self.batches):
            self._truncate(k)
            self._verify_next()
        return undo

    def _truncate(self, k: int) -> None:
        """Remove batch `k` and every later one, with what was derived from them."""
        if k < self.valid_count:
            self.state = copy_state(self.snapshots[k])
            self.valid_count = k
        elif k == self.valid_count and k in self.snapshots:
            self.state = copy_state(self.snapshots[k])
        del self.batches[k:]
        for i in [i for i in self.snapshots if i > k]:
            del self.snapshots[i]
        if self.fraud is not None and self.fraud.batch_index >= k:
            self.fraud = None
        if self.unreadable is not None and self.unreadable.batch_index >= k:
            self.unreadable = None

    @property
    def tip_root(self) -> bytes:
        """Root after the last batch on L1 as claimed there (what the next batch must build on)."""
        return self.batches[-1].header.post_root if self.batches else state_root(genesis_state())

    @property
    def queue_end(self) -> int:
        """Queue position after the last batch on L1."""
        return self.batches[-1].header.queue_end if self.batches else 0

    @property
    def tip_l2_time(self) -> int:
        """Clock of the last batch on L1 (0 at genesis): the next batch's `l2_time` is not earlier."""
        return self.batches[-1].header.l2_time if self.batches else 0

    def pre_state_of(self, batch_index: int) -> State:
        """A copy of the state before `batch_index` (for witnesses)."""
        return copy_state(self.snapshots[batch_index])
