"""The sequencer's matching engine: one price-time-priority order book per market.

Pure, deterministic and integer-only; no I/O and no clock. The state machine re-checks every fill
it produces, so nothing here is a protocol rule (see `book` for the matching rules).
"""

from sequencer.matching.book import FillCheck, MaxReduce, OrderBook
from sequencer.matching.errors import (
    DuplicateOrder,
    InvalidOrder,
    OrderExpired,
    PostOnlyWouldCross,
    PriceOffTick,
    ReduceOnlyWouldIncrease,
    SizeOffLot,
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
    is_expired,
)

__all__ = [
    "MAX_PRICE",
    "MAX_SIZE",
    "BookEvent",
    "BookOrder",
    "DuplicateOrder",
    "Fill",
    "FillCheck",
    "InvalidOrder",
    "MaxReduce",
    "OrderAdded",
    "OrderBook",
    "OrderExpired",
    "OrderFlags",
    "OrderReduced",
    "OrderRemoved",
    "PlaceResult",
    "PostOnlyWouldCross",
    "PriceOffTick",
    "ReduceOnlyWouldIncrease",
    "RemoveReason",
    "Side",
    "SizeOffLot",
    "UnknownOrder",
    "Verdict",
    "is_expired",
]
