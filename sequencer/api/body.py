"""The request body limits, enforced for the ASGI application by `BodyLimit`, the outermost of
its own middlewares, and answered there alone: 413 `too_large` in the API's error body. What
comes after it (`sequencer.api.lean`, FastAPI's routes) sees only bodies within the limit, and
the protocol that answers single orders (`sequencer.api.direct`) takes only bodies within the
limit and leaves the others to the application, so every path refuses an oversized body with the
same bytes.

The rule: the largest valid request of an endpoint fits its limit, written as compact JSON or with
a space after each separator (every integer as its longest decimal string). The `max_body_bytes`
setting (64 KiB by default, at least `MIN_BODY_BYTES`) holds any single request; the batch
endpoints have their own limits (`BATCH_BODY_BYTES`), sized for their most items."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sequencer.api.errors import error_response
from sequencer.config import MAX_BODY_BYTES

__all__ = ["BATCH_BODY_BYTES", "MAX_BODY_BYTES", "BodyLimit", "read_body", "replay", "too_large"]

BATCH_BODY_BYTES: dict[str, int] = {
    "/v1/orders/batch": 512 * 1024,  # 1,000 orders: 370,012 bytes compact, 389,012 spaced
    "/v1/transactions/batch": 2 * 1024 * 1024,  # 1,000 of MAX_TX_BYTES: 2,053,010 and 2,055,010
}
"""The body limits of the batch endpoints (module docstring; `tests/sequencer/test_api_limits.py`
builds their largest requests)."""


def too_large(limit: int) -> JSONResponse:
    """The refusal of a body over `limit` bytes."""
    return error_response("too_large", f"body over {limit} bytes")


class BodyLimit:
    """ASGI middleware refusing request bodies over their path's limit (`limits`, else `limit`
    bytes) with `too_large`: by their `content-length`, or (sent without one) once more than the
    limit came. The body is read here, whole, before the application sees it: an error raised
    while FastAPI reads a body would become its own 400."""

    def __init__(self, app: ASGIApp, limit: int, limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.limits = limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await too_large(limit)(scope, receive, send)
                return
        body = await read_body(receive, limit)
        if body is None:
            await too_large(limit)(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body, or None once it passes `limit` bytes (if given) or the client left."""
    chunks: list[bytes] = []
    seen = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return None
        chunk = message.get("body", b"")
        seen += len(chunk)
        if limit is not None and seen > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, then what the server's `receive` gives
    (the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
