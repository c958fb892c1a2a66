"""`/v1/orders` and `/v1/bundles`: place signed orders (one, or a batch), cancel them, fill bundles,
and read an order back.

Every refusal is a `RollupError` with the protocol's code (the app's one exception handler turns
it into `{"error": {"code", "message"}}` with its HTTP status); a partly filled order whose
remainder was refused is a 200 whose body says `refused` with the code (its fills stand).
"""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from sequencer.api import paths
from sequencer.api.answers import cancel_order, json_answer, place_order, place_orders
from sequencer.api.deps import NodeDep
from sequencer.api.order_schemas import (
    BundleRequest,
    BundleResult,
    CancelRequest,
    CancelResult,
    FillView,
    OrderBatchRequest,
    OrderBatchResult,
    OrderRequest,
    OrderResult,
    OrderView,
)
from sequencer.errors import NotFound

HexDigest = Annotated[str, Path(pattern=f"^{paths.Hash32.regex}$")]

router = APIRouter(prefix="/v1", tags=["orders"])


@router.post("/orders", response_model=OrderResult)
async def post_order(body: OrderRequest, n: NodeDep) -> Response:
    """Place an EIP-712 signed order.

    It matches what crosses (price-time priority, at the makers' prices; every fill checked
    by the state machine), then rests, or (IOC) its remainder is cancelled. Its fills and its
    record are durable before the answer. An order refused outright is a 4xx with the
    protocol's code; an order refused after some fills is a 200 with status `refused`.
    """
    return json_answer(await place_order(n, body))


@router.post("/orders/batch", response_model=OrderBatchResult)
async def post_orders(body: OrderBatchRequest, n: NodeDep) -> Response:
    """Place up to 1,000 signed orders in order, with one durable commit for all (a body of up
    to 512 KiB).

    Each order sees the book the ones before it left; each item gets its result or its error
    (HTTP 200 even if some are refused). One receipt covers every fill, in order.
    """
    return json_answer(await place_orders(n, body))


@router.post("/orders/cancel", response_model=CancelResult)
async def post_cancel(body: CancelRequest, n: NodeDep) -> Response:
    """Cancel an order with the trader's EIP-712 `Cancel(Order order)` signature.

    The Cancel transaction is admitted (durably) and the order leaves the book. An order this
    sequencer does not hold is cancelled all the same (`was_resting: false`): the Cancel
    reaches L1 and the order can never fill. An order already cancelled: 409
    `order_cancelled`.
    """
    return json_answer(await cancel_order(n, body))


@router.post("/bundles", response_model=BundleResult)
async def post_bundle(body: BundleRequest, n: NodeDep) -> BundleResult:
    """Fill an EIP-712 signed bundle whole, one resting order per leg, or refuse it.

    Each leg takes the best-priced resting order with enough size; the whole BundleFill is
    checked by the state machine. A bundle never rests: `no_match` (409) when a leg finds
    no order.
    """
    bundle, sig = body.to_bundle()
    out = await n.admit_bundle(bundle, sig)
    receipt = n.receipt(out.tx_hash, out.seq)
    return BundleResult(
        digest="0x" + out.digest.hex(),
        hash="0x" + out.tx_hash.hex(),
        seq=out.seq,
        fills=[FillView.of(f) for f in out.fills],
        known=out.known,
        sequencer="0x" + n.address.hex(),
        receipt=None if receipt is None else "0x" + receipt.hex(),
    )


@router.get("/orders/{digest:hash32}", response_model=OrderView)
async def get_order(digest: HexDigest, n: NodeDep) -> OrderView:
    """An order (or bundle) this sequencer accepted: its status, filled size and fills."""
    details = n.order_details(bytes.fromhex(digest[2:]))
    if details is None:
        raise NotFound(f"no order {digest}")
    return OrderView.of(details)
