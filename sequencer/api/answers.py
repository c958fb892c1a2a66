"""The answers of the hot endpoints (orders, order batches, cancels, encoded transactions), each
built once, as JSON bytes, for every path that serves its endpoint: the FastAPI route sends them
as they are (`json_answer`), and so do the lean path (`sequencer.api.lean`) and the HTTP protocol
(`sequencer.api.direct`). No response model is built or checked per request; the routes still
declare theirs for OpenAPI, and `tests/sequencer/test_api_answers.py` holds the bytes equal to
what those models would give.

A refusal is a `RollupError` with the protocol's code, raised (or handed to `reply`); a partly
filled order whose remainder was refused is an answer whose status is `refused` with the code
(its fills stand).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.responses import Response

from sequencer.api.deps import NodeAPI
from sequencer.api.errors import blame
from sequencer.api.order_schemas import CancelRequest, CancelResult, OrderBatchRequest, OrderRequest
from sequencer.api.schemas import Accepted, BatchAccepted, BatchItem, ItemError, RawBatchRequest, RawTxRequest
from sequencer.errors import Malformed
from sequencer.exchange import CancelOutcome, FillRecord, OrderOutcome
from sequencer.metrics import TXS_REJECTED
from sequencer.stf.errors import RollupError
from sequencer.stf.types import Tx
from sequencer.wire import wire_int

Reply = Callable[[bytes | BaseException], None]
"""Called once with an answer's JSON bytes, or the exception that refuses the request."""


def json_answer(content: bytes) -> Response:
    """An answer already encoded: sent as FastAPI sends a response model's JSON."""
    return Response(content, media_type="application/json")


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def hex_to_bytes(value: str, length: int | None, what: str) -> bytes:
    """The bytes of a 0x-prefixed hex string (`length` of them, if given), or `Malformed`."""
    if not value.startswith("0x"):
        raise Malformed(f"{what} must be 0x-prefixed hex")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise Malformed(f"{what} is not hex") from exc
    if length is not None and len(raw) != length:
        raise Malformed(f"{what} must be {length} bytes")
    return raw


# ---- transactions ------------------------------------------------------------------------


def accepted(node: NodeAPI, tx_hash: bytes, seq: int) -> Accepted:
    """The acknowledgement of an admitted transaction, with its signed receipt."""
    return Accepted(
        hash="0x" + tx_hash.hex(),
        seq=seq,
        sequencer="0x" + node.address.hex(),
        receipt=_hex(node.receipt(tx_hash, seq)),
    )


async def submit_raw(node: NodeAPI, body: RawTxRequest) -> bytes:
    """`POST /v1/transactions`: an `Accepted`."""
    answer = accepted(node, *await node.admit_tx(hex_to_bytes(body.raw, None, "raw")))
    return answer.model_dump_json().encode()


async def submit_raw_batch(node: NodeAPI, body: RawBatchRequest) -> bytes:
    """`POST /v1/transactions/batch`: a `BatchAccepted`, one item per transaction."""
    raws: list[Tx | bytes] = [hex_to_bytes(r, None, "raw") for r in body.raws]
    items: list[BatchItem] = []
    acked: list[tuple[bytes, int]] = []
    results = await node.admit_txs(raws)
    blame(results)
    for result in results:
        if isinstance(result, RollupError):
            code = getattr(result, "code", "internal")
            TXS_REJECTED.labels(code=code).inc()
            items.append(BatchItem(error=ItemError(code=code, message=str(result))))
        else:
            acked.append(result)
            items.append(BatchItem(hash="0x" + result[0].hex(), seq=result[1]))
    receipt = node.batch_receipt(acked)  # one signature for all: signing per item cost the most
    answer = BatchAccepted(sequencer="0x" + node.address.hex(), results=items, receipt=_hex(receipt))
    return answer.model_dump_json().encode()


# ---- orders ------------------------------------------------------------------------------


def fill_fields(f: FillRecord) -> dict[str, Any]:
    """A fill record as `FillView`'s fields, in its order."""
    return {
        "tx_hash": "0x" + f.tx_hash.hex(),
        "seq": f.seq,
        "market": f.market,
        "price": wire_int(f.price),
        "size": wire_int(f.size),
        "taker_side": f.taker_side,
        "maker": "0x" + f.maker.hex(),
        "taker": "0x" + f.taker.hex(),
        "maker_order": "0x" + f.maker_order.hex(),
        "taker_order": "0x" + f.taker_order.hex(),
        "status": f.status,
    }


def _result_fields(node: NodeAPI, out: OrderOutcome, sequencer: str, receipt: bool) -> dict[str, Any]:
    """An order's outcome as `OrderResult`'s fields, in its order (with its own receipt, or none
    when the batch's covers it)."""
    signed = node.order_receipt([out.digest], [(f.tx_hash, f.seq) for f in out.fills]) if receipt else None
    return {
        "digest": "0x" + out.digest.hex(),
        "status": str(out.status),
        "resting": wire_int(out.resting),
        "fills": [fill_fields(f) for f in out.fills],
        "code": out.code,
        "message": out.message,
        "known": out.known,
        "sequencer": sequencer,
        "receipt": _hex(signed),
    }


def order_answer(node: NodeAPI, outcomes: list[OrderOutcome | RollupError]) -> bytes:
    """The `OrderResult` of a single order's outcome (its refusal raised)."""
    (out,) = outcomes
    if isinstance(out, RollupError):
        raise out
    return orjson.dumps(_result_fields(node, out, "0x" + node.address.hex(), receipt=True))


async def place_order(node: NodeAPI, body: OrderRequest) -> bytes:
    """`POST /v1/orders`: an `OrderResult`."""
    return order_answer(node, await node.admit_orders([body.to_signed()]))


def start_place_order(node: NodeAPI, body: OrderRequest, reply: Reply) -> None:
    """`POST /v1/orders` answered in the server's protocol (`sequencer.api.direct`): the order is
    queued now and `reply` gets `place_order`'s answer (or the exception it would raise) from the
    admission round."""

    def answered(outcomes: list[OrderOutcome | RollupError] | BaseException) -> None:
        if isinstance(outcomes, BaseException):
            reply(outcomes)
            return
        try:
            answer = order_answer(node, outcomes)
        except Exception as exc:  # a refusal (RollupError), or a fault: answered, never lost
            reply(exc)
        else:
            reply(answer)

    node.place_orders_now([body.to_signed()], answered)


async def place_orders(node: NodeAPI, body: OrderBatchRequest) -> bytes:
    """`POST /v1/orders/batch`: an `OrderBatchResult`, one item per order."""
    items: list[dict[str, Any]] = []
    placed: list[bytes] = []
    acked: list[tuple[bytes, int]] = []
    sequencer = "0x" + node.address.hex()
    outcomes = await node.admit_orders([o.to_signed() for o in body.orders])
    blame(outcomes)
    for out in outcomes:
        if isinstance(out, RollupError):
            TXS_REJECTED.labels(code=out.code).inc()
            items.append({"result": None, "error": {"code": out.code, "message": str(out)}})
        else:
            placed.append(out.digest)
            acked += [(f.tx_hash, f.seq) for f in out.fills]
            items.append({"result": _result_fields(node, out, sequencer, receipt=False), "error": None})
    receipt = _hex(node.order_receipt(placed, acked))  # one signature: every order, every fill
    return orjson.dumps({"sequencer": sequencer, "results": items, "receipt": receipt})


def cancel_answer(node: NodeAPI, out: CancelOutcome) -> bytes:
    """The `CancelResult` of a cancel's outcome."""
    answer = CancelResult(
        hash="0x" + out.tx_hash.hex(),
        seq=out.seq,
        order="0x" + out.digest.hex(),
        was_resting=out.was_resting,
        removed=out.removed,
        sequencer="0x" + node.address.hex(),
        receipt=_hex(node.receipt(out.tx_hash, out.seq)),
    )
    return answer.model_dump_json().encode()


async def cancel_order(node: NodeAPI, body: CancelRequest) -> bytes:
    """`POST /v1/orders/cancel`: a `CancelResult`."""
    return cancel_answer(node, await node.admit_cancel(body.to_tx()))


def start_cancel_order(node: NodeAPI, body: CancelRequest, reply: Reply) -> None:
    """`POST /v1/orders/cancel` answered in the server's protocol, as `start_place_order` is:
    `reply` gets `cancel_order`'s answer."""

    def answered(out: CancelOutcome | BaseException) -> None:
        if isinstance(out, BaseException):
            reply(out)
            return
        try:
            answer = cancel_answer(node, out)
        except Exception as exc:  # a fault: answered with a 500, never lost
            reply(exc)
        else:
            reply(answer)

    node.cancel_now(body.to_tx(), answered)
