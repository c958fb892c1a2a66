"""Errors of the order book: an order the book refuses leaves the book unchanged.

They are `InvalidTransaction`s (the API maps the family to a 4xx) with their own `code`s.
"""

from __future__ import annotations

from sequencer.stf.errors import InvalidTransaction


class InvalidOrder(InvalidTransaction):
    """The order is malformed for this book (wrong market, bad lengths, bounds, flags, sequence)."""

    code = "invalid_order"

    def __init__(self, order_id: bytes, reason: str) -> None:
        super().__init__(f"order 0x{order_id.hex()}: {reason}")
        self.order_id = order_id
        """The refused order."""
        self.reason = reason
        """Which rule it breaks."""


class PriceOffTick(InvalidTransaction):
    """The price is not a multiple of the market's tick size."""

    code = "price_off_tick"

    def __init__(self, price: int, tick: int) -> None:
        super().__init__(f"price {price} is not a multiple of the tick {tick}")
        self.price = price
        """The refused price."""
        self.tick = tick
        """The market's tick size."""


class SizeOffLot(InvalidTransaction):
    """The size is not a multiple of the market's lot size."""

    code = "size_off_lot"

    def __init__(self, size: int, lot: int) -> None:
        super().__init__(f"size {size} is not a multiple of the lot {lot}")
        self.size = size
        """The refused size."""
        self.lot = lot
        """The market's lot size."""


class DuplicateOrder(InvalidTransaction):
    """An order with this id already rests in the book."""

    code = "duplicate_order"

    def __init__(self, order_id: bytes) -> None:
        super().__init__(f"order 0x{order_id.hex()} is already in the book")
        self.order_id = order_id
        """The repeated id."""


class UnknownOrder(InvalidTransaction):
    """No order with this id rests in the book (never placed, filled, cancelled or expired)."""

    code = "unknown_order"

    def __init__(self, order_id: bytes) -> None:
        super().__init__(f"order 0x{order_id.hex()} is not in the book")
        self.order_id = order_id
        """The id asked for."""


class OrderExpired(InvalidTransaction):
    """The arriving order is already past its expiry."""

    code = "order_expired"

    def __init__(self, order_id: bytes, expiry: int, now: int) -> None:
        super().__init__(f"order 0x{order_id.hex()} expired at {expiry} (now {now})")
        self.order_id = order_id
        """The refused order."""
        self.expiry = expiry
        """Its expiry (unix seconds)."""
        self.now = now
        """The time it was placed at."""


class PostOnlyWouldCross(InvalidTransaction):
    """A POST_ONLY order would match on arrival."""

    code = "post_only_would_cross"

    def __init__(self, order_id: bytes, price: int, best: int) -> None:
        super().__init__(f"post-only order 0x{order_id.hex()} at {price} crosses {best}")
        self.order_id = order_id
        """The refused order."""
        self.price = price
        """Its price."""
        self.best = best
        """Price of the first live opposite order it would have met."""


class ReduceOnlyWouldIncrease(InvalidTransaction):
    """A REDUCE_ONLY order has nothing to reduce (the cap is below one lot)."""

    code = "reduce_only_would_increase"

    def __init__(self, order_id: bytes, cap: int) -> None:
        super().__init__(f"reduce-only order 0x{order_id.hex()} may reduce only {cap}")
        self.order_id = order_id
        """The refused order."""
        self.cap = cap
        """What `max_reduce` allowed."""
