"""The sequencer's exchange: order books fed with signed orders, every fill checked by the state
machine and logged durably with the order before the answer (see `engine`)."""

from sequencer.exchange.engine import TIME_MARGIN_SECONDS, Exchange, maker_at_fault
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
    "BundleOutcome",
    "CancelOutcome",
    "Exchange",
    "FillRecord",
    "OrderDetails",
    "OrderOutcome",
    "OrderStatus",
    "PositionRisk",
    "account_risk",
    "liquidation_price",
    "maker_at_fault",
]
