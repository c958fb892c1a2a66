"""The API's one error body, `{"error": {"code", "message"}}`, and the one mapping from error codes
(of the state machine's and the service's errors) to HTTP statuses; every path of the API answers
a refusal through `error_response`."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from sequencer.metrics import TXS_REJECTED
from sequencer.stf.errors import RollupError

# code -> HTTP status (docs/protocol.md section 9). Every refusal carries one of these codes.
HTTP_STATUS: dict[str, int] = {
    "malformed": 400,
    "bad_signature": 400,
    "invalid_amount": 400,
    "self_transfer": 400,
    "invalid_recipient": 400,
    "bad_deposit": 400,
    "bad_nonce": 409,
    "insufficient_balance": 409,
    "withdrawal_exists": 409,
    "dropped": 409,
    "not_found": 404,
    "too_large": 413,
    "overloaded": 503,
    "not_ready": 503,
    # exchange (protocol v2)
    "insufficient_margin": 409,
    "unknown_market": 404,
    "price_off_tick": 400,
    "size_off_lot": 400,
    "order_expired": 409,
    "order_cancelled": 409,
    "overfill": 409,
    "self_trade": 409,
    "stale_oracle": 409,
    "market_halted": 409,
    "post_only_would_cross": 409,
    "reduce_only": 409,
    "position_limit": 409,
    "not_liquidatable": 409,
    "invalid_order": 400,
    "no_match": 409,
    "insufficient_order_margin": 409,
    "open_position_limit": 409,
    "too_many_open_orders": 409,
    "duplicate_order": 409,
    "unknown_order": 404,
    "reduce_only_would_increase": 409,
    "invalid_oracle_update": 400,
    "funding_not_due": 409,
    "invalid_message": 400,
    "invalid_transaction": 400,
}


def status_for(code: str) -> int:
    """HTTP status of an error code (500 only for codes nobody mapped, which is a bug)."""
    return HTTP_STATUS.get(code, 500)


def error_response(code: str, message: str) -> JSONResponse:
    """The one error body of the API (each refusal counted by its code)."""
    TXS_REJECTED.labels(code=code).inc()
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status_for(code))


def refusal(exc: RollupError) -> JSONResponse:
    """The answer to a refused request: the error's code, and its message (or its type's name)."""
    return error_response(getattr(exc, "code", "internal"), str(exc) or type(exc).__name__)


async def rollup_error_handler(_: Request, exc: RollupError) -> JSONResponse:
    """FastAPI's handler of every `RollupError` a route raises."""
    return refusal(exc)


async def validation_error_handler(_: Request, exc: RequestValidationError) -> JSONResponse:
    """A request that does not validate: 400 `malformed`, naming the first field at fault."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return error_response("malformed", f"{where}: {first.get('msg', 'invalid request')}")
