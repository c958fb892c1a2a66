"""`/v1/status`: the node at a glance."""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from fastapi import APIRouter

from sequencer.api.deps import NodeDep
from sequencer.views import StatusView

router = APIRouter(prefix="/v1", tags=["state"])


@router.get("/status", response_model=StatusView)
async def get_status(n: NodeDep) -> StatusView:
    """The node at a glance."""
    return n.status_view()
