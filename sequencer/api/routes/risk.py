"""`/v1/risk`: the accounts any liquidator may liquidate now."""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from fastapi import APIRouter

from sequencer.api.deps import NodeDep
from sequencer.views import RiskView

router = APIRouter(prefix="/v1", tags=["state"])


@router.get("/risk", response_model=RiskView)
async def get_risk(n: NodeDep) -> RiskView:
    """Accounts below their maintenance margin (as of the mempool), worst first, each with the
    position and size whose liquidation restores it: what a liquidation bot submits."""
    return n.risk_view()
