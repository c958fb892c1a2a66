"""The application factory: the routers (`sequencer.api.routes`), the exception handlers and the
middlewares (fair admission, the body limit, then the lean path), over a node; and the HTTP
protocol class that answers single orders and cancels.

Each hot endpoint has one fast path, and FastAPI's route behind it for what the fast path does not
take; both validate with the route's one request model and answer with its one answer
(`sequencer.api.answers`): single orders and cancels in the HTTP protocol (`direct_routes`),
encoded transactions (single and batched) and order batches by the lean path (`lean_routes`).
Every other request goes to FastAPI's routes.

Handlers are `async`: the node's state is touched only on the event loop thread, so no locks.
Every refusal, a fault's 500 included, is `{"error": {"code", "message"}}` with the status of
`errors.HTTP_STATUS` (`contracts.http_api`); the node changes nothing when it refuses.
"""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from contracts.http_api import ERROR_RESPONSES, ErrorBody, exact_openapi, install_error_handlers
from sequencer.api.answers import (
    place_orders,
    start_cancel_order,
    start_place_order,
    submit_raw,
    submit_raw_batch,
)
from sequencer.api.body import BATCH_BODY_BYTES, MAX_BODY_BYTES, BodyLimit
from sequencer.api.deps import NodeAPI
from sequencer.api.direct import DirectProtocol, DirectRoute, direct_protocol
from sequencer.api.errors import error_response, rollup_error_handler
from sequencer.api.forward import Forward
from sequencer.api.gate import Gate
from sequencer.api.lean import LeanRoute, LeanRoutes
from sequencer.api.order_schemas import CancelRequest, OrderBatchRequest, OrderRequest
from sequencer.api.routes import routers
from sequencer.api.schemas import RawBatchRequest, RawTxRequest
from sequencer.fairness import Fairness
from sequencer.stf.errors import RollupError


def create_app(
    node: NodeAPI, *, max_body_bytes: int = MAX_BODY_BYTES, fairness: Fairness | None = None
) -> FastAPI:
    """The FastAPI application over a node, refusing bodies over `max_body_bytes` (the batch
    endpoints over theirs, `BATCH_BODY_BYTES`), and each write over its client's share of
    `fairness` (if given)."""
    app = FastAPI(
        title="DerivRollup sequencer",
        version="1",
        description=(
            "Place signed orders, cancels and bundles; submit signed transactions; read markets, "
            "books, orders, fills, accounts and batches. See docs/protocol.md."
        ),
        responses={
            **ERROR_RESPONSES,
            409: {"model": ErrorBody, "description": "a rule of the state machine or the exchange"},
            429: {
                "model": ErrorBody,
                "description": "`rate_limited`: over the client's share; see `Retry-After`",
            },
            503: {"model": ErrorBody, "description": "`not_ready` or `overloaded`"},
        },
        # no OpenTelemetry here: without this, FastAPI asks for the providers on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.node = node  # what `deps.get_node` gives the routes
    for router in routers:
        app.include_router(router)
    install_error_handlers(app, error_response)
    app.add_exception_handler(RollupError, rollup_error_handler)  # type: ignore[arg-type]
    app.add_middleware(LeanRoutes, routes=lean_routes(node))
    app.add_middleware(Forward, node=node)  # a set's follower: writes to the leader, bodies checked first
    app.add_middleware(BodyLimit, limit=max_body_bytes, limits=BATCH_BODY_BYTES)
    if fairness is not None:  # added last: the first to see a request
        app.add_middleware(Gate, fairness=fairness)
    exact_openapi(app)
    return app


def lean_routes(node: NodeAPI) -> dict[str, LeanRoute]:
    """The endpoints the lean path answers (`sequencer.api.lean`), each with its route's request
    model and answer."""
    return {
        "/v1/transactions": LeanRoute(RawTxRequest, partial(submit_raw, node)),
        "/v1/transactions/batch": LeanRoute(RawBatchRequest, partial(submit_raw_batch, node)),
        "/v1/orders/batch": LeanRoute(OrderBatchRequest, partial(place_orders, node)),
    }


def direct_routes(node: NodeAPI) -> dict[str, DirectRoute]:
    """The endpoints answered inside the HTTP protocol, each with its route's request model."""
    return {
        "/v1/orders": DirectRoute(OrderRequest, partial(start_place_order, node)),
        "/v1/orders/cancel": DirectRoute(CancelRequest, partial(start_cancel_order, node)),
    }


def server_protocol(
    node: NodeAPI, *, max_body_bytes: int = MAX_BODY_BYTES, fairness: Fairness | None = None
) -> type[DirectProtocol]:
    """The HTTP protocol class the sequencer's uvicorn runs (`uvicorn.Config(http=...)`): single
    orders and cancels answered in the protocol itself (`sequencer.api.direct`), the rest by the
    application; `fairness` as for `create_app` (the same object for both)."""
    return direct_protocol(
        direct_routes(node),
        max_body_bytes,
        fairness,
        local=lambda: node.forward_url() is None,
        position=lambda: node.log_position(),
    )
