"""Properties of the order book over random streams of places, cancels and expiries.

(a) conservation: every accepted size is filled, resting, or removed, exactly;
(b) the book is never crossed; (c) replaying a stream gives the same outputs, byte for byte;
(d) the book agrees with a naive O(n^2) matcher written here from the rules alone;
(a), (b) and (d) also hold with a fill check that rejects some makers and stops some takers.
"""

from __future__ import annotations

import pickle
from collections import defaultdict
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.matching import (
    BookEvent,
    BookOrder,
    DuplicateOrder,
    Fill,
    OrderAdded,
    OrderBook,
    OrderFlags,
    OrderReduced,
    OrderRemoved,
    PlaceResult,
    PostOnlyWouldCross,
    ReduceOnlyWouldIncrease,
    RemoveReason,
    Side,
    UnknownOrder,
    Verdict,
)
from sequencer.stf.errors import InvalidTransaction, OrderExpired
from tests.matching.helpers import LOT, MARKET, TICK, oid

TRADERS = (b"\x01" * 20, b"\x02" * 20, b"\x03" * 20)
FLAGS = (
    OrderFlags.NONE,
    OrderFlags.NONE,
    OrderFlags.IOC,
    OrderFlags.POST_ONLY,
    OrderFlags.REDUCE_ONLY,
    OrderFlags.REDUCE_ONLY | OrderFlags.IOC,
)


def max_reduce(trader: bytes, market: int, side: Side) -> int:
    """A fixed, position-like cap (0 for some trader/side pairs, so refusals happen too)."""
    return ((trader[0] * 3 + int(side)) % 4) * LOT + (LOT // 2)


def fill_check(taker: BookOrder, maker: BookOrder, size: int) -> Verdict:
    """A deterministic check: mostly accepts, sometimes rejects the maker or stops the taker."""
    x = (maker.order_id[-1] * 7 + taker.order_id[-1] * 3 + size // LOT) % 10
    return Verdict.ACCEPT if x < 7 else Verdict.REJECT_MAKER if x < 9 else Verdict.STOP


@dataclass(frozen=True)
class Place:
    side: Side
    price_ticks: int
    size_lots: int
    trader: int
    flags: OrderFlags
    ttl: int  # 0 = no expiry, else expiry = now + ttl
    dt: int


@dataclass(frozen=True)
class Cancel:
    target: int  # index into the orders placed so far
    dt: int


@dataclass(frozen=True)
class Expire:
    dt: int


Op = Place | Cancel | Expire

TTLS = (0, 0, 1, 3, 6)


def decode_op(code: int) -> Op:
    """One op from one integer, digit by digit (mixed radix).

    Drawing one integer per op instead of eight fields makes generation several times cheaper,
    and it still shrinks well: smaller codes decode to plainer ops (a place, low price, no flags).
    Mostly places (7 in 10), so books get deep enough to sweep; cancels and expiries between.
    """
    code, kind = divmod(code, 10)
    code, dt = divmod(code, 3)
    if kind < 7:
        code, side = divmod(code, 2)
        code, price_ticks = divmod(code, 6)
        code, size_lots = divmod(code, 5)
        code, trader = divmod(code, len(TRADERS))
        code, flags = divmod(code, len(FLAGS))
        ttl = TTLS[code % len(TTLS)]
        return Place(Side(side), price_ticks + 1, size_lots + 1, trader, FLAGS[flags], ttl, dt)
    if kind < 9:
        return Cancel(code % 201, dt)
    return Expire(dt)


streams = st.lists(st.integers(0, 2**32 - 1).map(decode_op), min_size=20, max_size=80)


# ---- the reference: a naive matcher written from the rules, sharing no code with the book ----


@dataclass
class Resting:
    """A resting order of the naive book and what is left of it."""

    order: BookOrder
    left: int


class NaiveBook:
    """Resting orders in a flat list in arrival order; every match scans the whole list."""

    def __init__(self) -> None:
        self.resting: list[Resting] = []

    @staticmethod
    def crosses(maker: BookOrder, taker: BookOrder) -> bool:
        if maker.side == taker.side:
            return False
        return maker.price <= taker.price if taker.side == Side.BUY else maker.price >= taker.price

    @staticmethod
    def priority(r: Resting) -> tuple[int, int]:
        """Better price first (lowest ask, highest bid), then earlier arrival."""
        return (r.order.price if r.order.side == Side.SELL else -r.order.price, r.order.seq)

    @staticmethod
    def dead(order: BookOrder, now: int) -> bool:
        return order.expiry != 0 and now >= order.expiry

    @staticmethod
    def removed(order: BookOrder, size: int, reason: RemoveReason) -> OrderRemoved:
        return OrderRemoved(order.order_id, order.trader, MARKET, order.side, order.price, size, reason)

    def place(self, taker: BookOrder, now: int, check: bool = False) -> PlaceResult:
        if any(r.order.order_id == taker.order_id for r in self.resting):
            raise DuplicateOrder(taker.order_id)
        if self.dead(taker, now):
            raise OrderExpired(taker.expiry, now)
        size = taker.size
        if taker.flags & OrderFlags.REDUCE_ONLY:
            cap = max_reduce(taker.trader, MARKET, taker.side)
            size = min(size, cap // LOT * LOT)
            if size == 0:
                raise ReduceOnlyWouldIncrease(taker.order_id, cap)
        if taker.flags & OrderFlags.POST_ONLY:
            live = [r for r in self.resting if self.crosses(r.order, taker) and not self.dead(r.order, now)]
            if live:
                raise PostOnlyWouldCross(
                    taker.order_id, taker.price, min(live, key=self.priority).order.price
                )
        fills: list[Fill] = []
        events: list[BookEvent] = []
        remaining = size
        stopped = False
        while remaining:
            candidates = [r for r in self.resting if self.crosses(r.order, taker)]
            if not candidates:
                break
            best = min(candidates, key=self.priority)
            maker = best.order
            if self.dead(maker, now):
                self.resting.remove(best)
                events.append(self.removed(maker, best.left, RemoveReason.EXPIRED))
            elif maker.trader == taker.trader:
                self.resting.remove(best)
                events.append(self.removed(maker, best.left, RemoveReason.SELF_TRADE))
            elif check and fill_check(taker, maker, min(best.left, remaining)) == Verdict.REJECT_MAKER:
                self.resting.remove(best)
                events.append(self.removed(maker, best.left, RemoveReason.REJECTED))
            elif check and fill_check(taker, maker, min(best.left, remaining)) == Verdict.STOP:
                stopped = True
                break
            else:
                qty = min(best.left, remaining)
                fills.append(
                    Fill(
                        maker.order_id,
                        taker.order_id,
                        maker.trader,
                        taker.trader,
                        MARKET,
                        maker.price,
                        qty,
                        taker.side,
                    )
                )
                remaining -= qty
                best.left -= qty
                if best.left == 0:
                    self.resting.remove(best)
                    events.append(self.removed(maker, qty, RemoveReason.FILLED))
                else:
                    events.append(
                        OrderReduced(
                            maker.order_id, maker.trader, MARKET, maker.side, maker.price, qty, best.left
                        )
                    )
        resting = None
        if remaining and stopped:
            events.append(self.removed(taker, remaining, RemoveReason.REFUSED))
        elif remaining and taker.flags & OrderFlags.IOC:
            events.append(self.removed(taker, remaining, RemoveReason.IOC_REMAINDER))
        elif remaining:
            self.resting.append(Resting(taker, remaining))
            resting = replace(taker, size=remaining)
            events.append(OrderAdded(resting))
        return PlaceResult(tuple(fills), resting, tuple(events), size)

    def cancel(self, order_id: bytes) -> OrderRemoved:
        for r in self.resting:
            if r.order.order_id == order_id:
                self.resting.remove(r)
                return self.removed(r.order, r.left, RemoveReason.CANCELLED)
        raise UnknownOrder(order_id)

    def expire(self, now: int) -> tuple[OrderRemoved, ...]:
        dead = sorted(
            (r for r in self.resting if self.dead(r.order, now)), key=lambda r: (r.order.expiry, r.order.seq)
        )
        for r in dead:
            self.resting.remove(r)
        return tuple(self.removed(r.order, r.left, RemoveReason.EXPIRED) for r in dead)

    def orders(self, side: Side) -> list[BookOrder]:
        mine = sorted((r for r in self.resting if r.order.side == side), key=self.priority)
        return [replace(r.order, size=r.left) for r in mine]


# ---- running a stream ------------------------------------------------------------------------


def run(
    ops: list[Op], book: OrderBook | NaiveBook, check: bool = False, with_fill_check: bool = False
) -> list[object]:
    """Apply `ops` to `book`; returns every output (result, event or error code) in order.

    With `check`, asserts after every call that the book is not crossed and that its levels
    add up to its orders. With `with_fill_check`, places run `fill_check` on every fill.
    """
    out: list[object] = []
    now = 0
    ids: list[bytes] = []
    for n, op in enumerate(ops):
        now += op.dt
        try:
            if isinstance(op, Place):
                expiry = now + op.ttl if op.ttl else 0
                order = BookOrder(
                    oid(n),
                    TRADERS[op.trader],
                    MARKET,
                    op.side,
                    op.price_ticks * TICK,
                    op.size_lots * LOT,
                    op.flags,
                    expiry,
                    n,
                )
                ids.append(order.order_id)
                if isinstance(book, OrderBook):
                    out.append(book.place(order, now, max_reduce, fill_check if with_fill_check else None))
                else:
                    out.append(book.place(order, now, with_fill_check))
            elif isinstance(op, Cancel):
                out.append(book.cancel(ids[op.target % len(ids)] if ids else oid(10**6)))
            else:
                out.append(book.expire(now))
        except InvalidTransaction as e:
            out.append(e.code)
        if check:
            assert isinstance(book, OrderBook)
            check_book(book)
    return out


def check_book(book: OrderBook) -> None:
    """The book is not crossed, and depth is exactly the sum of its orders per price."""
    bid, ask = book.best_bid(), book.best_ask()
    if bid is not None and ask is not None:
        assert bid[0] < ask[0]
    for side, levels in zip((Side.BUY, Side.SELL), book.depth(10**9), strict=True):
        totals: dict[int, int] = defaultdict(int)
        for o in book.orders(side):
            assert o.size > 0
            totals[o.price] += o.size
        assert levels == tuple(totals.items())
    assert len(book) == sum(1 for _ in book.orders(Side.BUY)) + sum(1 for _ in book.orders(Side.SELL))


# ---- the properties -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(streams, st.booleans())
def test_place__random_streams__sizes_conserved_and_book_never_crossed(
    ops: list[Op], with_fill_check: bool
) -> None:
    book = OrderBook(MARKET, TICK, LOT)
    out = run(ops, book, check=True, with_fill_check=with_fill_check)
    accepted: dict[bytes, int] = {}
    filled: dict[bytes, int] = defaultdict(int)
    gone: dict[bytes, int] = defaultdict(int)  # left unfilled: cancelled, expired, self-trade, IOC
    for item in out:
        if isinstance(item, PlaceResult):
            taker = item.resting.order_id if item.resting else None
            events: tuple[BookEvent, ...] = item.events
            for fill in item.fills:
                assert fill.maker != fill.taker
                filled[fill.maker_order_id] += fill.size
                filled[fill.taker_order_id] += fill.size
                taker = fill.taker_order_id
            for event in events:
                if isinstance(event, OrderRemoved) and event.reason in (
                    RemoveReason.IOC_REMAINDER,
                    RemoveReason.REFUSED,
                ):
                    taker = event.order_id
            assert taker is not None
            accepted[taker] = item.accepted_size
        elif isinstance(item, OrderRemoved):
            events = (item,)
        elif isinstance(item, tuple):
            events = item
        else:
            continue
        for event in events:
            if isinstance(event, OrderRemoved) and event.reason != RemoveReason.FILLED:
                gone[event.order_id] += event.size
    for order_id, size in accepted.items():
        resting = book.get(order_id)
        assert filled[order_id] <= size
        assert filled[order_id] + gone[order_id] + (resting.size if resting else 0) == size


@settings(max_examples=100, deadline=None)
@given(streams)
def test_place__same_stream_twice__identical_outputs_byte_for_byte(ops: list[Op]) -> None:
    first = run(ops, OrderBook(MARKET, TICK, LOT))
    second = run(ops, OrderBook(MARKET, TICK, LOT))
    assert pickle.dumps(first) == pickle.dumps(second)


@settings(max_examples=400, deadline=None)
@given(streams, st.booleans())
def test_place__random_streams__same_outputs_as_naive_matcher(ops: list[Op], with_fill_check: bool) -> None:
    book = OrderBook(MARKET, TICK, LOT)
    naive = NaiveBook()
    assert run(ops, book, with_fill_check=with_fill_check) == run(ops, naive, with_fill_check=with_fill_check)
    for side in Side:
        assert list(book.orders(side)) == naive.orders(side)
