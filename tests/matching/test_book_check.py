"""The order book's hooks for the sequencer: the fill check (accept, reject the maker, stop the
taker), removal for a reason, and finding and taking one maker for a bundle's leg."""

from __future__ import annotations

import pytest

from sequencer.matching import (
    BookOrder,
    Fill,
    OrderAdded,
    OrderBook,
    OrderFlags,
    OrderReduced,
    OrderRemoved,
    RemoveReason,
    Side,
    UnknownOrder,
    Verdict,
)
from sequencer.stf.errors import InvalidOrder
from tests.matching.helpers import ALICE, BOB, CAROL, LOT, MARKET, TICK, oid, order

BUY, SELL = Side.BUY, Side.SELL


def book_with_asks() -> OrderBook:
    """Asks: ALICE 30 @ 100 (order 1), CAROL 20 @ 100 (order 2), ALICE 40 @ 105 (order 3)."""
    book = OrderBook(MARKET, TICK, LOT)
    book.place(order(1, SELL, 100, 30, ALICE), now=0)
    book.place(order(2, SELL, 100, 20, CAROL), now=0)
    book.place(order(3, SELL, 105, 40, ALICE), now=0)
    return book


def test_place__check_accepts_every_fill__same_result_as_without_check() -> None:
    asked: list[tuple[bytes, bytes, int]] = []

    def check(taker: BookOrder, maker: BookOrder, size: int) -> Verdict:
        asked.append((taker.order_id, maker.order_id, size))
        return Verdict.ACCEPT

    with_check = book_with_asks().place(order(9, BUY, 105, 60, BOB), now=0, check=check)
    without = book_with_asks().place(order(9, BUY, 105, 60, BOB), now=0)
    assert with_check == without
    assert asked == [(oid(9), oid(1), 30), (oid(9), oid(2), 20), (oid(9), oid(3), 10)]


def test_place__check_rejects_a_maker__maker_removed_taker_goes_on_to_the_next() -> None:
    book = book_with_asks()

    def check(taker: BookOrder, maker: BookOrder, size: int) -> Verdict:
        return Verdict.REJECT_MAKER if maker.order_id == oid(1) else Verdict.ACCEPT

    result = book.place(order(9, BUY, 100, 30, BOB), now=0, check=check)
    assert result.fills == (Fill(oid(2), oid(9), CAROL, BOB, MARKET, 100, 20, BUY),)
    assert result.events[0] == OrderRemoved(oid(1), ALICE, MARKET, SELL, 100, 30, RemoveReason.REJECTED)
    assert result.events[1] == OrderRemoved(oid(2), CAROL, MARKET, SELL, 100, 20, RemoveReason.FILLED)
    assert result.resting is not None and result.resting.size == 10  # nothing else crosses 100
    assert book.get(oid(1)) is None
    assert book.depth(5) == (((100, 10),), ((105, 40),))


def test_place__check_stops_the_taker__fills_stand_remainder_refused_and_never_rests() -> None:
    book = book_with_asks()

    def check(taker: BookOrder, maker: BookOrder, size: int) -> Verdict:
        return Verdict.STOP if maker.order_id == oid(2) else Verdict.ACCEPT

    result = book.place(order(9, BUY, 105, 60, BOB), now=0, check=check)
    assert result.fills == (Fill(oid(1), oid(9), ALICE, BOB, MARKET, 100, 30, BUY),)
    assert result.resting is None
    assert result.events[-1] == OrderRemoved(oid(9), BOB, MARKET, BUY, 105, 30, RemoveReason.REFUSED)
    assert result.accepted_size == 60
    assert book.get(oid(2)) == order(2, SELL, 100, 20, CAROL)  # untouched: it keeps its place
    assert book.depth(5) == ((), ((100, 20), (105, 40)))


def test_place__check_stops_before_any_fill__nothing_trades_nothing_rests() -> None:
    book = book_with_asks()
    result = book.place(order(9, BUY, 100, 10, BOB), now=0, check=lambda *_: Verdict.STOP)
    assert result.fills == () and result.resting is None
    assert result.events == (OrderRemoved(oid(9), BOB, MARKET, BUY, 100, 10, RemoveReason.REFUSED),)
    assert len(book) == 3


def test_place__check_not_asked_for_expired_or_own_makers() -> None:
    book = OrderBook(MARKET, TICK, LOT)
    book.place(order(1, SELL, 100, 10, ALICE, expiry=5), now=0)
    book.place(order(2, SELL, 100, 10, BOB), now=0)
    book.place(order(3, SELL, 100, 10, CAROL), now=0)
    asked: list[bytes] = []

    def check(taker: BookOrder, maker: BookOrder, size: int) -> Verdict:
        asked.append(maker.order_id)
        return Verdict.ACCEPT

    result = book.place(order(9, BUY, 100, 10, BOB), now=5, check=check)
    assert asked == [oid(3)]
    assert [e.reason for e in result.events if isinstance(e, OrderRemoved)] == [
        RemoveReason.EXPIRED,
        RemoveReason.SELF_TRADE,
        RemoveReason.FILLED,
    ]


def test_remove__resting_order__removed_with_the_reason_given() -> None:
    book = book_with_asks()
    assert book.remove(oid(2), RemoveReason.REJECTED) == OrderRemoved(
        oid(2), CAROL, MARKET, SELL, 100, 20, RemoveReason.REJECTED
    )
    assert book.depth(5) == ((), ((100, 30), (105, 40)))
    with pytest.raises(UnknownOrder):
        book.remove(oid(2), RemoveReason.REJECTED)


def test_find_maker__skips_the_taker_own_expired_and_too_small_orders() -> None:
    book = OrderBook(MARKET, TICK, LOT)
    book.place(order(1, SELL, 100, 10, ALICE), now=0)  # too small for 20
    book.place(order(2, SELL, 100, 50, BOB), now=0)  # the taker's own
    book.place(order(3, SELL, 100, 50, CAROL, expiry=7), now=0)  # expired at 7
    book.place(order(4, SELL, 105, 20, ALICE), now=0)  # first that fits
    book.place(order(5, SELL, 110, 90, CAROL), now=0)  # does not cross 105
    found = book.find_maker(BUY, 105, 20, now=7, exclude=BOB)
    assert found == order(4, SELL, 105, 20, ALICE)
    assert book.find_maker(BUY, 100, 20, now=7, exclude=BOB) is None
    assert book.find_maker(BUY, 100, 20, now=6, exclude=BOB) == order(3, SELL, 100, 50, CAROL, expiry=7)
    assert book.find_maker(SELL, 1, 10, now=0) is None  # no bids
    assert len(book) == 5  # read-only


def test_take__part_then_rest__reduced_then_filled_and_level_sizes_follow() -> None:
    book = book_with_asks()
    assert book.take(oid(1), 10) == OrderReduced(oid(1), ALICE, MARKET, SELL, 100, 10, 20)
    assert book.get(oid(1)) is not None and book.get(oid(1)).size == 20  # type: ignore[union-attr]
    assert book.depth(1) == ((), ((100, 40),))
    assert book.take(oid(1), 20) == OrderRemoved(oid(1), ALICE, MARKET, SELL, 100, 20, RemoveReason.FILLED)
    assert book.depth(1) == ((), ((100, 20),))
    with pytest.raises(InvalidOrder):
        book.take(oid(2), 30)
    with pytest.raises(UnknownOrder):
        book.take(oid(1), 10)


def test_place__rest_after_rejections__events_describe_the_book() -> None:
    book = book_with_asks()
    result = book.place(
        order(9, BUY, 105, 100, BOB, OrderFlags.NONE), now=0, check=lambda *_: Verdict.REJECT_MAKER
    )
    assert result.fills == ()
    assert result.resting == order(9, BUY, 105, 100, BOB)
    assert isinstance(result.events[-1], OrderAdded)
    assert len(book) == 1 and book.best_ask() is None
