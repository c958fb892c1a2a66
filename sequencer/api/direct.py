"""Single orders and cancels answered inside the HTTP server's protocol, without an ASGI task.

Why it exists: under load a turn of the event loop lasts milliseconds, and an ASGI request task
costs a single order two of them (it starts one turn after the request was read, and resumes one
turn after the admission round answered it), so answering in the protocol is what keeps a
trader's acknowledgement time low. For `POST /v1/orders` and `POST /v1/orders/cancel`,
`DirectProtocol` (uvicorn's httptools protocol, extended) does it all in callbacks: when the
request's body is complete, it validates it with its route's own request model, hands it to the
node (`DirectRoute.start`: the signature worker, the admission queue), and the admission round
that admits it calls back with the answer (`sequencer.api.answers`: the bytes the route sends),
which is written to the connection there and then (on a set's leader, with the log position
the application's answers name, `sequencer.api.forward`).

What the protocol does not take is served exactly as before, by the ASGI application: other paths
and methods, a body without `content-length` or over the size limit (which the application
refuses, `sequencer.api.body`), a content type other than `application/json`, `Expect:
100-continue`, and a body that does not validate (the application answers it with its own error
body). What it takes is answered with the bytes the application sends (the same answers and
error bodies, uvicorn's status line and default headers, `connection: close` when the request
asked for it): `tests/sequencer/test_api_direct.py` compares them.

Pipelined requests keep their order: the protocol's request counts as the connection's current
request, so uvicorn queues what follows it until its answer is written. As uvicorn's own answers
do, an answer waits while the connection's write buffer is over its high-water mark (a client
that does not read its answers gets no more of them, and no more of its requests are read); a
request refused before it was queued (`NotReady`, `Overloaded`) is answered in the next turn of
the loop, not inside the read that parsed it, so that a long pipeline of refusals is answered
one by one instead of recursively.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from contracts.http_api import INTERNAL_MESSAGE
from contracts.logs import get_logger
from sequencer.api.answers import Reply
from sequencer.api.body import MAX_BODY_BYTES
from sequencer.api.errors import error_response, refusal
from sequencer.api.forward import LOG_POSITION
from sequencer.api.gate import CANCEL_PATH
from sequencer.errors import RateLimited
from sequencer.fairness import Fairness
from sequencer.stf.errors import BadSignature, RollupError

log = get_logger("api")


@dataclass(frozen=True)
class DirectRoute:
    """A route answered in the protocol: its request model, and `start(request, reply)`, which
    must not block: it queues the work and arranges for `reply` to be called with the answer
    (or raises a `RollupError` at once)."""

    request: type[BaseModel]
    """The request model of the endpoint's FastAPI route."""
    start: Callable[[Any, Reply], None]


_JSON = b"application/json"


def direct_protocol(
    routes: dict[str, DirectRoute],
    limit: int,
    fairness: Fairness | None = None,
    local: Callable[[], bool] = lambda: True,
    position: Callable[[], int | None] = lambda: None,
) -> type[DirectProtocol]:
    """The protocol class for uvicorn's `http=` setting, answering `routes` (path -> route) on
    `POST` with a JSON body of at most `limit` bytes (module docstring), each request first paying
    its client's share to `fairness` (if given), while `local()` (a set's member that does not
    lead leaves them to the application, which forwards them to the leader); each answer names
    the log position `position()` gives when it is written (none when None)."""

    class Configured(DirectProtocol):
        pass

    Configured.routes = routes
    Configured.limit = limit
    Configured.fairness = fairness
    Configured.local = staticmethod(local)
    Configured.position = staticmethod(position)
    return Configured


class DirectProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol answering `routes` itself (module docstring)."""

    routes: dict[str, DirectRoute] = {}
    limit = MAX_BODY_BYTES
    """The body limit: a larger body is the application's to refuse."""
    answered = 0
    """Requests this class answered itself (not the application) so far."""
    fairness: Fairness | None = None
    """Each client's share (`sequencer.fairness`), taken before a request's body is validated."""
    local: Callable[[], bool] = staticmethod(lambda: True)
    """Whether this node answers writes itself now (else the application forwards them)."""
    position: Callable[[], int | None] = staticmethod(lambda: None)
    """The set's log position an answer names (`x-rollup-log-position`); None: not in a set."""

    _direct: tuple[RequestResponseCycle, Any, DirectRoute] | None = None
    """The request waiting for the rest of its body: its cycle, the ASGI app, its route."""
    _held: tuple[RequestResponseCycle, bytes | BaseException] | None = None
    """An answer waiting for the write buffer to drain."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        route = self._route(cycle, app)
        if route is None:
            super()._start_asgi_task(cycle, app)
        elif cycle.more_body:
            self._direct = (cycle, app, route)  # started once the body is complete
        else:
            self._run(cycle, app, route)

    def _route(self, cycle: RequestResponseCycle, app: Any) -> DirectRoute | None:
        scope = cycle.scope
        if scope["method"] != "POST" or app is not self.app:  # (not the 503 of a concurrency limit)
            return None
        if not self.local():
            return None
        route = self.routes.get(scope["path"])
        if route is None or cycle.waiting_for_100_continue:
            return None
        length = content_type = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"transfer-encoding":
                return None
        if content_type != _JSON or length is None or not length.isdigit():
            return None
        # (over uvicorn's high-water mark it stops reading until the application reads the body)
        if not 0 < int(length) <= min(self.limit, HIGH_WATER_LIMIT):
            return None
        return route

    def on_message_complete(self) -> None:
        super().on_message_complete()
        waiting = self._direct
        if waiting is not None and not waiting[0].more_body:
            self._direct = None
            self._run(*waiting)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.fairness is not None and self.client is not None:
            self.fairness.connected(self.client)  # its share dates from now (`Fairness.connected`)

    def connection_lost(self, exc: Exception | None) -> None:
        self._direct = None
        self._held = None
        if self.fairness is not None and self.client is not None:
            self.fairness.forget(self.client)  # its port may be a new client's next
        super().connection_lost(exc)

    def resume_writing(self) -> None:
        super().resume_writing()
        held = self._held
        if held is not None and not self.flow.write_paused:
            self._held = None
            self._reply(*held)

    def _run(self, cycle: RequestResponseCycle, app: Any, route: DirectRoute) -> None:
        fairness = self.fairness
        if fairness is not None and self.client is not None:
            try:
                fairness.admit(self.client, len(cycle.body), cancel=cycle.scope["path"] == CANCEL_PATH)
            except RateLimited as exc:  # before anything reads the body (`sequencer.api.gate`)
                self.loop.call_soon(self._reply, cycle, exc)
                return
        try:
            request = route.request.model_validate_json(cycle.body)
        except ValidationError:  # FastAPI answers it, with its own error body
            super()._start_asgi_task(cycle, app)
            return
        try:
            route.start(request, lambda answer: self._reply(cycle, answer))
        except Exception as exc:  # refused before it was queued: answered next turn (module doc)
            self.loop.call_soon(self._reply, cycle, exc)

    def _reply(self, cycle: RequestResponseCycle, answer: bytes | BaseException) -> None:
        """Write the answer (the application's bytes) and finish the request as uvicorn does."""
        if self.flow.write_paused and not self.transport.is_closing():
            self._held = (cycle, answer)  # written by `resume_writing`
            return
        close = not cycle.keep_alive
        if isinstance(answer, bytes):
            status, headers, body = (
                200,
                [(b"content-length", b"%d" % len(answer)), (b"content-type", _JSON)],
                answer,
            )
        else:
            response: Response
            if isinstance(answer, RollupError):
                if isinstance(answer, BadSignature) and self.fairness is not None and self.client:
                    self.fairness.bad_signature(self.client)
                response = refusal(answer)
                if isinstance(answer, RateLimited) and answer.close:
                    close = True
                    cycle.keep_alive = False  # (so `connection: close` is written below)
            else:
                # as in the application: its 500 `internal`, and uvicorn then closes the connection
                log.error("direct_route_failed", path=cycle.scope["path"], error=repr(answer))
                response = error_response("internal", INTERNAL_MESSAGE)
                close = True
            status, body = response.status_code, bytes(response.body)
            headers = [(n, v) for n, v in response.raw_headers if n != b"connection"]
        type(self).answered += 1
        cycle.response_started = True
        cycle.response_complete = True
        if cycle.disconnected or self.transport.is_closing():
            return  # the client went away; the order was admitted all the same
        at = self.position()
        if at is not None:
            headers.append((LOG_POSITION, b"%d" % at))
        content = [STATUS_LINE[status]]
        for name, value in [*cycle.default_headers, *headers]:
            content += [name, b": ", value, b"\r\n"]
        if not cycle.keep_alive:
            content.append(b"connection: close\r\n")
        content += [b"\r\n", body]
        self.transport.write(b"".join(content))
        if close:
            self.transport.close()
        cycle.message_event.set()
        cycle.on_response()
