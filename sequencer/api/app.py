"""The sequencer's HTTP API (FastAPI): thin routers over a `NodeAPI`.

Handlers are `async`: the node's state is touched only on the event loop thread, so no locks.

Every refusal is `{"error": {"code", "message"}}` with the status of `errors.HTTP_STATUS`; the
node changes nothing when it refuses.
"""

# No `from __future__ import annotations` here: FastAPI must see the local `NodeDep` alias itself.
from functools import partial
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Path, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from sequencer.api.direct import DirectProtocol, DirectRoute, direct_protocol
from sequencer.api.errors import status_for
from sequencer.api.exchange_routes import (
    ExchangeNodeAPI,
    cancel_order,
    exchange_routers,
    place_order_json,
    place_orders_json,
    start_cancel_order,
    start_place_order,
)
from sequencer.api.fast import FastRoute, FastRoutes, read_body, replay
from sequencer.api.order_schemas import CancelRequest, OrderBatchRequest, OrderRequest
from sequencer.api.schemas import (
    Accepted,
    AccountView,
    BatchAccepted,
    BatchItem,
    BatchView,
    ErrorBody,
    ItemError,
    RawBatchRequest,
    RawTxRequest,
    RiskView,
    StatusView,
    TransferRequest,
    TxStatus,
    WithdrawRequest,
)
from sequencer.errors import Malformed, NotFound
from sequencer.metrics import REGISTRY, TXS_REJECTED
from sequencer.stf.errors import RollupError
from sequencer.stf.types import Tx
from sequencer.store import StoredTx
from sequencer.stream import Stream


class NodeAPI(ExchangeNodeAPI, Protocol):
    """What the API needs from a running sequencer node (the exchange's part included)."""

    async def admit_tx(self, tx: Tx | bytes) -> tuple[bytes, int]:
        """Admit one transaction durably in the next admission round; return (hash, seq) or raise
        a RollupError."""
        ...

    def receipt(self, tx_hash: bytes, seq: int) -> bytes | None:
        """The signed acknowledgement of a logged transaction."""
        ...

    async def admit_txs(
        self, items: list[Tx | bytes], label: str = "batch"
    ) -> list[tuple[bytes, int] | RollupError]:
        """Admit several transactions in the next admission round (one durable commit); one
        result per item."""
        ...

    def batch_receipt(self, items: list[tuple[bytes, int]]) -> bytes | None:
        """One signed acknowledgement of every (hash, seq) a batch request got."""
        ...

    @property
    def address(self) -> bytes:
        """The sequencer's L1 address."""
        ...

    def tx_status(self, tx_hash: bytes) -> StoredTx | None:
        """The log row of a transaction."""
        ...

    def account_view(self, address: bytes) -> AccountView:
        """Collateral and nonce, confirmed and pending."""
        ...

    def batch_view(self, index: int) -> BatchView | None:
        """A batch on L1."""
        ...

    def status_view(self) -> StatusView:
        """The node at a glance."""
        ...

    def risk_view(self) -> RiskView:
        """Accounts below their maintenance margin, with the liquidation that would help."""
        ...

    def health(self) -> dict[str, Any]:
        """Liveness facts (L1 reachable, loops alive)."""
        ...

    @property
    def stream(self) -> Stream:
        """Chain events for WebSocket subscribers."""
        ...


def error_response(code: str, message: str) -> JSONResponse:
    """The one error body of the API."""
    TXS_REJECTED.labels(code=code).inc()
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status_for(code))


class BodyLimit:
    """ASGI middleware refusing request bodies over `limit` bytes with 413 `too_large`: by their
    `content-length`, or (sent without one) once more than `limit` bytes came. The body is read
    here, whole, before the application sees it: an error raised while FastAPI reads a body
    would become its own 400."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await error_response("too_large", f"body over {self.limit} bytes")(scope, receive, send)
                return
        body = await read_body(receive, self.limit)
        if body is None:
            await error_response("too_large", f"body over {self.limit} bytes")(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)


def _hex_to_bytes(value: str, length: int | None, what: str) -> bytes:
    if not value.startswith("0x"):
        raise Malformed(f"{what} must be 0x-prefixed hex")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise Malformed(f"{what} is not hex") from exc
    if length is not None and len(raw) != length:
        raise Malformed(f"{what} must be {length} bytes")
    return raw


def _accepted(node: NodeAPI, tx_hash: bytes, seq: int) -> Accepted:
    receipt = node.receipt(tx_hash, seq)
    return Accepted(
        hash="0x" + tx_hash.hex(),
        seq=seq,
        sequencer="0x" + node.address.hex(),
        receipt=None if receipt is None else "0x" + receipt.hex(),
    )


async def submit_raw(n: NodeAPI, body: RawTxRequest) -> Accepted:
    """`POST /v1/transactions` (its FastAPI route and the lean path both call this)."""
    return _accepted(n, *await n.admit_tx(_hex_to_bytes(body.raw, None, "raw")))


async def submit_raw_batch(n: NodeAPI, body: RawBatchRequest) -> BatchAccepted:
    """`POST /v1/transactions/batch`."""
    raws: list[Tx | bytes] = [_hex_to_bytes(r, None, "raw") for r in body.raws]
    items: list[BatchItem] = []
    acked: list[tuple[bytes, int]] = []
    for result in await n.admit_txs(raws):
        if isinstance(result, RollupError):
            code = getattr(result, "code", "internal")
            TXS_REJECTED.labels(code=code).inc()
            items.append(BatchItem(error=ItemError(code=code, message=str(result))))
        else:
            acked.append(result)
            items.append(BatchItem(hash="0x" + result[0].hex(), seq=result[1]))
    receipt = n.batch_receipt(acked)  # one signature for all: signing per item cost the most
    return BatchAccepted(
        sequencer="0x" + n.address.hex(),
        results=items,
        receipt=None if receipt is None else "0x" + receipt.hex(),
    )


def fast_routes(node: NodeAPI) -> dict[str, FastRoute]:
    """The hot endpoints the lean path answers (`sequencer.api.fast`), with their handlers."""
    return {
        "/v1/orders": FastRoute(OrderRequest, partial(place_order_json, node)),
        "/v1/orders/batch": FastRoute(OrderBatchRequest, partial(place_orders_json, node)),
        "/v1/orders/cancel": FastRoute(CancelRequest, partial(cancel_order, node)),
        "/v1/transactions": FastRoute(RawTxRequest, partial(submit_raw, node)),
        "/v1/transactions/batch": FastRoute(RawBatchRequest, partial(submit_raw_batch, node)),
    }


def direct_routes(node: NodeAPI) -> dict[str, DirectRoute]:
    """The endpoints answered inside the HTTP server's protocol (`sequencer.api.direct`)."""
    return {
        "/v1/orders": DirectRoute(OrderRequest, partial(start_place_order, node)),
        "/v1/orders/cancel": DirectRoute(CancelRequest, partial(start_cancel_order, node)),
    }


def server_protocol(node: NodeAPI, *, max_body_bytes: int = 65_536) -> type[DirectProtocol]:
    """The HTTP protocol class the sequencer's uvicorn runs (`uvicorn.Config(http=...)`)."""
    return direct_protocol(direct_routes(node), max_body_bytes, error_response)


class SequencerAPI(FastAPI):
    """The FastAPI application with the lean path in front: a hot request (`fast_routes`) goes
    to `fast` before FastAPI's middlewares and routing, which answer everything else."""

    fast: FastRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast is not None:
            await self.fast(scope, receive, send)  # hands what is not its own to FastAPI
            return
        await super().__call__(scope, receive, send)


def create_app(node: NodeAPI, *, max_body_bytes: int = 65_536, lean: bool = True) -> FastAPI:
    """Build the FastAPI application over a node; with `lean` the hot endpoints are answered
    by the lean path (`sequencer.api.fast`), the same handlers without FastAPI's per-request
    machinery."""
    app = SequencerAPI(
        title="DerivRollup sequencer",
        version="1",
        description=(
            "Place signed orders, cancels and bundles; submit signed transactions; read markets, "
            "books, orders, fills, accounts and batches. See docs/protocol.md."
        ),
        responses={
            400: {"model": ErrorBody},
            404: {"model": ErrorBody},
            409: {"model": ErrorBody},
            503: {"model": ErrorBody},
        },
        # no OpenTelemetry here: without this, FastAPI asks for the providers on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    async def get_node() -> NodeAPI:
        # async: FastAPI runs a plain `def` dependency in a worker thread, once per request
        return node

    NodeDep = Annotated[NodeAPI, Depends(get_node)]

    @app.exception_handler(RollupError)
    async def _rollup_error(_: Request, exc: RollupError) -> JSONResponse:
        code = getattr(exc, "code", "internal")
        return error_response(code, str(exc) or type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response("malformed", f"{where}: {first.get('msg', 'invalid request')}")

    txs = APIRouter(prefix="/v1", tags=["transactions"])

    @txs.post("/transfers", response_model=Accepted)
    async def post_transfer(body: TransferRequest, n: NodeDep) -> Accepted:
        """Submit an EIP-712 signed transfer."""
        return _accepted(n, *await n.admit_tx(body.to_tx()))

    @txs.post("/withdrawals", response_model=Accepted)
    async def post_withdrawal(body: WithdrawRequest, n: NodeDep) -> Accepted:
        """Submit an EIP-712 signed withdrawal to L1."""
        return _accepted(n, *await n.admit_tx(body.to_tx()))

    @txs.post("/transactions", response_model=Accepted)
    async def post_raw(body: RawTxRequest, n: NodeDep) -> Accepted:
        """Submit an encoded transaction (protocol section 3)."""
        return await submit_raw(n, body)

    @txs.post("/transactions/batch", response_model=BatchAccepted)
    async def post_raw_batch(body: RawBatchRequest, n: NodeDep) -> BatchAccepted:
        """Submit up to 1,000 encoded transactions at once (one durable commit for all).

        Items are admitted in order, each against the view that includes the ones before it;
        each gets its own acknowledgement or error. HTTP 200 even if some items are refused.
        """
        return await submit_raw_batch(n, body)

    @txs.get("/transactions/{tx_hash}", response_model=TxStatus)
    async def get_tx(tx_hash: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")], n: NodeDep) -> TxStatus:
        """Where an acknowledged transaction is: pending, batched (with its batch) or dropped."""
        row = n.tx_status(bytes.fromhex(tx_hash[2:]))
        if row is None:
            raise NotFound(f"no transaction {tx_hash}")
        return TxStatus(
            hash=tx_hash.lower(),
            seq=row.seq,
            status=row.status,
            batch_index=row.batch_index,
            reason=row.reason,
        )

    reads = APIRouter(prefix="/v1", tags=["state"])

    @reads.get("/accounts/{address}", response_model=AccountView)
    async def get_account(
        address: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")], n: NodeDep
    ) -> AccountView:
        """An account's collateral and nonce (as of the L1 tip, and with the mempool), and as of
        the mempool its equity, margins, margin ratio, positions with their liquidation prices,
        and its resting orders."""
        return n.account_view(bytes.fromhex(address[2:]))

    @reads.get("/batches/{index}", response_model=BatchView)
    async def get_batch(index: Annotated[int, Path(ge=0)], n: NodeDep) -> BatchView:
        """A batch on L1 with its header and transaction hashes."""
        view = n.batch_view(index)
        if view is None:
            raise NotFound(f"no batch {index}")
        return view

    @reads.get("/status", response_model=StatusView)
    async def get_status(n: NodeDep) -> StatusView:
        """The node at a glance."""
        return n.status_view()

    @reads.get("/risk", response_model=RiskView)
    async def get_risk(n: NodeDep) -> RiskView:
        """Accounts below their maintenance margin (as of the mempool), worst first, each with the
        position and size whose liquidation restores it: what a liquidation bot submits."""
        return n.risk_view()

    @reads.websocket("/stream")
    async def stream(ws: WebSocket) -> None:
        """Events as JSON: `batch` (index, post_root, sequencer, tx_hashes, valid), `revert`,
        `fill` (market, price, size, taker_side, maker, taker, maker_order, taker_order, tx_hash,
        seq), `book` (change added / reduced / removed, market, order, trader, side, price, size,
        remaining or reason) and `book_snapshot` (market, bids, asks) after the books are rebuilt."""
        await ws.accept()
        queue = node.stream.subscribe()
        try:
            while True:
                message = await queue.get()
                if message is None:  # fell too far behind
                    await ws.close(code=1013)
                    return
                await ws.send_json(message)
        except WebSocketDisconnect:
            return
        finally:
            node.stream.unsubscribe(queue)

    app.include_router(txs)
    app.include_router(reads)
    for router in exchange_routers(get_node):
        app.include_router(router)

    @app.get("/health", tags=["ops"])
    async def health(n: NodeDep) -> Response:
        """200 when the node's loops are alive and the L1 answers; 503 otherwise."""
        facts = n.health()
        return JSONResponse(facts, status_code=200 if facts.get("ok") else 503)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    if lean:  # a hot request never reaches FastAPI's middlewares and routes (`SequencerAPI`)
        fallback = partial(FastAPI.__call__, app)
        app.fast = FastRoutes(fallback, fast_routes(node), max_body_bytes, error_response)
    return app
