"""The L1 queue as the state machine consumes it: which entries a batch takes next, as which
transactions, and the L1 context they are applied with. Pure, shared by the sequencer's builder
and every node's derivation."""

from __future__ import annotations

from sequencer.stf.l1types import L1Deposit, L1ForcedTx, L1QueueEntry
from sequencer.stf.state import State, get_next_deposit_index
from sequencer.stf.types import Deposit, ForcedTx, L1Context, L1Message

QueueTx = Deposit | L1Message | ForcedTx
"""The transaction that consumes one L1 queue entry."""


def queue_tx(entry: L1QueueEntry) -> QueueTx:
    """The transaction consuming a queue entry: a Deposit, an L1Message for a message, a ForcedTx
    for a forced transaction."""
    if isinstance(entry, L1Deposit):
        return Deposit(queue_index=entry.index, to=entry.to, amount=entry.amount)
    if isinstance(entry, L1ForcedTx):
        return ForcedTx(queue_index=entry.index, tx=entry.signed_tx)
    return L1Message(queue_index=entry.index, payload=entry.payload)


def due_queue(state: State, queue: dict[int, L1QueueEntry], limit: int) -> list[QueueTx]:
    """Queue entries from the state's queue position on, in order, as many as are known
    (contiguous) up to `limit`, as the transactions that consume them."""
    out: list[QueueTx] = []
    i = get_next_deposit_index(state)
    while i in queue and len(out) < limit:
        out.append(queue_tx(queue[i]))
        i += 1
    return out


def queue_context(
    state: State, queue: dict[int, L1QueueEntry], due: list[QueueTx], l2_time: int
) -> L1Context:
    """The L1 context of a batch that consumes the `due` entries on top of `state`."""
    return L1Context(
        queue_end=get_next_deposit_index(state) + len(due),
        queue_hashes={q.queue_index: queue[q.queue_index].hash for q in due},
        l2_time=l2_time,
    )
