"""Thin routers of the exchange: orders, cancels, bundles, markets and books, fills.

Every refusal is a `RollupError` with the protocol's code (the app's one exception handler turns
it into `{"error": {"code", "message"}}` with its HTTP status); a partly filled order whose
remainder was refused is a 200 whose body says `refused` with the code (its fills stand).
"""

# No `from __future__ import annotations` here: FastAPI must see the local `NodeDep` alias itself.
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

import orjson
from fastapi import APIRouter, Depends, Path, Query

from sequencer.api.order_schemas import (
    BookView,
    BundleRequest,
    BundleResult,
    CancelRequest,
    CancelResult,
    FillsView,
    FillView,
    Level,
    MarketView,
    OrderBatchRequest,
    OrderBatchResult,
    OrderRequest,
    OrderResult,
    OrderView,
)
from sequencer.errors import NotFound
from sequencer.exchange import (
    BundleOutcome,
    CancelOutcome,
    FillRecord,
    OrderDetails,
    OrderOutcome,
)
from sequencer.matching import OrderBook
from sequencer.metrics import TXS_REJECTED
from sequencer.stf.errors import RollupError, UnknownMarket
from sequencer.stf.margin import Markets
from sequencer.stf.types import Bundle, Cancel, Signature, SignedOrder

HexDigest = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]
MAX_DEPTH = 1000
"""Most levels per side `GET /v1/markets/{id}/book` returns."""


class ExchangeNodeAPI(Protocol):
    """What the exchange endpoints need from a running node."""

    @property
    def address(self) -> bytes:
        """The sequencer's L1 address."""
        ...

    async def admit_orders(self, orders: list[SignedOrder]) -> list[OrderOutcome | RollupError]:
        """Place orders in the next admission round (one durable commit); one outcome or error
        per order."""
        ...

    def place_orders_now(
        self,
        orders: list[SignedOrder],
        reply: Callable[[list[OrderOutcome | RollupError] | BaseException], None],
    ) -> None:
        """`admit_orders` answered through `reply`, called by the admission round itself."""
        ...

    async def admit_cancel(self, tx: Cancel) -> CancelOutcome:
        """Admit a signed Cancel and take the order out of its book (urgent class)."""
        ...

    def cancel_now(self, tx: Cancel, reply: Callable[[CancelOutcome | BaseException], None]) -> None:
        """`admit_cancel` answered through `reply`, called by the admission round itself."""
        ...

    async def admit_bundle(self, bundle: Bundle, sig: Signature) -> BundleOutcome:
        """Fill a signed bundle whole, or refuse it."""
        ...

    def order_details(self, digest: bytes) -> OrderDetails | None:
        """An order the exchange accepted."""
        ...

    def fills_of(self, account: bytes, limit: int, before_seq: int | None) -> list[FillRecord]:
        """An account's latest fills, newest first."""
        ...

    def markets(self) -> Markets:
        """The listed markets (as of the mempool)."""
        ...

    def book(self, market_id: int) -> OrderBook | None:
        """The book of a listed market."""
        ...

    def receipt(self, tx_hash: bytes, seq: int) -> bytes | None:
        """The signed acknowledgement of a logged transaction."""
        ...

    def batch_receipt(self, items: list[tuple[bytes, int]]) -> bytes | None:
        """One signed acknowledgement of several (hash, seq)."""
        ...


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def _fill_fields(f: FillRecord) -> dict[str, Any]:
    """A fill record as `FillView`'s fields, in its order."""
    return {
        "tx_hash": "0x" + f.tx_hash.hex(),
        "seq": f.seq,
        "market": f.market,
        "price": f.price,
        "size": f.size,
        "taker_side": f.taker_side,
        "maker": "0x" + f.maker.hex(),
        "taker": "0x" + f.taker.hex(),
        "maker_order": "0x" + f.maker_order.hex(),
        "taker_order": "0x" + f.taker_order.hex(),
        "status": f.status,
    }


def _result_fields(n: ExchangeNodeAPI, out: OrderOutcome, sequencer: str, receipt: bool) -> dict[str, Any]:
    """An order's outcome as `OrderResult`'s fields, in its order (the one place they are made:
    the FastAPI route validates them into the model, the lean path encodes them as they are)."""
    signed = n.batch_receipt([(f.tx_hash, f.seq) for f in out.fills]) if receipt else None
    return {
        "digest": "0x" + out.digest.hex(),
        "status": str(out.status),
        "resting": out.resting,
        "fills": [_fill_fields(f) for f in out.fills],
        "code": out.code,
        "message": out.message,
        "known": out.known,
        "sequencer": sequencer,
        "receipt": _hex(signed),
    }


async def _place_order_fields(n: ExchangeNodeAPI, body: OrderRequest) -> dict[str, Any]:
    return _order_answer_fields(n, await n.admit_orders([body.to_signed()]))


def _order_answer_fields(n: ExchangeNodeAPI, outcomes: list[OrderOutcome | RollupError]) -> dict[str, Any]:
    (out,) = outcomes
    if isinstance(out, RollupError):
        raise out
    return _result_fields(n, out, "0x" + n.address.hex(), receipt=True)


async def _place_orders_fields(n: ExchangeNodeAPI, body: OrderBatchRequest) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    acked: list[tuple[bytes, int]] = []
    sequencer = "0x" + n.address.hex()
    for out in await n.admit_orders([o.to_signed() for o in body.orders]):
        if isinstance(out, RollupError):
            TXS_REJECTED.labels(code=out.code).inc()
            items.append({"result": None, "error": {"code": out.code, "message": str(out)}})
        else:
            acked += [(f.tx_hash, f.seq) for f in out.fills]
            items.append({"result": _result_fields(n, out, sequencer, receipt=False), "error": None})
    receipt = _hex(n.batch_receipt(acked))  # one signature over every fill of every item
    return {"sequencer": sequencer, "results": items, "receipt": receipt}


async def place_order(n: ExchangeNodeAPI, body: OrderRequest) -> OrderResult:
    """`POST /v1/orders` through FastAPI."""
    return OrderResult.model_validate(await _place_order_fields(n, body))


async def place_order_json(n: ExchangeNodeAPI, body: OrderRequest) -> bytes:
    """`POST /v1/orders` on the lean path: the same answer as `place_order`, as JSON bytes
    (no response model is built; `tests/sequencer/test_api_fast.py` holds them byte-identical)."""
    return orjson.dumps(await _place_order_fields(n, body))


def start_place_order(
    n: ExchangeNodeAPI, body: OrderRequest, reply: Callable[[bytes | BaseException], None]
) -> None:
    """`POST /v1/orders` answered in the server's protocol (`sequencer.api.direct`): the order is
    queued now and `reply` gets the answer `place_order_json` would give (or the exception it
    would raise) from the admission round."""

    def answered(outcomes: list[OrderOutcome | RollupError] | BaseException) -> None:
        if isinstance(outcomes, BaseException):
            reply(outcomes)
            return
        try:
            answer = orjson.dumps(_order_answer_fields(n, outcomes))
        except Exception as exc:  # a refusal (RollupError), or a fault: answered, never lost
            reply(exc)
        else:
            reply(answer)

    n.place_orders_now([body.to_signed()], answered)


async def place_orders(n: ExchangeNodeAPI, body: OrderBatchRequest) -> OrderBatchResult:
    """`POST /v1/orders/batch` through FastAPI."""
    return OrderBatchResult.model_validate(await _place_orders_fields(n, body))


async def place_orders_json(n: ExchangeNodeAPI, body: OrderBatchRequest) -> bytes:
    """`POST /v1/orders/batch` on the lean path (see `place_order_json`)."""
    return orjson.dumps(await _place_orders_fields(n, body))


async def cancel_order(n: ExchangeNodeAPI, body: CancelRequest) -> CancelResult:
    """`POST /v1/orders/cancel`."""
    return _cancel_result(n, await n.admit_cancel(body.to_tx()))


def _cancel_result(n: ExchangeNodeAPI, out: CancelOutcome) -> CancelResult:
    return CancelResult(
        hash="0x" + out.tx_hash.hex(),
        seq=out.seq,
        order="0x" + out.digest.hex(),
        was_resting=out.was_resting,
        removed=out.removed,
        sequencer="0x" + n.address.hex(),
        receipt=_hex(n.receipt(out.tx_hash, out.seq)),
    )


def start_cancel_order(
    n: ExchangeNodeAPI, body: CancelRequest, reply: Callable[[bytes | BaseException], None]
) -> None:
    """`POST /v1/orders/cancel` answered in the server's protocol (`sequencer.api.direct`), as
    `start_place_order` is: `reply` gets the JSON bytes of `cancel_order`'s answer."""

    def answered(out: CancelOutcome | BaseException) -> None:
        if isinstance(out, BaseException):
            reply(out)
            return
        try:
            answer = _cancel_result(n, out).model_dump_json().encode()
        except Exception as exc:  # a fault: answered with a 500, never lost
            reply(exc)
        else:
            reply(answer)

    n.cancel_now(body.to_tx(), answered)


def exchange_routers(get_node: Callable[[], Awaitable[ExchangeNodeAPI]]) -> list[APIRouter]:
    """The routers of the exchange endpoints over the node `get_node` gives."""
    NodeDep = Annotated[ExchangeNodeAPI, Depends(get_node)]
    orders = APIRouter(prefix="/v1", tags=["orders"])

    @orders.post("/orders", response_model=OrderResult)
    async def post_order(body: OrderRequest, n: NodeDep) -> OrderResult:
        """Place an EIP-712 signed order.

        It matches what crosses (price-time priority, at the makers' prices; every fill checked
        by the state machine), then rests, or (IOC) its remainder is cancelled. Its fills and its
        record are durable before the answer. An order refused outright is a 4xx with the
        protocol's code; an order refused after some fills is a 200 with status `refused`.
        """
        return await place_order(n, body)

    @orders.post("/orders/batch", response_model=OrderBatchResult)
    async def post_orders(body: OrderBatchRequest, n: NodeDep) -> OrderBatchResult:
        """Place up to 1,000 signed orders in order, with one durable commit for all.

        Each order sees the book the ones before it left; each item gets its result or its error
        (HTTP 200 even if some are refused). One receipt covers every fill, in order.
        """
        return await place_orders(n, body)

    @orders.post("/orders/cancel", response_model=CancelResult)
    async def post_cancel(body: CancelRequest, n: NodeDep) -> CancelResult:
        """Cancel an order with the trader's EIP-712 `Cancel(Order order)` signature.

        The Cancel transaction is admitted (durably) and the order leaves the book. An order this
        sequencer does not hold is cancelled all the same (`was_resting: false`): the Cancel
        reaches L1 and the order can never fill. An order already cancelled: 409
        `order_cancelled`.
        """
        return await cancel_order(n, body)

    @orders.post("/bundles", response_model=BundleResult)
    async def post_bundle(body: BundleRequest, n: NodeDep) -> BundleResult:
        """Fill an EIP-712 signed bundle whole, one resting order per leg, or refuse it.

        Each leg takes the best-priced resting order with enough size; the whole BundleFill is
        checked by the state machine. A bundle never rests: `no_match` (409) when a leg finds
        no order.
        """
        bundle, sig = body.to_bundle()
        out = await n.admit_bundle(bundle, sig)
        return BundleResult(
            digest="0x" + out.digest.hex(),
            hash="0x" + out.tx_hash.hex(),
            seq=out.seq,
            fills=[FillView.of(f) for f in out.fills],
            known=out.known,
            sequencer="0x" + n.address.hex(),
            receipt=_hex(n.receipt(out.tx_hash, out.seq)),
        )

    @orders.get("/orders/{digest}", response_model=OrderView)
    async def get_order(digest: HexDigest, n: NodeDep) -> OrderView:
        """An order (or bundle) this sequencer accepted: its status, filled size and fills."""
        details = n.order_details(bytes.fromhex(digest[2:]))
        if details is None:
            raise NotFound(f"no order {digest}")
        return OrderView.of(details)

    @orders.get("/fills", response_model=FillsView)
    async def get_fills(
        account: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{40}$")],
        n: NodeDep,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=0, description="only fills logged before this seq")] = None,
    ) -> FillsView:
        """An account's latest fills (as maker or taker), newest first; page back with `before`."""
        fills = n.fills_of(bytes.fromhex(account[2:]), limit, before)
        return FillsView(account=account.lower(), fills=[FillView.of(f) for f in fills])

    markets = APIRouter(prefix="/v1", tags=["markets"])

    @markets.get("/markets", response_model=list[MarketView])
    async def get_markets(n: NodeDep) -> list[MarketView]:
        """Every listed market: parameters, live state (as of the mempool) and top of book."""
        out = []
        for market_id, market in enumerate(n.markets()):
            book = n.book(market_id)
            assert book is not None
            out.append(MarketView.of(market_id, market, book.best_bid(), book.best_ask(), len(book)))
        return out

    @markets.get("/markets/{market_id}/book", response_model=BookView)
    async def get_book(
        market_id: Annotated[int, Path(ge=0, lt=2**16)],
        n: NodeDep,
        depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = 20,
    ) -> BookView:
        """The `depth` best price levels of each side (price, total size), best first."""
        book = n.book(market_id)
        if book is None:
            raise UnknownMarket(market_id)
        bids, asks = book.depth(depth)
        return BookView(
            market=market_id,
            bids=[Level(price=p, size=s) for p, s in bids],
            asks=[Level(price=p, size=s) for p, s in asks],
        )

    return [orders, markets]
