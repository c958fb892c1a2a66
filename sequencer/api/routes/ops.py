"""`/health` and `/metrics`: what operators and their monitoring read."""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sequencer.api.deps import NodeDep
from sequencer.metrics import REGISTRY
from sequencer.views import HealthView

router = APIRouter(tags=["ops"])


@router.get(
    "/health",
    response_model=HealthView,
    responses={503: {"model": HealthView, "description": "not healthy"}},
)
async def health(n: NodeDep) -> Response:
    """200 when the node's loops are alive and the L1 answers; 503 otherwise."""
    facts = n.health()
    return JSONResponse(facts, status_code=200 if facts.get("ok") else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
