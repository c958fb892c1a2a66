"""Cancels, and transactions admitted as they come (`AdmitTxs`): the books follow the Order leaves
they change. A cancelled order leaves its book; a part filled outside the exchange (a Fill or
BundleFill sent as bytes) is taken off it. A Cancel of an order this sequencer never saw is
admitted all the same: the order can then never fill anywhere. Transactions that move an account
or a price keep resting orders backed by margin (`coverage`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sequencer.exchange.coverage import check_covered, cover_moved
from sequencer.exchange.records import CancelOutcome
from sequencer.exchange.requests import AdmitTxs, Finish, Run, answered
from sequencer.matching import OrderRemoved, RemoveReason
from sequencer.stf.eip712 import order_digest
from sequencer.stf.errors import RollupError
from sequencer.stf.state import get_order_state
from sequencer.stf.types import Cancel, L1Context

if TYPE_CHECKING:
    from sequencer.exchange.engine import Exchange


def place_cancel(ex: Exchange, tx: Cancel, run: Run) -> Finish:
    """Admit a signed Cancel and take its order out of its book (if it rests here)."""
    digest = order_digest(tx.order, ex.config)
    try:
        h = run.stage.add(tx)
    except RollupError as exc:
        return answered(exc)
    removed = 0
    if h not in run.stage.known and digest in ex.resting:
        event = ex.books[tx.order.market].remove(digest, RemoveReason.CANCELLED)
        ex.left_book(event, run)
        removed = event.size
    return lambda seqs: CancelOutcome(h, seqs[h], digest, removed > 0, removed)


def admit_txs(ex: Exchange, request: AdmitTxs, run: Run) -> Finish:
    """Admit transactions in order as `Mempool.submit_many` does; the books follow each one.
    A Transfer or Withdraw that would leave its sender's open orders uncovered is refused
    (`coverage.check_covered`); after any other, accounts it (or a market it moved) leaves
    uncovered have orders cancelled (`coverage.cover_moved`)."""
    # the staging's own clock: what these transactions are stamped with (`PendingTx.clock`)
    ctx = L1Context(queue_end=0, queue_hashes={}, l2_time=run.stage.clock)
    out: list[bytes | RollupError] = []
    stage = run.stage
    for item in request.items:
        point = stage.savepoint()
        try:
            h = stage.add(item, ctx=ctx)
            if len(stage) > point[0]:  # staged now (not one acknowledged before)
                tx = stage.items[-1][2]
                check_covered(ex, tx)
                resync_in(ex, ex.touched_orders([tx]), run)
                cover_moved(ex, run, [tx])
        except RollupError as exc:
            stage.rollback_to(point)
            out.append(exc)
            continue
        out.append(h)

    def finish(seqs: dict[bytes, int]) -> list[tuple[bytes, int] | RollupError]:
        return [r if isinstance(r, RollupError) else (r, seqs[r]) for r in out]

    return finish


def resync_in(ex: Exchange, digests: Iterable[bytes], run: Run) -> None:
    """Bring the resting orders among `digests` in line with their Order leaves in the view
    (which holds what the run staged)."""
    touched = [d for d in dict.fromkeys(digests) if d in ex.resting]
    view = ex.mempool.view
    for digest in touched:
        order = ex.resting[digest].signed.order
        book = ex.books[order.market]
        leaf = get_order_state(view, digest)
        if leaf.cancelled:
            ex.left_book(book.remove(digest, RemoveReason.CANCELLED), run)
            continue
        in_book = book.get(digest)
        assert in_book is not None
        excess = in_book.size - max(order.size - leaf.filled, 0)
        if excess > 0:
            event = book.take(digest, excess)
            if isinstance(event, OrderRemoved):
                ex.left_book(event, run)
            else:
                ex.reduced(event, run)
