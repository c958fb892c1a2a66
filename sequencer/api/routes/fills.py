"""`/v1/fills`: an account's latest fills. `before` is a sequence number of the log, a SQLite
integer: below 2^63."""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from typing import Annotated

from fastapi import APIRouter, Query

from sequencer.api.deps import NodeDep
from sequencer.api.order_schemas import FillsView, FillView

router = APIRouter(prefix="/v1", tags=["orders"])


@router.get("/fills", response_model=FillsView)
async def get_fills(
    account: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{40}$")],
    n: NodeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        int | None, Query(ge=0, lt=2**63, description="only fills logged before this seq")
    ] = None,
) -> FillsView:
    """An account's latest fills (as maker or taker), newest first; page back with `before`."""
    fills = n.fills_of(bytes.fromhex(account[2:]), limit, before)
    return FillsView(account=account.lower(), fills=[FillView.of(f) for f in fills])
