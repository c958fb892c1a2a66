"""Reads through any member see the client's own writes (`sequencer.api.forward`,
`sequencer.endpoints`): every answer of a set's member names the log position its state held (a
write's, once its commit is in the log); a read asking for a position waits for the member's log
to reach it, or is refused 503 `log_behind` (and a client moves on); a header that is not a
position is refused; outside a set it changes nothing. `Endpoints` remembers the highest position
it was told and asks every read for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sequencer.api import forward
from sequencer.api.forward import Forward
from sequencer.endpoints import Endpoints, SequencersUnavailable
from tests.sequencer.test_endpoints import Member

pytestmark = pytest.mark.timeout(60)


class Node:
    """What `Forward` reads of a node: a member that leads (nothing to forward) whose log is at
    `position` (None: a sequencer on its own)."""

    def __init__(self, position: int | None) -> None:
        self.position = position
        self.member_name = "member-a"

    def forward_url(self) -> str | None:
        return None

    def log_position(self) -> int | None:
        return self.position


def app_of(member: Node) -> Forward:
    async def read(request: Request) -> JSONResponse:
        return JSONResponse({"read_at": member.position})

    async def write(request: Request) -> JSONResponse:
        assert member.position is not None
        member.position += 3  # the commit's Round (and two more entries) appended before the answer
        return JSONResponse({"ok": True})

    routes = [Route("/v1/thing", read), Route("/v1/thing", write, methods=["POST"])]
    return Forward(Starlette(routes=routes), member)


async def call(app: Forward, method: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://member") as http:
        return await http.request(method, "/v1/thing", headers=headers)


def test_forward__write_named_at_its_commit__read_waits_for_the_position_it_asks() -> None:
    member = Node(10)
    app = app_of(member)

    async def story() -> None:
        written = await call(app, "POST")
        assert written.status_code == 200 and written.headers["x-rollup-log-position"] == "13"
        member.position = 11  # a follower's log, behind the write

        async def applied() -> None:
            await asyncio.sleep(0.1)
            member.position = 13

        catching_up = asyncio.ensure_future(applied())
        read = await call(app, "GET", {"x-rollup-min-position": "13"})
        await catching_up
        assert read.status_code == 200 and read.json() == {"read_at": 13}
        assert read.headers["x-rollup-log-position"] == "13"
        older = await call(app, "GET", {"x-rollup-min-position": "2"})
        assert older.status_code == 200 and older.json() == {"read_at": 13}

    asyncio.run(story())


def test_forward__position_never_reached__503_log_behind__bad_header_400(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(forward, "MIN_POSITION_WAIT_S", 0.2)
    member = Node(5)
    app = app_of(member)

    async def story() -> None:
        behind = await call(app, "GET", {"x-rollup-min-position": "6"})
        assert behind.status_code == 503 and behind.json()["error"]["code"] == "log_behind"
        for bad in ("-1", "six", "1" * 20):
            refused = await call(app, "GET", {"x-rollup-min-position": bad})
            assert refused.status_code == 400 and refused.json()["error"]["code"] == "malformed"
        assert member.position == 5

    asyncio.run(story())


def test_forward__not_in_a_set__no_position_named_and_the_header_changes_nothing() -> None:
    app = app_of(Node(None))

    async def story() -> None:
        read = await call(app, "GET", {"x-rollup-min-position": "99"})
        assert read.status_code == 200 and "x-rollup-log-position" not in read.headers

    asyncio.run(story())


@pytest.fixture
def two_members() -> Iterator[tuple[Member, Member]]:
    behind, ahead = Member(503, "log_behind", position=4), Member(200, position=40)
    yield behind, ahead
    behind.close()
    ahead.close()


def test_endpoints__reads_ask_for_the_highest_position_told__a_member_behind_is_passed_by(
    two_members: tuple[Member, Member],
) -> None:
    behind, ahead = two_members
    endpoints = Endpoints([ahead.url, behind.url])
    try:
        assert endpoints.get("/v1/status").status_code == 200 and ahead.asked == [None]  # nothing told yet
        assert endpoints.post("/v1/transactions", json={}).status_code == 200 and endpoints.position == 40
        assert ahead.asked == [None, None]  # writes ask for nothing
        endpoints.current = 1  # the next request goes to the member behind first
        assert endpoints.get("/v1/status").status_code == 200
        assert behind.asked == ["40"] and ahead.asked == [None, None, "40"]
        assert endpoints.url == ahead.url and endpoints.position == 40  # a lower position is never taken
    finally:
        endpoints.close()


def test_endpoints__no_member_holds_the_position__forgotten_and_read_again_without_it(
    two_members: tuple[Member, Member],
) -> None:
    behind, _ = two_members
    endpoints = Endpoints([behind.url], rounds=1)
    try:
        endpoints.position = 40  # told by a set whose log this one is not (started afresh, say)
        with pytest.raises(SequencersUnavailable):  # this member is behind whatever it is asked
            endpoints.get("/v1/status")
        assert behind.asked == ["40", None] and endpoints.position == 0
    finally:
        endpoints.close()
