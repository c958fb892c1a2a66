"""The books of a member of a sequencer set that does not lead, kept in step with its leader's
commits as they arrive, one commit at a time, without matching anything itself.

The leader's commit says what changed (its transactions, already applied to this member's view,
and its order records); the books follow: orders its Fill, BundleFill and Cancel transactions
touch are brought in line with their Order leaves (`cancels.resync_in`), orders recorded as no
longer resting leave their books, and orders recorded resting rest, with the size the view leaves
them, behind the ones already at their price (they arrive in the leader's order). What cannot be
followed this way (an order back at rest after a dropped fill, whose place is by its old arrival;
a new order that would cross the book; a market not listed in the view) is refused with False:
the caller then rebuilds the view and the books whole (`Exchange.rebuild`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sequencer.exchange.cancels import resync_in
from sequencer.exchange.requests import Run
from sequencer.journal import OrderInsert, OrderRecords
from sequencer.matching import BookOrder, OrderFlags, RemoveReason, Side
from sequencer.stf.codec import decode_signed_order
from sequencer.stf.errors import RollupError
from sequencer.stf.keys import order_key
from sequencer.stf.trading import order_room
from sequencer.stf.types import Tx

if TYPE_CHECKING:
    from sequencer.exchange.engine import Exchange

_LEFT = {
    "filled": RemoveReason.FILLED,
    "expired": RemoveReason.EXPIRED,
    "rejected": RemoveReason.REJECTED,
}
"""Why an order left its book, by the status the leader recorded (any other: cancelled)."""


class CannotFollow(Exception):
    """A commit the books cannot follow one change at a time (see the module docstring)."""


def follow_commit(ex: Exchange, txs: Sequence[Tx], records: OrderRecords | None) -> bool:
    """Make the books what the leader's did after a commit whose transactions are in the view;
    False (the books possibly half changed) if they must be rebuilt instead."""
    final: dict[bytes, str] = {}
    inserted: dict[bytes, OrderInsert] = {}
    if records is not None:
        for row in records.inserts:
            ex.bump_seq(row[1])
            if row[2] == "order":
                inserted[row[0]] = row
                final[row[0]] = row[6]
        for digest, status, _ in records.statuses:
            final[digest] = status
    for digest, status in final.items():
        if status == "resting" and digest not in inserted and digest not in ex.resting:
            return False  # back at rest after a dropped fill: its place is by its old arrival
    touched = ex.touched_orders(txs)
    if not touched and not final:
        return True

    def body(run: Run) -> None:
        resync_in(ex, touched, run)
        for digest, status in final.items():
            resting = ex.resting.get(digest)
            if status != "resting" and resting is not None:
                book = ex.books[resting.signed.order.market]
                ex.left_book(book.remove(digest, _LEFT.get(status, RemoveReason.CANCELLED)), run)
        for digest, row in sorted(inserted.items(), key=lambda item: item[1][1]):
            if final[digest] == "resting" and digest not in ex.resting:
                _rest(ex, row, run)
        ex.covered_markets = run.markets

    try:
        ex.execute_replica(body)
    except (CannotFollow, RollupError):  # (an order filled, cancelled or expired in this view)
        return False
    return True


def _rest(ex: Exchange, row: OrderInsert, run: Run) -> None:
    """Put a new order the leader rested into its book with what the view leaves of it."""
    digest, seq, _, _, market_id, raw, _, _ = row
    signed = decode_signed_order(raw)
    order = signed.order
    if market_id >= len(run.markets):
        raise CannotFollow(f"market {market_id} is not listed in this view")
    market = run.markets[market_id]
    lot = market.params.lot_size
    remaining = order.size - order_room(ex.mempool.view.tree, order_key(digest), digest, order.size, lot)
    remaining -= remaining % lot
    if remaining <= 0:
        raise CannotFollow("an order recorded resting has nothing left in this view")
    book = ex.market_book(market_id, market)
    side = Side(order.side)
    best = book.best_ask() if side == Side.BUY else book.best_bid()
    if best is not None and (order.price >= best[0] if side == Side.BUY else order.price <= best[0]):
        raise CannotFollow("an order recorded resting would cross this book")
    flags = OrderFlags(order.flags)
    taker = BookOrder(digest, order.trader, market_id, side, order.price, remaining, flags, order.expiry, seq)
    result = book.place(taker, run.lo)
    if result.resting is None:
        raise CannotFollow("an order recorded resting did not rest here")
    ex.rested(signed, digest, seq, result.resting.size)
    run.messages.extend(result.events)
