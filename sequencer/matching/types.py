"""Records of the order book: sides, flags, orders as the book holds them, fills, book events.

Order ids are 32-byte order hashes, traders 20-byte addresses. Prices are integers in the
market's price unit (a multiple of the market's tick), sizes integers in the market's size unit
(a multiple of its lot). No float touches a price or a size.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Final


class Side(IntEnum):
    """Which side of the book an order sits on (or takes from the other one)."""

    BUY = 0
    """A bid: buys at its price or lower."""
    SELL = 1
    """An ask: sells at its price or higher."""


class OrderFlags(IntFlag):
    """How an order behaves when it arrives; flags combine, except POST_ONLY with IOC."""

    NONE = 0
    """A plain limit order: match what crosses, rest the remainder."""
    POST_ONLY = 1
    """Only ever a maker: refused (`PostOnlyWouldCross`) if it would match on arrival."""
    REDUCE_ONLY = 2
    """May only shrink the trader's position: its size is capped by `place`'s `max_reduce`."""
    IOC = 4
    """Immediate or cancel: match what crosses, never rest (the remainder is cancelled)."""


MAX_PRICE: Final = 2**64 - 1
"""Highest price an order may carry (uint64, the width the order encoding will use)."""

MAX_SIZE: Final = 2**64 - 1
"""Largest size an order may carry (uint64)."""


@dataclass(frozen=True, slots=True)
class BookOrder:
    """An order as the book sees it: what was signed, plus its arrival sequence number."""

    order_id: bytes
    """The order's 32-byte hash (EIP-712 digest); unique among resting orders."""
    trader: bytes
    """The 20-byte address that signed the order."""
    market: int
    """Market id; must be the book's market."""
    side: Side
    """BUY or SELL."""
    price: int
    """Limit price (> 0, a multiple of the market's tick, at most `MAX_PRICE`)."""
    size: int
    """Size (> 0, a multiple of the market's lot, at most `MAX_SIZE`). In a `BookOrder` the book
    returns (`get`, `PlaceResult.resting`, `OrderAdded`) this is the size still resting."""
    flags: OrderFlags = OrderFlags.NONE
    """Behaviour on arrival (`OrderFlags`)."""
    expiry: int = 0
    """Unix second from which the order is dead (`sequencer.stf.trading.expired`); 0 means it
    never expires."""
    seq: int = 0
    """Arrival sequence number given by the sequencer; strictly increasing across `place` calls,
    it is the time in price-time priority."""


@dataclass(frozen=True, slots=True)
class Fill:
    """A match between a resting maker and an arriving taker, at the maker's price."""

    maker_order_id: bytes
    """The resting order's id."""
    taker_order_id: bytes
    """The arriving order's id."""
    maker: bytes
    """The maker's trader address."""
    taker: bytes
    """The taker's trader address (never the maker's: self-trades are prevented)."""
    market: int
    """Market id."""
    price: int
    """Execution price: always the maker's limit price."""
    size: int
    """Size exchanged (> 0, a multiple of the lot)."""
    taker_side: Side
    """The taker's side (the maker is on the other one)."""


class RemoveReason(IntEnum):
    """Why an order left the book (or, for IOC_REMAINDER, never entered it)."""

    FILLED = 0
    """A maker whose whole remaining size was filled."""
    CANCELLED = 1
    """Cancelled by `cancel` (the caller checked the trader's authority)."""
    EXPIRED = 2
    """Past its expiry: removed by `expire` or when a taker met it while matching."""
    IOC_REMAINDER = 3
    """The unfilled part of an IOC taker. It never rested, so this is the one removal that
    changes no depth: it tells the trader's order stream that the remainder is cancelled."""
    SELF_TRADE = 4
    """A resting maker cancelled because a taker of the same trader reached it."""
    REJECTED = 5
    """A resting maker that the fill check of `place` rejected (it can no longer trade, e.g. its
    trader lacks margin), or that the caller removed for such a reason (`remove`)."""
    REFUSED = 6
    """The unfilled part of a taker whose fill check stopped the matching: like IOC_REMAINDER
    it never rested and changes no depth."""
    MARGIN = 7
    """A resting order the caller removed (`remove`) because its trader's margin no longer
    covers its open orders (the sequencer's rule, after a price or the account moved)."""


class Verdict(IntEnum):
    """The answer of a fill check (`FillCheck`) to one fill the book proposes."""

    ACCEPT = 0
    """The fill stands: the book applies it and goes on."""
    REJECT_MAKER = 1
    """The maker cannot trade: the book removes it (reason REJECTED), nothing trades, and the
    taker goes on to the next maker."""
    STOP = 2
    """The taker cannot trade (any more): matching stops, the fills accepted so far stand, and the
    taker's remainder is refused (an `OrderRemoved` with reason REFUSED); it never rests."""


@dataclass(frozen=True, slots=True)
class OrderAdded:
    """An order started resting in the book."""

    order: BookOrder
    """The order, with `size` = the size that rests (after any fills on arrival)."""


@dataclass(frozen=True, slots=True)
class OrderReduced:
    """A resting order was partly filled and keeps resting with less size."""

    order_id: bytes
    """The resting order's id."""
    trader: bytes
    """Its trader."""
    market: int
    """Market id."""
    side: Side
    """Its side."""
    price: int
    """Its price (the level that shrank)."""
    size: int
    """Size taken off the order (and off its level) by this change."""
    remaining: int
    """Size still resting after the change (> 0)."""


@dataclass(frozen=True, slots=True)
class OrderRemoved:
    """An order left the book, or an IOC remainder was cancelled (see `RemoveReason`)."""

    order_id: bytes
    """The order's id."""
    trader: bytes
    """Its trader."""
    market: int
    """Market id."""
    side: Side
    """Its side."""
    price: int
    """Its price (the level that shrank)."""
    size: int
    """Size that left the book with the removal: the fill that completed it for FILLED, the
    unfilled remainder otherwise."""
    reason: RemoveReason
    """Why it left."""


BookEvent = OrderAdded | OrderReduced | OrderRemoved
"""A change of the book, in the order it happened; enough to maintain a copy of the book (L3)."""


@dataclass(frozen=True, slots=True)
class PlaceResult:
    """What placing one order did."""

    fills: tuple[Fill, ...]
    """Fills in execution order (best price first, then time priority)."""
    resting: BookOrder | None
    """The part of the order now resting (`size` = resting size), or None."""
    events: tuple[BookEvent, ...]
    """Book changes in the order they happened, the taker's own (added / IOC remainder) last."""
    accepted_size: int
    """Size the book worked with: the order's size, or less when a reduce-only cap applied.
    Always `sum(fill sizes) + resting size + IOC or refused remainder`."""
