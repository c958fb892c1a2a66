"""Fair admission at the API's door (`sequencer.fairness`): `Gate`, the outermost middleware,
takes each write request's share from its client before anything reads its body, and refuses it
(429 `rate_limited`, `Retry-After`) when the client is over its rate or penalized for bad
signatures; a refused request's signature is never recovered. The protocol that answers single
orders (`sequencer.api.direct`) does the same for its own requests.

`errors.blame` is called where a refusal for a bad signature is answered, in the request's own
task (`errors.PENALIZE`, set here, names its client), and penalizes that client.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from starlette.types import ASGIApp, Receive, Scope, Send

from sequencer.api.errors import PENALIZE, refusal
from sequencer.errors import RateLimited
from sequencer.fairness import Fairness

CANCEL_PATH = "/v1/orders/cancel"
"""Cancels pay no rate (`Fairness.admit`): a trader can always take its orders off the book."""


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The request's `content-length`, if it gives a valid one."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class Gate:
    """ASGI middleware: every `POST` (every write) pays its body's size from its client's share
    (`Fairness.admit`; a body without `content-length` pays a whole burst), or is refused."""

    def __init__(self, app: ASGIApp, fairness: Fairness) -> None:
        self.app = app
        self.fairness = fairness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or scope["method"] != "POST" or client is None:
            await self.app(scope, receive, send)
            return
        client = tuple(client)
        fairness = self.fairness
        size = content_length(scope["headers"])
        try:
            cost = fairness.limits.burst_bytes if size is None else size
            fairness.admit(client, cost, cancel=scope["path"] == CANCEL_PATH)
        except RateLimited as exc:
            await refusal(exc)(scope, receive, send)
            return
        token = PENALIZE.set(partial(fairness.bad_signature, client))
        try:
            await self.app(scope, receive, send)
        finally:
            PENALIZE.reset(token)
