"""The API's one error body, `{"error": {"code", "message"}}` (`contracts.http_api`), and the one
mapping from error codes (of the state machine's and the service's errors) to HTTP statuses;
every path of the API answers a refusal through `error_response`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextvars import ContextVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from contracts.http_api import ERROR_STATUS, error_json
from sequencer.errors import RateLimited
from sequencer.metrics import TXS_REJECTED
from sequencer.stf.errors import BadSignature, RollupError

# code -> HTTP status (docs/protocol.md section 9). Every refusal carries one of these codes.
HTTP_STATUS: dict[str, int] = {
    **ERROR_STATUS,  # malformed, not_found, method_not_allowed, too_large, internal
    "bad_signature": 400,
    "invalid_amount": 400,
    "self_transfer": 400,
    "invalid_recipient": 400,
    "bad_deposit": 400,
    "bad_nonce": 409,
    "insufficient_balance": 409,
    "withdrawal_exists": 409,
    "dropped": 409,
    "rate_limited": 429,
    "overloaded": 503,
    "not_ready": 503,
    "l1_unavailable": 503,
    "not_leader": 503,
    "cluster_unavailable": 503,
    "log_behind": 503,
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
    """HTTP status of an error code (500 also for codes nobody mapped, which is a bug)."""
    return HTTP_STATUS.get(code, 500)


def error_response(code: str, message: str) -> JSONResponse:
    """The one error body of the API (each refusal counted by its code)."""
    TXS_REJECTED.labels(code=code).inc()
    return error_json(code, message, status_for(code))


def refusal(exc: RollupError) -> JSONResponse:
    """The answer to a refused request: the error's code, and its message (or its type's name);
    a client over its share is told when to come back (`Retry-After`, whole seconds) and, if
    penalized, that its connection closes."""
    response = error_response(getattr(exc, "code", "internal"), str(exc) or type(exc).__name__)
    if isinstance(exc, RateLimited):
        response.headers["retry-after"] = str(max(1, math.ceil(exc.retry_after_s)))
        if exc.close:
            response.headers["connection"] = "close"
    return response


PENALIZE: ContextVar[Callable[[], None] | None] = ContextVar("penalize", default=None)
"""Penalizes the client of the request being answered in this task (`sequencer.api.gate`)."""


def blame(errors: Iterable[object]) -> None:
    """Penalize the current request's client (`PENALIZE`) if one of `errors` is a bad signature."""
    penalize = PENALIZE.get()
    if penalize is not None and any(isinstance(e, BadSignature) for e in errors):
        penalize()


async def rollup_error_handler(_: Request, exc: RollupError) -> JSONResponse:
    """FastAPI's handler of every `RollupError` a route raises."""
    blame((exc,))
    return refusal(exc)
