"""Errors of the order book that the state machine has no counterpart of: an order the book
refuses leaves the book unchanged.

They are `InvalidTransaction`s (the API maps the family to a 4xx) with their own `code`s. An order
that breaks a rule of the state machine (side, flags, tick, lot, expiry) or is malformed for the
book is refused with the state machine's own errors (`sequencer.stf.errors`: `InvalidOrder`,
`PriceOffTick`, `SizeOffLot`, `OrderExpired`).
"""

from __future__ import annotations

from sequencer.stf.errors import InvalidTransaction


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
