"""`/v1/accounts/{address}`: an account's funds, risk, positions and resting orders."""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from typing import Annotated

from fastapi import APIRouter, Path

from sequencer.api.deps import NodeDep
from sequencer.views import AccountView

router = APIRouter(prefix="/v1", tags=["state"])


@router.get("/accounts/{address}", response_model=AccountView)
async def get_account(
    address: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")], n: NodeDep
) -> AccountView:
    """An account's collateral and nonce (as of the L1 tip, and with the mempool), and as of
    the mempool its equity, margins, margin ratio, positions with their liquidation prices,
    and its resting orders."""
    return n.account_view(bytes.fromhex(address[2:]))
