"""`/v1/batches/{index}`: a batch on L1 (its index a uint64, as the Rollup counts them)."""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from typing import Annotated

from fastapi import APIRouter, Path

from sequencer.api.deps import NodeDep
from sequencer.errors import NotFound
from sequencer.views import BatchView

router = APIRouter(prefix="/v1", tags=["state"])


@router.get("/batches/{index}", response_model=BatchView)
async def get_batch(index: Annotated[int, Path(ge=0, lt=2**64)], n: NodeDep) -> BatchView:
    """A batch on L1 with its header and transaction hashes."""
    view = n.batch_view(index)
    if view is None:
        raise NotFound(f"no batch {index}")
    return view
