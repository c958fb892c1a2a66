"""Batch building: entries due from the L1 queue (deposits, governance messages, forced
transactions), then pending transactions (a forced Cancel of an order pending fills name after
them: `queue_order`), each with its root, all under the batch's clock `l2_time`.

The builder works on a copy of the chain state; the chain itself only moves when the batch is
seen on L1 (`sequencer.stf.chain`), so a posting that fails leaves nothing to undo.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Generator, Sequence
from dataclasses import dataclass

from sequencer.mempool import PendingTx
from sequencer.queue_order import entry_slots
from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.constants import MAX_BATCH_TXS
from sequencer.stf.l1types import L1QueueEntry
from sequencer.stf.queue import QueueTx, due_queue, queue_context
from sequencer.stf.state import State, copy_state
from sequencer.stf.transition import apply_decoded
from sequencer.stf.types import ChainConfig


@dataclass(frozen=True)
class BuiltBatch:
    """A batch ready to append."""

    txs: list[bytes]
    roots: list[bytes]
    queue_end: int
    l2_time: int
    """The batch's clock, as every transaction saw it."""
    included: list[PendingTx]
    """Pending transactions it holds (queue entries are not in the mempool)."""
    skipped: list[tuple[PendingTx, str]]
    """Pending transactions that no longer applied (with the reason); not in the batch."""
    post_state: State | None = None
    """The state after the batch, as the builder computed it (None: unknown, or not what its
    roots commit to; then the batch is folded from L1 by re-executing it)."""


def build_batch(
    state: State,
    queue: dict[int, L1QueueEntry],
    pending: list[PendingTx],
    config: ChainConfig,
    *,
    l2_time: int,
    max_txs: int = MAX_BATCH_TXS,
) -> BuiltBatch | None:
    """`build_batch_steps` run to its end."""
    steps = build_batch_steps(state, queue, pending, config, l2_time=l2_time, max_txs=max_txs)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def build_batch_steps(
    state: State,
    queue: dict[int, L1QueueEntry],
    pending: list[PendingTx],
    config: ChainConfig,
    *,
    l2_time: int,
    max_txs: int = MAX_BATCH_TXS,
    take: int | None = None,
) -> Generator[None, None, BuiltBatch | None]:
    """Build the next batch, pausing (`yield`) after each pending transaction so that a caller
    on an event loop can serve requests between them (`pending` may grow meanwhile: what is
    appended is taken in order like the rest).

    Build the next batch on top of `state` (which is not modified), with the clock `l2_time`;
    None if there is nothing to post and nothing was skipped (a batch with no `txs` but some
    `skipped` is not to be posted: its skipped transactions are to be dropped).

    The due queue entries come first, in queue order (a deposit as a Deposit, a governance
    message as an L1Message, a forced transaction as a ForcedTx), then the pending transactions
    that still apply; but a forced Cancel of an order that pending transactions the batch holds
    name goes after the last of them, with the entries after it (`queue_order.entry_slots`). With
    `take`, only the first `take` pending transactions are considered (those its clock was chosen
    for, see `batch_clock`).
    """
    work = copy_state(state)
    due = due_queue(work, queue, max_txs)
    ctx = queue_context(work, queue, due, l2_time)
    room = max_txs - len(due)  # every due entry goes in: the ones a cancel waits for must fit
    slots = entry_slots(due, (p.tx for p in pending), room if take is None else min(room, take))
    txs: list[bytes] = []
    roots: list[bytes] = []

    def add_entries(entries: Sequence[QueueTx]) -> None:
        for entry in entries:
            outcome = apply_decoded(work, entry, ctx, config, signer_verified=True)
            if not outcome.applied:  # the L1 record disagrees with itself: never post it
                raise RuntimeError(f"queue entry {entry.queue_index} does not apply: {outcome.error}")
            txs.append(encode_tx(entry))
            roots.append(outcome.post_root)

    placed = 0  # due entries in the batch so far
    included: list[PendingTx] = []
    skipped: list[tuple[PendingTx, str]] = []
    for i, ptx in enumerate(pending):
        upto = bisect_right(slots, i)  # the entries that go before pending transaction i
        add_entries(due[placed:upto])
        placed = upto
        if len(txs) + len(due) - placed >= max_txs or (take is not None and i >= take):
            break
        outcome = apply_decoded(work, ptx.tx, ctx, config, signer_verified=True, tx_hash=ptx.hash)
        if not outcome.applied:
            skipped.append((ptx, f"{getattr(outcome.error, 'code', 'invalid')}: {outcome.error}"))
            continue
        txs.append(ptx.raw)
        roots.append(outcome.post_root)
        included.append(ptx)
        yield
    add_entries(due[placed:])
    if not txs and not skipped:
        return None
    return BuiltBatch(
        txs=txs,
        roots=roots,
        queue_end=ctx.queue_end,
        l2_time=l2_time,
        included=included,
        skipped=skipped,
        post_state=work,
    )


def batch_clock(
    pending: Sequence[PendingTx],
    *,
    tip: int,
    upper: int,
    max_txs: int,
    floor: int | None = None,
) -> tuple[int, int]:
    """The next batch's clock and how many pending transactions it takes: `(l2_time, take)`.

    A transaction was checked at admission for the rules that need time to have come (oracle
    prices, due funding) at its `clock`, and for the rules that get stricter later (expiry,
    price staleness) at its `deadline`: the exchange checks fills `margin` seconds ahead, other
    transactions at their clock itself; cancels and oracle updates have none. A
    batch built later at the wall clock would find a backlog stale and drop it, acknowledged as
    it is. So the batch takes the longest run of first pending transactions (at most `max_txs`)
    with a clock that suits every one: past all their clocks, before all their deadlines; and it
    runs at the latest of their clocks. The clock is kept within [`tip`, `upper`] (the chain's
    clock, and the latest the L1 allows now) and at least `floor` (the earliest the L1 accepts:
    a backlog older than the L1's lag limit runs at that limit, and what is stale by then is
    dropped). When `upper` is below the transactions' clocks (a node following the L1 head),
    those needing time to have come may not apply and are dropped.
    """
    take = 0
    lo = hi = upper
    for ptx in pending[:max_txs]:
        clock = ptx.clock or upper  # unknown: planned against the present
        deadline = clock if ptx.deadline is None else max(ptx.deadline, clock)
        if take and (max(lo, clock) > min(hi, deadline)):
            break
        lo, hi = (clock, deadline) if take == 0 else (max(lo, clock), min(hi, deadline))
        take += 1
    l2_time = min(upper, lo)
    if floor is not None:
        l2_time = max(l2_time, floor)
    return max(tip, l2_time), take


def batch_tx_hashes(txs: list[bytes] | tuple[bytes, ...]) -> list[bytes]:
    """The hashes the API uses for a batch's transactions."""
    return [tx_hash(raw) for raw in txs]
