"""The order book, case by case: matching, priority, order types, cancels, expiry, refusals."""

from __future__ import annotations

import pytest

from sequencer.matching import (
    MAX_PRICE,
    DuplicateOrder,
    Fill,
    OrderAdded,
    OrderBook,
    OrderFlags,
    OrderReduced,
    OrderRemoved,
    PostOnlyWouldCross,
    ReduceOnlyWouldIncrease,
    RemoveReason,
    Side,
    UnknownOrder,
)
from sequencer.stf.errors import InvalidOrder, InvalidTransaction, OrderExpired, PriceOffTick, SizeOffLot
from tests.matching.helpers import ALICE, BOB, CAROL, LOT, MARKET, TICK, oid, order

BUY, SELL = Side.BUY, Side.SELL
IOC, POST_ONLY, REDUCE_ONLY = OrderFlags.IOC, OrderFlags.POST_ONLY, OrderFlags.REDUCE_ONLY


def new_book() -> OrderBook:
    return OrderBook(MARKET, TICK, LOT)


def snapshot(book: OrderBook) -> tuple[object, ...]:
    """Everything observable about a book, to prove a refusal changed nothing."""
    return (len(book), book.depth(100), tuple(book.orders(BUY)), tuple(book.orders(SELL)))


def test_place__buy_crosses_ask__fills_at_maker_price() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 30, ALICE), now=0)
    result = book.place(order(2, BUY, 120, 30, BOB), now=0)
    assert result.fills == (Fill(oid(1), oid(2), ALICE, BOB, MARKET, 100, 30, BUY),)
    assert result.resting is None
    assert result.events == (OrderRemoved(oid(1), ALICE, MARKET, SELL, 100, 30, RemoveReason.FILLED),)
    assert len(book) == 0
    assert book.best_ask() is None


def test_place__sell_crosses_bid__fills_at_maker_price() -> None:
    book = new_book()
    book.place(order(1, BUY, 120, 30, ALICE), now=0)
    result = book.place(order(2, SELL, 100, 30, BOB), now=0)
    assert [(f.price, f.size, f.taker_side) for f in result.fills] == [(120, 30, SELL)]


def test_place__no_cross__rests_with_added_event() -> None:
    book = new_book()
    book.place(order(1, SELL, 105, 30, ALICE), now=0)
    result = book.place(order(2, BUY, 100, 20, BOB), now=0)
    assert result.fills == ()
    assert result.resting == order(2, BUY, 100, 20, BOB)
    assert result.events == (OrderAdded(order(2, BUY, 100, 20, BOB)),)
    assert book.best_bid() == (100, 20)
    assert book.best_ask() == (105, 30)


def test_place__same_level__fifo_by_arrival() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, ALICE), now=0)
    book.place(order(2, SELL, 100, 10, CAROL), now=0)
    book.place(order(3, SELL, 100, 10, ALICE), now=0)
    result = book.place(order(4, BUY, 100, 20, BOB), now=0)
    assert [f.maker_order_id for f in result.fills] == [oid(1), oid(2)]
    assert [o.order_id for o in book.orders(SELL)] == [oid(3)]


def test_place__taker_smaller_than_maker__maker_keeps_place_with_remainder() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 50, ALICE), now=0)
    book.place(order(2, SELL, 100, 10, CAROL), now=0)
    result = book.place(order(3, BUY, 100, 20, BOB), now=0)
    assert [(f.maker_order_id, f.size) for f in result.fills] == [(oid(1), 20)]
    assert result.events == (OrderReduced(oid(1), ALICE, MARKET, SELL, 100, 20, 30),)
    assert book.get(oid(1)) == order(1, SELL, 100, 30, ALICE)
    assert [o.order_id for o in book.orders(SELL)] == [oid(1), oid(2)]
    assert book.best_ask() == (100, 40)


def test_place__taker_larger_than_book__sweeps_levels_best_first_and_rests_remainder() -> None:
    book = new_book()
    book.place(order(1, SELL, 110, 10, ALICE), now=0)
    book.place(order(2, SELL, 100, 10, ALICE), now=0)
    book.place(order(3, SELL, 105, 10, CAROL), now=0)
    book.place(order(4, SELL, 120, 10, CAROL), now=0)
    result = book.place(order(5, BUY, 110, 50, BOB), now=0)
    assert [(f.maker_order_id, f.price, f.size) for f in result.fills] == [
        (oid(2), 100, 10),
        (oid(3), 105, 10),
        (oid(1), 110, 10),
    ]
    assert result.resting == order(5, BUY, 110, 20, BOB)
    assert result.accepted_size == 50
    assert book.depth(5) == (((110, 20),), ((120, 10),))


def test_place__ioc_with_remainder__remainder_cancelled_not_rested() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, ALICE), now=0)
    result = book.place(order(2, BUY, 100, 30, BOB, IOC), now=0)
    assert [f.size for f in result.fills] == [10]
    assert result.resting is None
    assert result.events[-1] == OrderRemoved(oid(2), BOB, MARKET, BUY, 100, 20, RemoveReason.IOC_REMAINDER)
    assert len(book) == 0
    assert book.best_bid() is None


def test_place__ioc_not_crossing__nothing_trades_or_rests() -> None:
    book = new_book()
    book.place(order(1, SELL, 105, 10, ALICE), now=0)
    result = book.place(order(2, BUY, 100, 30, BOB, IOC), now=0)
    assert result.fills == ()
    assert result.events == (OrderRemoved(oid(2), BOB, MARKET, BUY, 100, 30, RemoveReason.IOC_REMAINDER),)
    assert snapshot(book) == (1, ((), ((105, 10),)), (), (order(1, SELL, 105, 10, ALICE),))


def test_market_price__ioc_at_it__sweeps_every_level() -> None:
    book = new_book()
    for n, price in enumerate((100, 500, 10_000), start=1):
        book.place(order(n, SELL, price, 10, ALICE), now=0)
    price = book.market_price(BUY)
    assert price % TICK == 0
    assert MAX_PRICE - TICK < price <= MAX_PRICE
    assert book.market_price(SELL) == TICK
    result = book.place(order(9, BUY, price, 100, BOB, IOC), now=0)
    assert [f.price for f in result.fills] == [100, 500, 10_000]
    assert len(book) == 0


def test_place__post_only_crossing__raises_and_book_unchanged() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, ALICE), now=0)
    book.place(order(2, BUY, 95, 10, CAROL), now=0)
    before = snapshot(book)
    with pytest.raises(PostOnlyWouldCross) as caught:
        book.place(order(3, BUY, 100, 10, BOB, POST_ONLY), now=0)
    assert (caught.value.price, caught.value.best, caught.value.code) == (100, 100, "post_only_would_cross")
    assert snapshot(book) == before


def test_place__post_only_crossing_own_order__raises() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, BOB), now=0)
    with pytest.raises(PostOnlyWouldCross):
        book.place(order(2, BUY, 100, 10, BOB, POST_ONLY), now=0)
    assert book.get(oid(1)) == order(1, SELL, 100, 10, BOB)


def test_place__post_only_crossing_only_expired__removes_them_and_rests() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, ALICE, expiry=50), now=0)
    result = book.place(order(2, BUY, 100, 10, BOB, POST_ONLY), now=50)
    assert result.fills == ()
    assert result.events == (
        OrderRemoved(oid(1), ALICE, MARKET, SELL, 100, 10, RemoveReason.EXPIRED),
        OrderAdded(order(2, BUY, 100, 10, BOB, POST_ONLY)),
    )
    assert book.depth(5) == (((100, 10),), ())


def test_place__post_only_not_crossing__rests() -> None:
    book = new_book()
    book.place(order(1, SELL, 105, 10, ALICE), now=0)
    result = book.place(order(2, BUY, 100, 10, BOB, POST_ONLY), now=0)
    assert result.resting == order(2, BUY, 100, 10, BOB, POST_ONLY)


def test_cancel__resting_order__removed_with_event_and_level_gone() -> None:
    book = new_book()
    book.place(order(1, BUY, 100, 10, ALICE), now=0)
    event = book.cancel(oid(1))
    assert event == OrderRemoved(oid(1), ALICE, MARKET, BUY, 100, 10, RemoveReason.CANCELLED)
    assert book.get(oid(1)) is None
    assert oid(1) not in book
    assert book.best_bid() is None
    assert book.depth(3) == ((), ())


def test_cancel__middle_of_level__others_keep_their_order() -> None:
    book = new_book()
    for n in (1, 2, 3):
        book.place(order(n, BUY, 100, 10, ALICE), now=0)
    book.place(order(4, BUY, 90, 10, ALICE), now=0)
    book.cancel(oid(2))
    assert [o.order_id for o in book.orders(BUY)] == [oid(1), oid(3), oid(4)]
    assert book.best_bid() == (100, 20)
    book.cancel(oid(4))  # a level that is not the best
    assert book.depth(5) == (((100, 20),), ())


def test_cancel__partly_filled_order__removes_the_remainder() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 50, ALICE), now=0)
    book.place(order(2, BUY, 100, 20, BOB), now=0)
    assert book.cancel(oid(1)).size == 30


def test_cancel__unknown_id__raises_unknown_order() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, ALICE), now=0)
    book.place(order(2, BUY, 100, 10, BOB), now=0)  # fills order 1
    with pytest.raises(UnknownOrder) as caught:
        book.cancel(oid(1))
    assert caught.value.code == "unknown_order"


def test_expire__orders_past_expiry__removed_in_expiry_then_seq_order() -> None:
    book = new_book()
    book.place(order(1, BUY, 100, 10, ALICE, expiry=30), now=0)
    book.place(order(2, SELL, 200, 10, ALICE, expiry=20), now=0)
    book.place(order(3, BUY, 90, 10, ALICE, expiry=20), now=0)
    book.place(order(4, BUY, 80, 10, ALICE), now=0)
    assert book.expire(19) == ()
    events = book.expire(30)
    assert [(e.order_id, e.reason) for e in events] == [
        (oid(2), RemoveReason.EXPIRED),
        (oid(3), RemoveReason.EXPIRED),
        (oid(1), RemoveReason.EXPIRED),
    ]
    assert [o.order_id for o in book.orders(BUY)] == [oid(4)]
    assert book.expire(10**9) == ()


def test_expire__order_that_left_otherwise__not_reported_again() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, ALICE, expiry=30), now=0)
    book.place(order(2, BUY, 100, 10, BOB), now=0)
    book.place(order(3, SELL, 100, 10, ALICE, expiry=30), now=0)
    book.cancel(oid(3))
    assert book.expire(30) == ()


def test_expire__many_stale_heap_entries__still_expires_exactly_the_live_ones() -> None:
    book = new_book()
    n = 1
    for _ in range(300):  # enough stale entries to force heap rebuilds
        book.place(order(n, SELL, 100, 10, ALICE, expiry=1_000), now=0)
        book.place(order(n + 1, BUY, 100, 10, BOB), now=0)
        n += 2
    book.place(order(n, SELL, 100, 10, ALICE, expiry=1_000), now=0)
    assert len(book._expiries) < 200  # stale entries were dropped
    assert [e.order_id for e in book.expire(1_000)] == [oid(n)]


def test_place__expired_maker_in_the_way__removed_and_skipped() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, ALICE, expiry=10), now=0)
    book.place(order(2, SELL, 100, 10, CAROL), now=0)
    result = book.place(order(3, BUY, 100, 10, BOB), now=10)
    assert [f.maker_order_id for f in result.fills] == [oid(2)]
    assert result.events[0] == OrderRemoved(oid(1), ALICE, MARKET, SELL, 100, 10, RemoveReason.EXPIRED)
    assert len(book) == 0


def test_place__expired_taker__raises_order_expired() -> None:
    book = new_book()
    with pytest.raises(OrderExpired) as caught:
        book.place(order(1, BUY, 100, 10, ALICE, expiry=10), now=10)
    assert (caught.value.expiry, caught.value.now) == (10, 10)
    assert len(book) == 0


def test_place__taker_meets_own_maker__maker_cancelled_and_matching_continues() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, BOB), now=0)
    book.place(order(2, SELL, 100, 10, ALICE), now=0)
    book.place(order(3, SELL, 105, 10, BOB), now=0)
    result = book.place(order(4, BUY, 110, 30, BOB), now=0)
    assert [f.maker_order_id for f in result.fills] == [oid(2)]
    assert all(f.maker != f.taker for f in result.fills)
    assert [(e.order_id, e.reason) for e in result.events if isinstance(e, OrderRemoved)] == [
        (oid(1), RemoveReason.SELF_TRADE),
        (oid(2), RemoveReason.FILLED),
        (oid(3), RemoveReason.SELF_TRADE),
    ]
    assert result.resting == order(4, BUY, 110, 20, BOB)
    assert book.depth(5) == (((110, 20),), ())


def test_place__price_off_tick__raises_and_book_unchanged() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, ALICE), now=0)
    before = snapshot(book)
    with pytest.raises(PriceOffTick) as caught:
        book.place(order(2, BUY, 101, 10, BOB), now=0)
    assert (caught.value.price, caught.value.tick, caught.value.code) == (101, TICK, "price_off_tick")
    assert snapshot(book) == before


def test_place__size_off_lot__raises_and_book_unchanged() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, ALICE), now=0)
    before = snapshot(book)
    with pytest.raises(SizeOffLot) as caught:
        book.place(order(2, BUY, 100, 15, BOB), now=0)
    assert (caught.value.size, caught.value.lot, caught.value.code) == (15, LOT, "size_off_lot")
    assert snapshot(book) == before


def test_place__same_id_resting__raises_duplicate_order() -> None:
    book = new_book()
    book.place(order(1, BUY, 100, 10, ALICE), now=0)
    with pytest.raises(DuplicateOrder):
        book.place(order(1, BUY, 100, 10, ALICE, seq=2), now=0)
    assert len(book) == 1


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (order(5, BUY, 100, 10, market=MARKET + 1), "market"),
        (order(5, BUY, 100, 10, trader=b"\x01" * 19), "20-byte"),
        (order(5, BUY, 0, 10), "price"),
        (order(5, BUY, MAX_PRICE + 1, 10), "price"),
        (order(5, BUY, 100, 0), "size"),
        (order(5, BUY, 100, 10, flags=POST_ONLY | IOC), "flags 0x05"),
        (order(5, BUY, 100, 10, flags=OrderFlags(8)), "flags 0x08"),
        (order(5, BUY, 100, 10, expiry=-1), "expiry"),
        (order(5, BUY, 100, 10, seq=1), "seq"),
    ],
)
def test_place__malformed_order__raises_invalid_order_and_book_unchanged(bad: object, reason: str) -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 10, BOB), now=0)
    before = snapshot(book)
    with pytest.raises(InvalidOrder) as caught:
        book.place(bad, now=0)  # type: ignore[arg-type]
    assert reason in str(caught.value)
    assert caught.value.code == "invalid_order"
    assert snapshot(book) == before


def test_place__reduce_only__size_capped_at_max_reduce_rounded_to_lot() -> None:
    book = new_book()
    book.place(order(1, SELL, 100, 100, ALICE), now=0)
    asked: list[tuple[bytes, int, Side]] = []

    def max_reduce(trader: bytes, market: int, side: Side) -> int:
        asked.append((trader, market, side))
        return 37

    result = book.place(order(2, BUY, 100, 50, BOB, REDUCE_ONLY), now=0, max_reduce=max_reduce)
    assert asked == [(BOB, MARKET, BUY)]
    assert result.accepted_size == 30
    assert [f.size for f in result.fills] == [30]
    assert book.get(oid(1)) is not None and book.get(oid(1)).size == 70  # type: ignore[union-attr]


def test_place__reduce_only_capped_remainder__rests_with_capped_size() -> None:
    book = new_book()
    result = book.place(order(1, SELL, 100, 50, ALICE, REDUCE_ONLY), now=0, max_reduce=lambda *_: 20)
    assert result.resting is not None and result.resting.size == 20
    assert book.best_ask() == (100, 20)


@pytest.mark.parametrize("cap", [0, 9, -5])
def test_place__reduce_only_cap_below_a_lot__raises_and_book_unchanged(cap: int) -> None:
    book = new_book()
    with pytest.raises(ReduceOnlyWouldIncrease) as caught:
        book.place(order(1, SELL, 100, 50, ALICE, REDUCE_ONLY), now=0, max_reduce=lambda *_: cap)
    assert caught.value.cap == cap
    assert len(book) == 0


def test_place__reduce_only_without_max_reduce__not_capped() -> None:
    book = new_book()
    result = book.place(order(1, SELL, 100, 50, ALICE, REDUCE_ONLY), now=0)
    assert result.accepted_size == 50


def test_place__max_reduce_for_plain_order__not_called() -> None:
    book = new_book()

    def max_reduce(trader: bytes, market: int, side: Side) -> int:
        raise AssertionError("only reduce-only orders are capped")

    assert book.place(order(1, SELL, 100, 50, ALICE), now=0, max_reduce=max_reduce).accepted_size == 50


def test_depth__several_orders_per_price__aggregated_best_first_and_truncated() -> None:
    book = new_book()
    for n, (side, price, size) in enumerate(
        [(BUY, 90, 10), (BUY, 95, 20), (BUY, 90, 30), (BUY, 80, 10), (SELL, 110, 10), (SELL, 105, 40)],
        start=1,
    ):
        book.place(order(n, side, price, size, ALICE), now=0)
    assert book.depth(2) == (((95, 20), (90, 40)), ((105, 40), (110, 10)))
    assert book.depth(0) == ((), ())
    assert book.best_bid() == (95, 20)
    assert book.best_ask() == (105, 40)
    assert len(book) == 6


def test_best_bid_and_ask__empty_book__none() -> None:
    book = new_book()
    assert (book.best_bid(), book.best_ask(), book.depth(10), len(book)) == (None, None, ((), ()), 0)


def test_order_book__bad_tick_or_lot__raises_value_error() -> None:
    with pytest.raises(ValueError):
        OrderBook(MARKET, 0, LOT)


def test_errors__every_book_error__is_an_invalid_transaction_with_a_code() -> None:
    errors = [
        InvalidOrder("x"),
        PriceOffTick(1, 5),
        SizeOffLot(1, 10),
        DuplicateOrder(oid(1)),
        UnknownOrder(oid(1)),
        OrderExpired(1, 2),
        PostOnlyWouldCross(oid(1), 1, 1),
        ReduceOnlyWouldIncrease(oid(1), 0),
    ]
    assert all(isinstance(e, InvalidTransaction) for e in errors)
    assert len({e.code for e in errors}) == len(errors)


def test_bench_book__small_stream__reports_integer_rates() -> None:
    from sequencer.matching.bench import bench_book

    figures = bench_book(2_000, repeats=1)
    assert figures["orders"] == 2_000
    assert figures["fills"] > 0
    assert all(isinstance(v, int) and v >= 0 for v in figures.values())
    assert figures["orders_per_s"] > 0
