"""Several URLs of one sequencer set, and moving on when one cannot serve.

Any member of the set takes requests (a follower forwards writes to the leader and relays the
answer), so a client that knows several members' URLs keeps working while one of them is down,
cut off or changing roles. `Endpoints` sends each request to the member that answered last; on a
connection error, a timeout, or an answer meaning "this member cannot serve now" (HTTP 503 with
one of `MOVE_ON_CODES`, or 421 Misdirected Request) it tries the next URL, for at most `rounds`
rounds over every URL with a short backoff between rounds, and then raises `SequencersUnavailable`
naming each URL's last failure. Any other answer, a refusal (4xx) included, is the set's answer
and is returned as it is.

Retrying a write on another member is safe: every write is idempotent by construction. An order
is known by its digest, a cancel by its order (its Cancel transaction's hash), a bundle by its
digest, any other transaction by its hash; the same signed bytes sent again are answered with
where the first one stands (`known: true`, or the first acknowledgement) and nothing is placed
twice. So when a member took an order and its answer was lost (a timeout, a dropped connection),
sending it again to another member gets that order's answer, and the book holds it once. The
second answer of a cancel says `was_resting: false` (the first one took the order out).

Reads see the client's own writes, through whichever member answers them: every answer of a
set's member names the position of the set's log its state held (`x-rollup-log-position`; a
write's, the position its commit is at or beyond); `Endpoints` remembers the highest it was told
and asks each read for a state at least that new (`x-rollup-min-position`). A member behind it
waits a little for its log, then answers 503 `log_behind`, and the read moves on. When every
member answers `log_behind` the position is not one of this set's log (the leader holds every
position it gave out; a set started afresh, or another set): the client forgets it and reads
again.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sequencer.stf.errors import RollupError

DEFAULT_URL = "http://127.0.0.1:8600"
"""The devnet's first sequencer: the command lines' default."""

MOVE_ON_CODES = frozenset({"not_ready", "not_leader", "l1_unavailable", "cluster_unavailable", "log_behind"})
"""Codes of 503 answers that say this member cannot serve now (still catching up, not the leader
and unable to forward, its L1 or the set's log away, its log behind what the read asked for):
another member may. `overloaded` is not one of them: it is the set's back-pressure (the leader's
queue), the same through any member."""

LOG_POSITION = "x-rollup-log-position"
"""The header naming the position of the set's log a member's answer was given at."""
MIN_POSITION = "x-rollup-min-position"
"""The header asking a read for a state holding at least this position of the set's log."""

MISDIRECTED = 421
"""HTTP 421 Misdirected Request: this member does not serve the request; another may."""


class RequestRefused(RollupError):
    """The sequencer refused a request; `code` is its machine-readable error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def refusal_of(response: httpx.Response) -> RequestRefused:
    """The refusal an error answer carries (`{"error": {"code", "message"}}`, docs/protocol.md
    section 9); code `http` when the body is not that."""
    try:
        err = response.json()["error"]
        return RequestRefused(response.status_code, str(err["code"]), str(err["message"]))
    except (ValueError, KeyError, TypeError):
        return RequestRefused(response.status_code, "http", response.text)


@dataclass(frozen=True)
class EndpointFailure:
    """Why one URL did not serve a request."""

    url: str
    code: str
    """The member's refusal code, `unreachable` (no connection, or it closed without answering)
    or `timeout`."""
    status: int | None
    """The HTTP status of its answer; None when there was none."""
    message: str

    def __str__(self) -> str:
        status = "" if self.status is None else f"{self.status} "
        return f"{self.url}: {status}{self.code} ({self.message})"


class SequencersUnavailable(RequestRefused):
    """No URL of the set served a request within the rounds allowed; `failures` holds each URL's
    last failure. `code` is the code every URL failed with when they agree (e.g. `l1_unavailable`
    when the set's L1 is away, `unreachable` when no member is up), else
    `sequencers_unavailable`; `status` is 503."""

    def __init__(self, failures: Sequence[EndpointFailure], rounds: int) -> None:
        codes = {f.code for f in failures}
        code = codes.pop() if len(codes) == 1 else "sequencers_unavailable"
        listed = "; ".join(str(f) for f in failures)
        super().__init__(503, code, f"no sequencer served the request in {rounds} round(s): {listed}")
        self.failures = tuple(failures)


def parse_urls(urls: str | Iterable[str]) -> tuple[str, ...]:
    """Sequencer URLs from one URL, a comma-separated list, or several of either (as repeated
    command-line flags give them): trailing slashes dropped, repeats removed, order kept. Raises
    `ValueError` for an empty list or a URL that is not http(s)."""
    items = [urls] if isinstance(urls, str) else list(urls)
    out: dict[str, None] = {}
    for item in items:
        for part in item.split(","):
            url = part.strip().rstrip("/")
            if not url:
                continue
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"sequencer URL {url!r} is not http:// or https://")
            out[url] = None
    if not out:
        raise ValueError("no sequencer URL given")
    return tuple(out)


def add_sequencer_argument(parser: argparse.ArgumentParser) -> None:
    """`--sequencer URL[,URL...]`, which may be repeated: members of one set, tried in the order
    given (`sequencer_urls` reads them back)."""
    parser.add_argument(
        "--sequencer",
        action="append",
        type=_checked_urls,
        metavar="URL[,URL...]",
        help=f"sequencer URL; repeat it or list several, comma-separated (default {DEFAULT_URL})",
    )


def sequencer_urls(args: argparse.Namespace) -> tuple[str, ...]:
    """The URLs `--sequencer` gave (`add_sequencer_argument`), or the default one."""
    return parse_urls(args.sequencer or DEFAULT_URL)


def _checked_urls(text: str) -> str:
    try:
        parse_urls(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


class Endpoints:
    """Sends requests to one sequencer set through several URLs, moving on when one cannot serve
    (module docstring). `rounds` bounds the tries (each round tries every URL once) and the
    backoff before round `r + 1` is `backoff_s * 2**r`."""

    def __init__(
        self,
        urls: str | Iterable[str],
        *,
        timeout: float = 10.0,
        rounds: int = 3,
        backoff_s: float = 0.1,
        http: httpx.Client | None = None,
    ) -> None:
        if rounds < 1:
            raise ValueError("rounds must be at least 1")
        self.urls = parse_urls(urls)
        self.rounds = rounds
        self.backoff_s = backoff_s
        self.http = http if http is not None else httpx.Client(timeout=timeout)
        self.current = 0
        """Index of the URL that answered last (the first one until then)."""
        self.position = 0
        """The highest position of the set's log an answer named (0: none did, or no set)."""

    @property
    def url(self) -> str:
        """The URL that answered last: where the next request goes first."""
        return self.urls[self.current]

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send `method path` (`kwargs` as `httpx.Client.request` takes them) to the member that
        answered last, moving on as the module docstring says; returns the first answer that is
        not "cannot serve now", whatever its status. A read asks for a state at least as new as
        every answer so far. Raises `SequencersUnavailable`."""
        if method == "GET" and self.position:
            asked = {**kwargs, "headers": {**(kwargs.get("headers") or {}), MIN_POSITION: str(self.position)}}
            try:
                return self._send(method, path, asked)
            except SequencersUnavailable as exc:
                if exc.code != "log_behind":
                    raise
                self.position = 0  # no member holds it: not this set's log (module docstring)
        return self._send(method, path, kwargs)

    def _send(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        last: dict[str, EndpointFailure] = {}
        n = len(self.urls)
        for round_ in range(self.rounds):
            if round_:
                time.sleep(self.backoff_s * 2 ** (round_ - 1))
            start = self.current
            for step in range(n):
                i = (start + step) % n
                url = self.urls[i]
                try:
                    response = self.http.request(method, url + path, **kwargs)
                except httpx.TimeoutException as exc:
                    last[url] = EndpointFailure(url, "timeout", None, _describe(exc))
                    continue
                except httpx.TransportError as exc:
                    last[url] = EndpointFailure(url, "unreachable", None, _describe(exc))
                    continue
                failure = _cannot_serve(url, response)
                if failure is not None:
                    last[url] = failure
                    continue
                self.current = i
                self._note_position(response)
                return response
        raise SequencersUnavailable([last[u] for u in self.urls], self.rounds)

    def _note_position(self, response: httpx.Response) -> None:
        at = response.headers.get(LOG_POSITION, "")
        if at.isdigit():
            self.position = max(self.position, int(at))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """`request("GET", ...)`."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """`request("POST", ...)`."""
        return self.request("POST", path, **kwargs)


def _cannot_serve(url: str, response: httpx.Response) -> EndpointFailure | None:
    """The failure an answer means when it says "this member cannot serve now"; None otherwise."""
    if response.status_code not in (503, MISDIRECTED):
        return None
    refusal = refusal_of(response)
    if response.status_code == 503 and refusal.code not in MOVE_ON_CODES:
        return None
    return EndpointFailure(url, refusal.code, response.status_code, refusal.message)


def _describe(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
