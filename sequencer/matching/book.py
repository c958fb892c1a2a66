"""One market's limit order book with price-time priority.

The sequencer feeds every signed order of a market through `OrderBook.place` in arrival order;
the fills that come out become the batch's trade transactions, which the state machine checks
again (signatures, liveness, the maker's price, remaining sizes, margin, fees). The book is
therefore an optimisation of the sequencer, not a rule of the protocol: it is pure (no I/O, no
clock: `now` is passed in), integer-only and deterministic, so two sequencers fed the same calls
produce the same fills and events. What makes an order valid (side, flags, tick, lot, expiry) is
the state machine's rule, not the book's: the book checks it with `sequencer.stf.trading`'s own
functions and raises the state machine's errors.

Rules:

- Price-time priority. A taker meets the best opposite price level first and, within a level,
  the order that arrived first (lowest `seq`). It trades while the level's price crosses its
  limit, always at the MAKER's price. A partly filled maker keeps its place with the remainder.
- The remainder of a taker rests at its limit price, except for IOC orders, whose remainder is
  cancelled (an `OrderRemoved` with reason IOC_REMAINDER).
- Market orders are IOC orders at the extreme price of their side (`OrderBook.market_price`):
  a buy at the highest tick multiple not above `MAX_PRICE`, a sell at one tick. They sweep the
  book; any slippage limit is the sequencer's to apply by choosing a tighter IOC price.
- POST_ONLY orders that would trade on arrival are refused (`PostOnlyWouldCross`) and the book is
  unchanged. "Would trade" means a LIVE opposite order crosses, including the trader's own: the
  book never cancels a resting order to let a post-only order rest. Expired opposite orders do
  not block it; they are removed (events) when it is placed.
- Expired makers (`sequencer.stf.trading.expired`) that a taker meets are removed (reason
  EXPIRED) and skipped; `expire(now)` removes all of them. Until then an expired order still
  counts in `best_bid`, `best_ask` and `depth`: call `expire` before reading the book when that
  matters.
- Self-trade prevention, "cancel the resting order": when a taker reaches a maker of the same
  trader, the maker is cancelled (reason SELF_TRADE), nothing trades, and the taker goes on to
  the next maker. So a trader can replace its own quotes by crossing them, and the state machine
  never sees a fill whose two sides are one account.
- REDUCE_ONLY needs the trader's position, which the book does not know: `place` takes a
  `max_reduce(trader, market, side)` callable giving the size that would only reduce the position
  (None = no limit). The order's size is capped at it, rounded down to a lot; a cap below one lot
  refuses the order (`ReduceOnlyWouldIncrease`). Only the arriving order is capped: a reduce-only
  order that rests can outlive the position it reduced, so the state machine re-checks
  reduce-only at every fill and the sequencer should cancel resting reduce-only orders a
  position change invalidates.
- A fill check (`place`'s `check`, the sequencer's call into the state machine) is asked before
  every fill: it may accept it, reject the maker (removed, reason REJECTED; the taker goes on to
  the next maker) or stop the taker (matching ends, the fills so far stand, the remainder is
  refused with reason REFUSED and never rests). Without a check every fill is accepted.
- Order ids are unique among RESTING orders (`DuplicateOrder`); the book does not remember
  finished orders (memory would grow forever). Refusing a replayed, already filled order is the
  mempool's job, and the state machine refuses to fill an order beyond its signed size.
- `seq` must strictly increase across accepted `place` calls, so time priority is exactly `seq`
  order and equals arrival order.

Data structure: each side keeps a dict price -> level and a sorted list of sort keys (the price
for bids, minus the price for asks) with the best level LAST, so the best is `keys[-1]` (O(1)) and
emptying the best level is a `list.pop()`. A new level is placed with `bisect.insort`: an
O(log L) search plus a memmove of the L price levels, which is tiny next to the order count. A
level is an `OrderedDict` id -> order (a C doubly linked list), so FIFO pops and cancels by id are
both O(1) and nothing is removed lazily. Expiries sit in a heap keyed (expiry, seq) with lazy
deletion: entries of orders that left for another reason are skipped when popped, and the heap is
rebuilt when stale entries outnumber live ones.

One file though long: it is one data structure, the book and its private levels, whose rules above
are the longest part.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import replace

from sequencer.matching.errors import (
    DuplicateOrder,
    PostOnlyWouldCross,
    ReduceOnlyWouldIncrease,
    UnknownOrder,
)
from sequencer.matching.types import (
    MAX_PRICE,
    MAX_SIZE,
    BookEvent,
    BookOrder,
    Fill,
    OrderAdded,
    OrderFlags,
    OrderReduced,
    OrderRemoved,
    PlaceResult,
    RemoveReason,
    Side,
    Verdict,
)
from sequencer.stf.errors import InvalidOrder
from sequencer.stf.trading import (
    check_flags,
    check_price,
    check_side,
    check_size,
    check_unexpired,
    expired,
)

MaxReduce = Callable[[bytes, int, Side], int]
"""`max_reduce(trader, market, side)`: the size of `side` that would only reduce the trader's
position in `market` (0 when it has none to reduce on that side)."""

FillCheck = Callable[[BookOrder, BookOrder, int], Verdict]
"""`check(taker, maker, size)`: asked before each fill of `size` between the arriving `taker` and
the resting `maker` (as placed; its remaining size is at least `size`). It must not raise: the
book is part-way through the order when it asks."""

_ACCEPT = Verdict.ACCEPT
_REJECT_MAKER = Verdict.REJECT_MAKER

# Flags as plain ints: `IntFlag.__and__` builds a new enum member and costs more than a fill.
_POST_ONLY = int(OrderFlags.POST_ONLY)
_REDUCE_ONLY = int(OrderFlags.REDUCE_ONLY)
_IOC = int(OrderFlags.IOC)
_STALE_SLACK = 64
"""Stale expiry-heap entries tolerated beyond the live ones before a rebuild."""


class _Entry:
    """A resting order: the order as placed, what is left of it, and its level (for O(1) cancel)."""

    __slots__ = ("level", "order", "remaining")

    def __init__(self, order: BookOrder, remaining: int, level: _Level) -> None:
        self.order = order
        self.remaining = remaining
        self.level = level


class _Level:
    """The orders resting at one price, in time priority, and their total size."""

    __slots__ = ("orders", "price", "size")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: OrderedDict[bytes, _Entry] = OrderedDict()
        self.size = 0


class _Half:
    """One side of the book. Sort key = sign * price, so the best level is always `keys[-1]`."""

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        """+1 for bids (highest price best), -1 for asks (lowest price best)."""
        self.levels: dict[int, _Level] = {}
        self.keys: list[int] = []

    def level_for(self, price: int) -> _Level:
        """The level at `price`, created (and its key inserted) when absent."""
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = _Level(price)
            insort(self.keys, self.sign * price)
        return level

    def drop(self, level: _Level) -> None:
        """Forget an emptied level."""
        del self.levels[level.price]
        key = self.sign * level.price
        keys = self.keys
        if keys[-1] == key:  # the usual case: the best level was consumed
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def best(self) -> tuple[int, int] | None:
        """(price, size) of the best level."""
        if not self.keys:
            return None
        level = self.levels[self.sign * self.keys[-1]]
        return level.price, level.size

    def depth(self, count: int) -> tuple[tuple[int, int], ...]:
        """(price, size) of the `count` best levels, best first."""
        if count <= 0:
            return ()
        levels = self.levels
        sign = self.sign
        return tuple((sign * key, levels[sign * key].size) for key in reversed(self.keys[-count:]))


def _invalid(order_id: bytes, reason: str) -> InvalidOrder:
    """The refusal of an order that is malformed for the book."""
    return InvalidOrder(f"order 0x{order_id.hex()}: {reason}")


def _resting_view(entry: _Entry) -> BookOrder:
    order = entry.order
    return order if entry.remaining == order.size else replace(order, size=entry.remaining)


class OrderBook:
    """The limit order book of one market (see the module docstring for the rules)."""

    def __init__(self, market: int, tick_size: int, lot_size: int) -> None:
        """An empty book for `market`; prices are multiples of `tick_size`, sizes of `lot_size`."""
        if tick_size <= 0 or lot_size <= 0:
            raise ValueError("tick_size and lot_size must be positive")
        self.market = market
        """Market id every order must carry."""
        self.tick_size = tick_size
        """Every price is a multiple of this."""
        self.lot_size = lot_size
        """Every size is a multiple of this."""
        self._bids = _Half(1)
        self._asks = _Half(-1)
        self._orders: dict[bytes, _Entry] = {}
        self._expiries: list[tuple[int, int, bytes]] = []
        self._expiring = 0  # resting orders with an expiry (live heap entries)
        self._last_seq = -1

    # ---- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of resting orders (expired ones not yet removed included)."""
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        """True when an order with this id rests in the book."""
        return order_id in self._orders

    def get(self, order_id: bytes) -> BookOrder | None:
        """The resting order with this id (`size` = its remaining size), or None."""
        entry = self._orders.get(order_id)
        return None if entry is None else _resting_view(entry)

    def best_bid(self) -> tuple[int, int] | None:
        """(price, total size) of the highest bid level, or None when there are no bids."""
        return self._bids.best()

    def best_ask(self) -> tuple[int, int] | None:
        """(price, total size) of the lowest ask level, or None when there are no asks."""
        return self._asks.best()

    def depth(self, levels: int) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
        """(bids, asks): the `levels` best (price, total size) levels of each side, best first."""
        return self._bids.depth(levels), self._asks.depth(levels)

    def orders(self, side: Side) -> Iterator[BookOrder]:
        """Every resting order of `side` in priority order (`size` = remaining): an L3 snapshot."""
        half = self._half(side)
        for key in reversed(half.keys):
            for entry in half.levels[half.sign * key].orders.values():
                yield _resting_view(entry)

    def market_price(self, side: Side) -> int:
        """The price that makes an IOC order of `side` a market order: it crosses any level."""
        if side == Side.BUY:
            return MAX_PRICE - MAX_PRICE % self.tick_size
        return self.tick_size

    # ---- changing -------------------------------------------------------------------------

    def place(
        self,
        order: BookOrder,
        now: int,
        max_reduce: MaxReduce | None = None,
        check: FillCheck | None = None,
    ) -> PlaceResult:
        """Match `order` against the book at unix second `now`, then rest or cancel its remainder.

        Raises (and changes nothing) for an order that is malformed for this book (`InvalidOrder`,
        `PriceOffTick`, `SizeOffLot`: the state machine's errors), already resting
        (`DuplicateOrder`), expired (`OrderExpired`), reduce-only with nothing to reduce
        (`ReduceOnlyWouldIncrease`) or post-only and crossing (`PostOnlyWouldCross`).
        `max_reduce` caps REDUCE_ONLY orders; `check` is asked before every fill (`FillCheck`,
        `Verdict`).
        """
        flags = int(order.flags)
        self._check(order, flags, now)
        size = order.size
        if flags & _REDUCE_ONLY and max_reduce is not None:
            cap = max_reduce(order.trader, self.market, order.side)
            size = min(size, cap - cap % self.lot_size) if cap > 0 else 0
            if size <= 0:
                raise ReduceOnlyWouldIncrease(order.order_id, cap)
        opposite = self._asks if order.side == Side.BUY else self._bids
        if flags & _POST_ONLY:
            crossed = self._first_live_cross(opposite, order.price, now)
            if crossed is not None:
                raise PostOnlyWouldCross(order.order_id, order.price, crossed)

        # Accepted: nothing below raises, so the book never half-applies an order.
        self._last_seq = order.seq
        fills: list[Fill] = []
        events: list[BookEvent] = []
        remaining, stopped = self._match(order, size, opposite, now, fills, events, check)
        resting = None
        if remaining:
            if stopped:
                events.append(self._removed(order, remaining, RemoveReason.REFUSED))
            elif flags & _IOC:
                events.append(self._removed(order, remaining, RemoveReason.IOC_REMAINDER))
            else:
                resting = self._rest(order, remaining)
                events.append(OrderAdded(resting))
        return PlaceResult(tuple(fills), resting, tuple(events), size)

    def cancel(self, order_id: bytes) -> OrderRemoved:
        """Remove a resting order (the caller has checked the trader's authority to cancel it)."""
        return self.remove(order_id, RemoveReason.CANCELLED)

    def remove(self, order_id: bytes, reason: RemoveReason) -> OrderRemoved:
        """Remove a resting order for `reason` (CANCELLED, EXPIRED, REJECTED...); `UnknownOrder`
        if it does not rest here."""
        entry = self._orders.get(order_id)
        if entry is None:
            raise UnknownOrder(order_id)
        self._remove(entry)
        return self._removed(entry.order, entry.remaining, reason)

    def find_maker(
        self, side: Side, price: int, size: int, now: int, exclude: bytes | None = None
    ) -> BookOrder | None:
        """The first resting order a taker of `side` with limit `price` would meet, in priority
        order, that is live at `now`, has at least `size` left and is not `exclude`'s (the
        taker's own); None if there is none. Read-only (`size` = the order's remaining size).

        This is how a bundle's leg, which fills whole against one maker, finds its maker.
        """
        half = self._asks if side == Side.BUY else self._bids
        sign = half.sign
        limit = sign * price
        for key in reversed(half.keys):
            if key < limit:
                break
            for entry in half.levels[sign * key].orders.values():
                maker = entry.order
                if entry.remaining >= size and maker.trader != exclude and not expired(maker.expiry, now):
                    return _resting_view(entry)
        return None

    def take(self, order_id: bytes, size: int) -> OrderReduced | OrderRemoved:
        """Fill `size` of a resting order outside `place` (a bundle's leg); it keeps its place
        with the rest, or leaves (reason FILLED) when nothing is left."""
        entry = self._orders.get(order_id)
        if entry is None:
            raise UnknownOrder(order_id)
        if not 0 < size <= entry.remaining:
            raise _invalid(order_id, f"cannot take {size} of {entry.remaining} resting")
        order = entry.order
        if size == entry.remaining:
            self._remove(entry)
            return self._removed(order, size, RemoveReason.FILLED)
        entry.remaining -= size
        entry.level.size -= size
        return OrderReduced(
            order.order_id, order.trader, self.market, order.side, order.price, size, entry.remaining
        )

    def expire(self, now: int) -> tuple[OrderRemoved, ...]:
        """Remove every order expired at unix second `now`, in (expiry, seq) order."""
        heap = self._expiries
        orders = self._orders
        events: list[OrderRemoved] = []
        while heap and heap[0][0] <= now:
            _, seq, order_id = heapq.heappop(heap)
            entry = orders.get(order_id)
            if entry is None or entry.order.seq != seq:
                continue  # stale: the order already left (filled, cancelled, self-trade)
            self._remove(entry)
            events.append(self._removed(entry.order, entry.remaining, RemoveReason.EXPIRED))
        return tuple(events)

    # ---- internals ------------------------------------------------------------------------

    def _half(self, side: Side) -> _Half:
        return self._bids if side == Side.BUY else self._asks

    def _check(self, order: BookOrder, flags: int, now: int) -> None:
        """Refuse an order this book must not accept; read-only. Its side, flags, tick, lot and
        expiry are checked by the state machine's own rules (`sequencer.stf.trading`)."""
        oid = order.order_id
        if order.market != self.market:
            raise _invalid(oid, f"market {order.market} is not this book's market {self.market}")
        if len(oid) != 32:
            raise _invalid(oid, "order id must be 32 bytes")
        if len(order.trader) != 20:
            raise _invalid(oid, "trader must be a 20-byte address")
        check_side(order.side)
        check_flags(flags)
        if not 0 < order.price <= MAX_PRICE:
            raise _invalid(oid, f"price {order.price} out of range")
        check_price(order.price, self.tick_size)
        if not 0 < order.size <= MAX_SIZE:
            raise _invalid(oid, f"size {order.size} out of range")
        check_size(order.size, self.lot_size)
        if order.expiry < 0:
            raise _invalid(oid, f"negative expiry {order.expiry}")
        if order.seq <= self._last_seq:
            raise _invalid(oid, f"seq {order.seq} is not after {self._last_seq}")
        if oid in self._orders:
            raise DuplicateOrder(oid)
        check_unexpired(order.expiry, now)

    def _first_live_cross(self, half: _Half, price: int, now: int) -> int | None:
        """Price of the first live opposite order a taker at `price` would meet, else None."""
        sign = half.sign
        limit = sign * price
        for key in reversed(half.keys):
            if key < limit:
                break
            for entry in half.levels[sign * key].orders.values():
                if not expired(entry.order.expiry, now):
                    return sign * key
        return None

    def _match(
        self,
        taker: BookOrder,
        remaining: int,
        half: _Half,
        now: int,
        fills: list[Fill],
        events: list[BookEvent],
        check: FillCheck | None,
    ) -> tuple[int, bool]:
        """Trade `taker` against `half` while prices cross; returns its unfilled size and whether
        the fill check stopped it.

        The hot loop: names are bound to locals because attribute lookups dominate its cost.
        """
        sign = half.sign
        limit = sign * taker.price
        keys = half.keys
        levels = half.levels
        index = self._orders
        market = self.market
        taker_id = taker.order_id
        trader = taker.trader
        side = taker.side
        dead = expired
        while remaining and keys and keys[-1] >= limit:
            level = levels[sign * keys[-1]]
            queue = level.orders
            while remaining and queue:
                entry = next(iter(queue.values()))
                maker = entry.order
                if dead(maker.expiry, now):
                    reason = RemoveReason.EXPIRED
                    gone = entry.remaining
                elif maker.trader == trader:
                    reason = RemoveReason.SELF_TRADE
                    gone = entry.remaining
                else:
                    qty = entry.remaining if entry.remaining < remaining else remaining
                    verdict = _ACCEPT if check is None else check(taker, maker, qty)
                    if verdict == _ACCEPT:
                        fills.append(
                            Fill(
                                maker.order_id, taker_id, maker.trader, trader, market, level.price, qty, side
                            )
                        )
                        remaining -= qty
                        if qty < entry.remaining:
                            # The taker is used up; the maker keeps its place with the rest.
                            entry.remaining -= qty
                            level.size -= qty
                            events.append(
                                OrderReduced(
                                    maker.order_id,
                                    maker.trader,
                                    market,
                                    maker.side,
                                    level.price,
                                    qty,
                                    entry.remaining,
                                )
                            )
                            continue
                        reason = RemoveReason.FILLED
                        gone = qty
                    elif verdict == _REJECT_MAKER:
                        reason = RemoveReason.REJECTED
                        gone = entry.remaining
                    else:  # STOP: the maker stays as it is; the caller refuses the remainder
                        return remaining, True
                # The maker leaves; it is its level's first order, so it pops from the front.
                queue.popitem(last=False)
                del index[maker.order_id]
                if maker.expiry:
                    self._expiring -= 1
                level.size -= gone
                events.append(self._removed(maker, gone, reason))
            if not queue:
                half.drop(level)
        return remaining, False

    def _rest(self, order: BookOrder, remaining: int) -> BookOrder:
        """Put the remainder of an accepted order in the book; returns its resting view."""
        half = self._half(order.side)
        level = half.level_for(order.price)
        entry = _Entry(order, remaining, level)
        level.orders[order.order_id] = entry
        level.size += remaining
        self._orders[order.order_id] = entry
        if order.expiry:
            self._expiring += 1
            heapq.heappush(self._expiries, (order.expiry, order.seq, order.order_id))
            if len(self._expiries) > 2 * self._expiring + _STALE_SLACK:
                self._rebuild_expiries()
        return _resting_view(entry)

    def _remove(self, entry: _Entry) -> None:
        """Take a resting order out of its level and the index (any position in the level)."""
        order = entry.order
        level = entry.level
        del level.orders[order.order_id]
        level.size -= entry.remaining
        del self._orders[order.order_id]
        if order.expiry:
            self._expiring -= 1
        if not level.orders:
            self._half(order.side).drop(level)

    def _rebuild_expiries(self) -> None:
        """Drop stale heap entries; pop order is unchanged because (expiry, seq) keys are unique."""
        self._expiries = [
            (e.order.expiry, e.order.seq, oid) for oid, e in self._orders.items() if e.order.expiry
        ]
        heapq.heapify(self._expiries)

    def _removed(self, order: BookOrder, size: int, reason: RemoveReason) -> OrderRemoved:
        return OrderRemoved(order.order_id, order.trader, self.market, order.side, order.price, size, reason)
