"""`LeanRoutes`: the hot endpoints without a path in the HTTP protocol (`POST /v1/transactions`,
`/v1/transactions/batch`, `/v1/orders/batch`), answered before FastAPI's routing.

Why it exists: FastAPI's work per request (matching the path against every router, solving the
dependencies, decoding the body into Python dicts and lists before validating them) is a large
share of what a single transaction costs and grows with every order of a batch, so without it a
loaded sequencer acknowledges single transactions later and accepts fewer orders per second.

It is a middleware inside the body limit (`sequencer.api.body`): a request for one of its paths
with a JSON body (`content-type: application/json`) is validated in one pass by the route's own
request model (`LeanRoute.request`, the model the FastAPI route declares) and answered with the
route's own answer (`sequencer.api.answers`); a refusal (`RollupError`) is the API's error body
(`errors.refusal`), and any other exception is left to Starlette's `ServerErrorMiddleware` (the
API's 500 `internal`) as for any route. A body that does not validate, another content type, and every
other request go on to FastAPI, which answers them as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from sequencer.api.body import read_body, replay
from sequencer.api.errors import blame, refusal
from sequencer.stf.errors import RollupError

_JSON = b"application/json"


@dataclass(frozen=True)
class LeanRoute:
    """A hot endpoint: its FastAPI route's request model, and its answer (JSON bytes)."""

    request: type[BaseModel]
    answer: Callable[[Any], Awaitable[bytes]]


class LeanRoutes:
    """ASGI middleware answering `routes` (path -> `LeanRoute`) on `POST` (module docstring)."""

    def __init__(self, app: ASGIApp, routes: dict[str, LeanRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self.routes.get(scope["path"])
        if route is None or not _json_body(scope):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)  # (within the limit: the body limit read it first)
        if body is None:  # the client went away
            await self.app(scope, receive, send)
            return
        try:
            request = route.request.model_validate_json(body)
        except ValidationError:  # FastAPI answers it, with its own error body
            await self.app(scope, replay(body, receive), send)
            return
        try:
            content = await route.answer(request)
        except RollupError as exc:
            blame((exc,))
            await refusal(exc)(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(content)), (b"content-type", _JSON)],
            }
        )
        await send({"type": "http.response.body", "body": content})


def _json_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value == _JSON)
    return False
