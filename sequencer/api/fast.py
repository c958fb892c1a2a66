"""The lean request path of the hot endpoints (orders, order batches, cancels, transactions).

`FastRoutes` is an ASGI application in front of the FastAPI application (`app.SequencerAPI`
hands it the hot requests before any middleware runs). For a `POST` to one of its paths with a
JSON body it reads the body (refusing one over the size limit with 413
`too_large`, as `BodyLimit` does), validates it with the endpoint's own pydantic model in Rust
(`model_validate_json`), calls the endpoint's own handler and answers with the response model's
JSON bytes: no routing, dependency solving, re-validation of the response or per-request objects
of FastAPI's. Everything else — other paths, a body that does not validate, a content type other
than `application/json` — goes to the FastAPI application unchanged (with the body it already
read), so error bodies and codes are exactly FastAPI's, and the routes stay declared there:
`/openapi.json` describes these endpoints with their request and response schemas as before. A
refusal is the API's one error body (`RollupError` -> its code and status), and any other
exception gets the plain 500 that Starlette's `ServerErrorMiddleware` would send, then goes up to
the server, as it would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sequencer.stf.errors import RollupError


@dataclass(frozen=True)
class FastRoute:
    """A hot endpoint: its request model and its handler (the one its FastAPI route calls, or
    one that gives the same answer already encoded as JSON bytes)."""

    request: type[BaseModel]
    handler: Callable[[Any], Awaitable[BaseModel | bytes]]


ErrorResponse = Callable[[str, str], JSONResponse]
"""Builds the API's one error body (`app.error_response`)."""

_JSON_HEADERS = b"application/json"


class FastRoutes:
    """ASGI application answering `routes` (path -> `FastRoute`) itself, anything else with
    `app` (see the module doc)."""

    def __init__(
        self, app: ASGIApp, routes: dict[str, FastRoute], limit: int, error_response: ErrorResponse
    ) -> None:
        self.app = app
        self.routes = routes
        self.limit = limit
        self.error_response = error_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self.routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        json_body = False
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._too_large(scope, receive, send)
                return
            if name == b"content-type":
                json_body = value == _JSON_HEADERS
        body = await read_body(receive, self.limit)
        if body is None:
            await self._too_large(scope, receive, send)
            return
        request = None
        if json_body and body:
            try:
                request = route.request.model_validate_json(body)
            except ValidationError:
                request = None  # FastAPI answers it, with its own error body
        if request is None:
            await self.app(scope, replay(body, receive), send)
            return
        try:
            result = await route.handler(request)
        except RollupError as exc:
            code = getattr(exc, "code", "internal")
            await self.error_response(code, str(exc) or type(exc).__name__)(scope, receive, send)
            return
        except Exception:
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise
        content = result if isinstance(result, bytes) else result.model_dump_json().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(content)), (b"content-type", _JSON_HEADERS)],
            }
        )
        await send({"type": "http.response.body", "body": content})

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.error_response("too_large", f"body over {self.limit} bytes")(scope, receive, send)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it passes `limit` bytes (or the client left)."""
    chunks: list[bytes] = []
    seen = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return None
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
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
