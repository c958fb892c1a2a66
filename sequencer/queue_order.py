"""Where the L1 queue entries go among the pending transactions of a batch (docs/protocol.md
section 8, "Queue entries").

Entries go first, in queue order, except after a forced Cancel of an order that pending
transactions name (fills of it acknowledged before the entry was seen, or a Cancel of it): that
entry, and every entry after it in the queue, goes right after the last of them, so that a cancel
forced through L1 never voids a fill acknowledged before it. Pending transactions admitted before
the entry was seen cannot depend on the entries queued after it, so they apply the same there.
The batch builder and the mempool's view (`Mempool.rebase`) place the entries alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice

from sequencer.stf.codec import forced_inner
from sequencer.stf.errors import DecodeError
from sequencer.stf.queue import QueueTx
from sequencer.stf.types import BundleFill, Cancel, Fill, ForcedTx, Order, Tx


def _orders_named(tx: Tx) -> tuple[Order, ...]:
    """The orders whose Order leaves a pending transaction reads (a bundle's own never rests)."""
    if type(tx) is Fill:
        return tx.maker.order, tx.taker.order
    if type(tx) is Cancel:
        return (tx.order,)
    if type(tx) is BundleFill:
        return tuple(signed.order for signed in tx.makers)
    return ()


def _forced_cancel(entry: QueueTx) -> Order | None:
    """The order a forced Cancel names (None for any other entry)."""
    if type(entry) is not ForcedTx:
        return None
    try:
        inner = forced_inner(entry)
    except DecodeError:
        return None
    return inner.order if type(inner) is Cancel else None


def entry_slots(due: Sequence[QueueTx], pending: Iterable[Tx], limit: int | None = None) -> list[int]:
    """For each due queue entry, in order, how many of the first pending transactions go before
    it (non-decreasing): none until a forced Cancel of an order that one of the first `limit`
    pending transactions names (all of them: None), then one past the last such transaction.
    A forced Cancel whose order only later transactions name keeps its place (those are refused
    after it)."""
    slots = [0] * len(due)
    cancelled: dict[Order, int] = {}  # order -> its first forced Cancel (a second one is a no-op)
    for j, entry in enumerate(due):
        order = _forced_cancel(entry)
        if order is not None:
            cancelled.setdefault(order, j)
    if not cancelled:
        return slots
    last: dict[int, int] = {}  # entry -> the last pending transaction naming its order
    for i, tx in enumerate(islice(pending, limit)):
        for named in _orders_named(tx):
            j = cancelled.get(named)
            if j is not None:
                last[j] = i
    before = 0
    for j in range(len(due)):
        if j in last:
            before = max(before, last[j] + 1)
        slots[j] = before
    return slots
