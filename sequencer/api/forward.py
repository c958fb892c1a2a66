"""Writes sent to a member of the sequencer set that does not lead go to the leader: `Forward`
sends the request (its path, query and body, unchanged) to the leader's URL and answers with the
leader's answer (status, body, `content-type`, `retry-after`), so a client that knows one member
keeps working. A forwarded request carries `x-rollup-forwarded` (the forwarding member's name) and
is never forwarded again: a member that receives one and does not lead answers `not_leader` itself.
When no leader is known, or it does not answer, the member answers `not_leader` itself (the
client may try another member). Reads are always answered by the member that got them, with
`x-rollup-log-position`: the position of the set's log its state held then.
"""

from __future__ import annotations

from typing import Protocol

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.logs import get_logger
from sequencer.api.errors import refusal
from sequencer.errors import NotLeader

log = get_logger("api")

FORWARDED = b"x-rollup-forwarded"
LOG_POSITION = b"x-rollup-log-position"
"""On every read of a set's member: the position of the set's log its state held when it answered."""
FORWARD_TIMEOUT_S = 10.0
_KEPT = (b"content-type", b"retry-after")
"""The leader's answer headers passed on (uvicorn writes the others)."""


class Forwarding(Protocol):
    """What `Forward` needs from the node."""

    def forward_url(self) -> str | None:
        """The leader's URL while this node is a member of a set that does not lead; else None."""
        ...

    @property
    def member_name(self) -> str:
        """This member's name in the set."""
        ...

    def log_position(self) -> int | None:
        """The position of the set's log this member's reads answer from (None: not in a set)."""
        ...


class Forward:
    """ASGI middleware forwarding writes to the set's leader (module docstring)."""

    def __init__(self, app: ASGIApp, node: Forwarding) -> None:
        self.app = app
        self.node = node
        self._http: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST" or not scope["path"].startswith("/v1/"):
            position = self.node.log_position()
            await self.app(scope, receive, send if position is None else _stamped(send, position))
            return
        leader = self.node.forward_url()
        if leader is None or any(name == FORWARDED for name, _ in scope["headers"]):
            await self.app(scope, receive, send)  # it leads, or no one to forward to: answered here
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        url = leader.rstrip("/") + scope["path"]
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        headers = {"content-type": _header(scope, b"content-type") or "application/json"}
        headers[FORWARDED.decode()] = self.node.member_name
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S)
        try:
            answer = await self._http.post(url, content=bytes(body), headers=headers)
        except httpx.HTTPError as exc:
            log.warning("forward_failed", leader=leader, path=scope["path"], error=type(exc).__name__)
            refused = NotLeader(f"this member does not lead and the leader {leader} did not answer", leader)
            await refusal(refused)(scope, _replay(bytes(body)), send)
            return
        kept = [(k.encode(), v.encode()) for k, v in answer.headers.items() if k.encode() in _KEPT]
        await send({"type": "http.response.start", "status": answer.status_code, "headers": kept})
        await send({"type": "http.response.body", "body": answer.content})


def _stamped(send: Send, position: int) -> Send:
    """`send` with the answer's headers naming the log position it was read at."""
    value = str(position).encode()

    async def stamped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), (LOG_POSITION, value)]}
        await send(message)

    return stamped


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
