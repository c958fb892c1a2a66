"""Writes sent to a member of the sequencer set that does not lead go to the leader: `Forward`
sends the request (its path, query and body, unchanged) to the leader's URL and answers with the
leader's answer (status, body, `content-type`, `retry-after`), so a client that knows one member
keeps working. A forwarded request carries `x-rollup-forwarded` (the forwarding member's name) and
is never forwarded again: a member that receives one and does not lead answers `not_leader` itself.
When no leader is known, or it does not answer, the member answers `not_leader` itself (the
client may try another member). Reads are always answered by the member that got them, with
`x-rollup-log-position`: the position of the set's log its state held then; a write's answer
carries the position its commit is at (or beyond), the leader's even when relayed.

A read may ask for a state at least as new as a position it names (`x-rollup-min-position`,
e.g. the position of the client's last write): a member behind it waits up to
`MIN_POSITION_WAIT_S` for its log to get there, and otherwise answers 503 `log_behind` (the
client may ask another member). So a client reads its own writes through any member.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.logs import get_logger
from sequencer.api.errors import refusal
from sequencer.errors import LogBehind, Malformed, NotLeader
from sequencer.stf.errors import RollupError

log = get_logger("api")

FORWARDED = b"x-rollup-forwarded"
LOG_POSITION = b"x-rollup-log-position"
"""On every read of a set's member: the position of the set's log its state held when it answered."""
MIN_POSITION = b"x-rollup-min-position"
"""On a read: answer from a state holding at least this position of the set's log."""
MIN_POSITION_WAIT_S = 2.0
"""Longest a read waits for this member's log to reach the position it asks for."""
FORWARD_TIMEOUT_S = 10.0
_KEPT = (b"content-type", b"retry-after", LOG_POSITION)
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
            refused = await self._reach(_header(scope, MIN_POSITION))
            if refused is not None:
                await refusal(refused)(scope, receive, send)
                return
            position = self.node.log_position()
            await self.app(scope, receive, send if position is None else _stamped(send, lambda: position))
            return
        leader = self.node.forward_url()
        if leader is None or any(name == FORWARDED for name, _ in scope["headers"]):
            # it leads, or no one to forward to: answered here, with the position once answered
            # (a leader answers a commit once its Round is in the log)
            in_set = self.node.log_position() is not None
            await self.app(scope, receive, _stamped(send, self.node.log_position) if in_set else send)
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

    async def _reach(self, wanted: str | None) -> RollupError | None:
        """Wait (at most `MIN_POSITION_WAIT_S`) until this member's state holds the log position a
        read asks for; the refusal to answer with if it does not (or the header is not a
        position). Outside a set the header is ignored: there is no log to be behind."""
        if wanted is None:
            return None
        if not wanted.isdigit() or len(wanted) > 19:
            return Malformed(f"{MIN_POSITION.decode()} is not a log position: {wanted!r}")
        target = int(wanted)
        position = self.node.log_position()
        if position is None or position >= target:
            return None
        deadline = time.monotonic() + MIN_POSITION_WAIT_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.005)
            position = self.node.log_position()
            if position is None or position >= target:
                return None
        return LogBehind(f"this member's log is at {position}, behind the position {target} asked for")


def _stamped(send: Send, position: Callable[[], int | None]) -> Send:
    """`send` with the answer's headers naming the log position (`position()` when the answer
    starts) its state held."""

    async def stamped(message: Message) -> None:
        if message["type"] == "http.response.start":
            at = position()
            if at is not None:
                value = str(at).encode()
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
