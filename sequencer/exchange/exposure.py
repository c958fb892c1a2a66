"""What each account's resting orders add to its positions, kept up to date as the books change,
so that the margin of open orders (`stf.margin.check_open_order`) is read per order without going
through the account's orders.

Per account and market it keeps each side's total size and its size per price: the loss of the
orders against the mark (`stf.margin.order_loss`) is read from the prices past the mark (bids
above it, asks below it), usually none. Reduce-only orders are not counted: a fill of one never
adds to its trader's position (the state machine refuses it).
"""

from __future__ import annotations

from bisect import bisect_left, insort

from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.margin import Markets, OpenOrders, order_loss


class _Order:
    """A counted order: where it rests and what is left of it."""

    __slots__ = ("market", "price", "side", "size", "trader")

    def __init__(self, trader: bytes, market: int, side: int, price: int, size: int) -> None:
        self.trader = trader
        self.market = market
        self.side = side
        self.price = price
        self.size = size


class _Side:
    """One side of an account's counted orders in one market: their total size, and their size at
    each price (prices ascending)."""

    __slots__ = ("at", "prices", "size")

    def __init__(self) -> None:
        self.size = 0
        self.at: dict[int, int] = {}
        self.prices: list[int] = []

    def add(self, price: int, size: int) -> None:
        self.size += size
        held = self.at.get(price)
        if held is None:
            self.at[price] = size
            insort(self.prices, price)
        else:
            self.at[price] = held + size

    def take(self, price: int, size: int) -> None:
        self.size -= size
        left = self.at[price] - size
        if left:
            self.at[price] = left
        else:
            del self.at[price]
            del self.prices[bisect_left(self.prices, price)]


class _Market:
    """An account's counted orders in one market."""

    __slots__ = ("asks", "bids", "count")

    def __init__(self) -> None:
        self.bids = _Side()
        self.asks = _Side()
        self.count = 0


class Exposure:
    """The resting orders that can add to their traders' positions, by account and market."""

    def __init__(self) -> None:
        self._orders: dict[bytes, _Order] = {}
        self._accounts: dict[bytes, dict[int, _Market]] = {}

    def __len__(self) -> int:
        """Number of orders counted."""
        return len(self._orders)

    def add(self, digest: bytes, trader: bytes, market: int, side: int, price: int, size: int) -> None:
        """Count a resting order with `size` left."""
        self._orders[digest] = _Order(trader, market, side, price, size)
        markets = self._accounts.get(trader)
        if markets is None:
            markets = self._accounts[trader] = {}
        counted = markets.get(market)
        if counted is None:
            counted = markets[market] = _Market()
        counted.count += 1
        (counted.bids if side == SIDE_BUY else counted.asks).add(price, size)

    def reduce(self, digest: bytes, size: int) -> None:
        """A counted order was partly filled by `size` and rests with the rest."""
        order = self._orders.get(digest)
        if order is None:
            return
        order.size -= size
        counted = self._accounts[order.trader][order.market]
        (counted.bids if order.side == SIDE_BUY else counted.asks).take(order.price, size)

    def remove(self, digest: bytes) -> None:
        """An order left its book (filled, cancelled, expired, rejected); nothing if not counted."""
        order = self._orders.pop(digest, None)
        if order is None:
            return
        markets = self._accounts[order.trader]
        counted = markets[order.market]
        (counted.bids if order.side == SIDE_BUY else counted.asks).take(order.price, order.size)
        counted.count -= 1
        if not counted.count:
            del markets[order.market]
            if not markets:
                del self._accounts[order.trader]

    def of(self, trader: bytes, markets: Markets) -> dict[int, OpenOrders]:
        """`trader`'s counted orders by market, their losses against the markets' marks."""
        out = {}
        for m, counted in self._accounts.get(trader, {}).items():
            mark = markets[m].mark_price
            loss = 0
            bids, asks = counted.bids, counted.asks
            for price in reversed(bids.prices):  # the highest bids first
                if price <= mark:
                    break
                loss += order_loss(SIDE_BUY, price, bids.at[price], mark)
            for price in asks.prices:  # the lowest asks first
                if price >= mark:
                    break
                loss += order_loss(SIDE_SELL, price, asks.at[price], mark)
            out[m] = OpenOrders(bids.size, asks.size, loss)
        return out
