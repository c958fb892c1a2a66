"""The sequencer's matching engine: one price-time-priority order book per market.

Pure, deterministic and integer-only; no I/O and no clock. The state machine re-checks every fill
it produces, so nothing here is a protocol rule (see `book` for the matching rules); the order
checks the book makes are the state machine's own (`sequencer.stf.trading`), with its errors.
"""

from sequencer.matching.book import FillCheck, MaxReduce, OrderBook
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

__all__ = [
    "MAX_PRICE",
    "MAX_SIZE",
    "BookEvent",
    "BookOrder",
    "DuplicateOrder",
    "Fill",
    "FillCheck",
    "MaxReduce",
    "OrderAdded",
    "OrderBook",
    "OrderFlags",
    "OrderReduced",
    "OrderRemoved",
    "PlaceResult",
    "PostOnlyWouldCross",
    "ReduceOnlyWouldIncrease",
    "RemoveReason",
    "Side",
    "UnknownOrder",
    "Verdict",
]
