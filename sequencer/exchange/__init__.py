"""The sequencer's exchange: order books fed with signed orders, every fill checked by the state
machine and logged durably with the order before the answer.

`engine` holds the `Exchange` and its spec (time, durability, events); `requests` what it is asked
and answers; `orders` how an order is admitted and matched; `bundles` how a bundle fills;
`cancels` how the books follow cancels and transactions sent as they are; `exposure` what resting
orders add to their traders' positions; `records` and `orderlog` what it answers and keeps;
`messages` what it streams; `risk` an account's risk as the state machine sees it."""

from sequencer.exchange.engine import MAX_OPEN_ORDERS, TIME_MARGIN_SECONDS, Exchange
from sequencer.exchange.orders import maker_at_fault
from sequencer.exchange.records import (
    BundleOutcome,
    CancelOutcome,
    FillRecord,
    OrderDetails,
    OrderOutcome,
    OrderStatus,
)
from sequencer.exchange.requests import (
    AdmitTxs,
    Answer,
    CancelOrder,
    ExchangeRequest,
    PlaceBundle,
    PlaceOrders,
)
from sequencer.exchange.risk import AccountRisk, PositionRisk, account_risk, liquidation_price

__all__ = [
    "MAX_OPEN_ORDERS",
    "TIME_MARGIN_SECONDS",
    "AccountRisk",
    "AdmitTxs",
    "Answer",
    "BundleOutcome",
    "CancelOrder",
    "CancelOutcome",
    "Exchange",
    "ExchangeRequest",
    "FillRecord",
    "OrderDetails",
    "OrderOutcome",
    "OrderStatus",
    "PlaceBundle",
    "PlaceOrders",
    "PositionRisk",
    "account_risk",
    "liquidation_price",
    "maker_at_fault",
]
