"""What each account's resting orders add to its positions, kept up to date as the books change,
so that the margin of open orders (`stf.margin.check_open_order`) is read per order without going
through the account's orders.

Per account and market it keeps each side's total size and its size per price, changed by the
same sizes the books' events carry (an order added, reduced, removed): the loss of the orders
against the mark (`stf.margin.order_loss`) is read from the prices past the mark (bids above it,
asks below it), usually none. Reduce-only orders are not counted (the exchange does not pass
them): a fill of one never adds to its trader's position (the state machine refuses it).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.margin import Markets, OpenOrders, order_loss


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
    """An account's counted orders in one market, by side."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = _Side()
        self.asks = _Side()


_NONE: dict[int, _Market] = {}


class Exposure:
    """The resting orders that can add to their traders' positions, by account and market."""

    def __init__(self) -> None:
        self._accounts: dict[bytes, dict[int, _Market]] = {}

    def add(self, trader: bytes, market: int, side: int, price: int, size: int) -> None:
        """Count `size` more resting at `price` on `side` (an order added)."""
        markets = self._accounts.get(trader)
        if markets is None:
            markets = self._accounts[trader] = {}
        counted = markets.get(market)
        if counted is None:
            counted = markets[market] = _Market()
        (counted.bids if side == SIDE_BUY else counted.asks).add(price, size)

    def take(self, trader: bytes, market: int, side: int, price: int, size: int) -> None:
        """Count `size` less resting at `price` on `side` (an order reduced by a fill, or removed
        with what was left of it)."""
        markets = self._accounts[trader]
        counted = markets[market]
        (counted.bids if side == SIDE_BUY else counted.asks).take(price, size)
        if not counted.bids.at and not counted.asks.at:
            del markets[market]
            if not markets:
                del self._accounts[trader]

    def traders(self) -> list[bytes]:
        """The accounts with counted orders, in ascending order."""
        return sorted(self._accounts)

    def counts(self, trader: bytes) -> bool:
        """Whether `trader` has counted orders."""
        return trader in self._accounts

    def markets_of(self, trader: bytes) -> Iterable[int]:
        """The markets where `trader` has counted orders."""
        return self._accounts.get(trader, _NONE).keys()

    def of(self, trader: bytes, markets: Markets) -> dict[int, OpenOrders]:
        """`trader`'s counted orders by market, their losses against the markets' marks."""
        out = {}
        for m, counted in self._accounts.get(trader, _NONE).items():
            mark = markets[m].mark_price
            bids, asks = counted.bids, counted.asks
            loss = 0
            if bids.prices and bids.prices[-1] > mark:
                for price in reversed(bids.prices):  # the highest bids first
                    if price <= mark:
                        break
                    loss += order_loss(SIDE_BUY, price, bids.at[price], mark)
            if asks.prices and asks.prices[0] < mark:
                for price in asks.prices:  # the lowest asks first
                    if price >= mark:
                        break
                    loss += order_loss(SIDE_SELL, price, asks.at[price], mark)
            out[m] = OpenOrders(bids.size, asks.size, loss)
        return out
