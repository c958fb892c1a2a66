"""The sequencer's exchange: order books fed with signed orders, every fill checked by the state
machine and logged durably with the order before the answer (see `engine`)."""

from sequencer.exchange.engine import (
    TIME_MARGIN_SECONDS,
    AdmitTxs,
    Answer,
    CancelOrder,
    Exchange,
    ExchangeRequest,
    PlaceBundle,
    PlaceOrders,
    maker_at_fault,
)
from sequencer.exchange.records import (
    BundleOutcome,
    CancelOutcome,
    FillRecord,
    OrderDetails,
    OrderOutcome,
    OrderStatus,
)
from sequencer.exchange.risk import AccountRisk, PositionRisk, account_risk, liquidation_price

__all__ = [
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
