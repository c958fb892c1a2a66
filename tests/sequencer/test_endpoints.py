"""Clients of a sequencer set with several URLs (`sequencer.endpoints`): the SDK, `rollup trade`,
the oracle feed and the liquidator move on from a member that is down, drops the connection, or
answers that it cannot serve now (503 `not_leader`, `not_ready`, ...; 421), to a real node served
on 127.0.0.1; they stay with the member that answered; a refusal is the set's answer and is not
sent elsewhere; when no member serves they raise one typed error naming each URL's failure; and
a write whose answer was lost, sent again to another member, is placed once."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from exchange_fixtures import BTC, CONFIG, ETH, TRADERS, member_key, order, trader_key

from devnet.procs import free_port
from sequencer import trade_cli
from sequencer.client import RequestRefused, SequencersUnavailable, TraderClient, order_body
from sequencer.endpoints import parse_urls, sequencer_urls
from sequencer.liquidator import Liquidator
from sequencer.node import NodeOptions
from sequencer.oracle_feed import Committee, OracleFeed, RandomWalk
from sequencer.stf.constants import SIDE_SELL
from tests.sequencer.test_admission import exchange_net
from tests.sequencer.test_api_direct import Served
from tests.sequencer.test_api_exchange import T0

pytestmark = pytest.mark.timeout(60)


class Node:
    """A real node (the in-memory L1 of `exchange_net`: ETH and BTC listed, traders A-D funded)
    behind the sequencer's own HTTP protocol on 127.0.0.1, its loop running in a thread."""

    def __init__(self, path: Path, wall: int = T0) -> None:
        self.net = exchange_net(path, NodeOptions())
        self.net.node.l2clock.wall = lambda: wall
        self.served = Served(self.net, direct=True)
        self.url = f"http://127.0.0.1:{self.served.port}"
        self.thread = threading.Thread(target=self.net.loop.run_forever, daemon=True)
        self.thread.start()

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=10).json()

    def close(self) -> None:
        self.net.loop.call_soon_threadsafe(self.net.loop.stop)
        self.thread.join(10)
        self.served.close()
        self.net.close()


class Member:
    """A small real HTTP server on 127.0.0.1 standing for a member that cannot serve: it answers
    every request with `status` and the API's error body for `code`; with `status` 0 it closes
    the connection without answering, after passing the request on to `relay_to` if given (a
    member that took the write, and whose answer was lost), and with `hang` only once it is
    closed (the client times out first). With `position`, its answers name that log position
    (status 200 answers `{"ok": true}`); `asked` records each request's `x-rollup-min-position`."""

    def __init__(
        self,
        status: int = 0,
        code: str = "",
        relay_to: str | None = None,
        hang: bool = False,
        position: int | None = None,
    ) -> None:
        self.hits = 0
        self.asked: list[str | None] = []
        self.released = threading.Event()
        member = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                member.hits += 1
                member.asked.append(self.headers.get("x-rollup-min-position"))
                if relay_to is not None:
                    headers = {"content-type": "application/json"}
                    httpx.request(self.command, relay_to + self.path, content=body, headers=headers)
                if status == 0:
                    if hang:
                        member.released.wait(10)
                    self.close_connection = True
                    return
                error = {"error": {"code": code, "message": f"{code} here"}}
                payload = json.dumps({"ok": True} if status == 200 else error).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                if position is not None:
                    self.send_header("x-rollup-log-position", str(position))
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node(tmp_path / "node.sqlite")
    yield n
    n.close()


@pytest.fixture
def members() -> Iterator[Callable[..., Member]]:
    started: list[Member] = []

    def start(status: int = 0, code: str = "", relay_to: str | None = None, hang: bool = False) -> Member:
        started.append(Member(status, code, relay_to, hang))
        return started[-1]

    yield start
    for m in started:
        m.close()


def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


def test_sdk__down_not_leader_misdirected__moves_on_to_the_node_and_stays_with_it(
    node: Node, members: Callable[..., Member]
) -> None:
    not_leader, misdirected = members(503, "not_leader"), members(421, "misdirected")
    urls = [dead_url(), not_leader.url, misdirected.url, node.url]
    trader = TraderClient(urls, trader_key(0), CONFIG)
    assert [m["id"] for m in trader.markets()] == [ETH, BTC]
    assert trader.url == node.url and (not_leader.hits, misdirected.hits) == (1, 1)
    placed = trader.place(order(0, ETH, SIDE_SELL, 100, 50))  # the node answered last: asked first
    assert (placed.status, placed.resting) == ("resting", 50)
    assert int(trader.account()["pending_nonce"]) == 0
    assert (not_leader.hits, misdirected.hits) == (1, 1)
    trader.close()


def test_sdk__answer_lost__sent_again_to_another_member__one_order_one_transfer_one_cancel(
    node: Node, members: Callable[..., Member], request: pytest.FixtureRequest
) -> None:
    lossy = members(relay_to=node.url)  # takes the request to the node, then drops the answer

    def client() -> TraderClient:  # a new one each time, so that it asks the lossy member first
        made = TraderClient([lossy.url, node.url], trader_key(0), CONFIG)
        request.addfinalizer(made.close)
        return made

    signed = order(0, ETH, SIDE_SELL, 100, 50)
    placed = client().place(signed)
    assert lossy.hits == 1 and (placed.status, placed.resting) == ("resting", 50)
    again = httpx.post(node.url + "/v1/orders", json=order_body(signed)).json()
    assert again["known"] is True and again["digest"] == placed.digest
    assert node.get("/v1/markets/0/book")["asks"] == [{"price": 100, "size": 50}]
    assert [o["digest"] for o in node.get(f"/v1/accounts/0x{TRADERS[0].hex()}")["open_orders"]] == [
        placed.digest
    ]

    before = int(node.get(f"/v1/accounts/0x{TRADERS[0].hex()}")["pending_collateral"])
    ack = client().transfer(TRADERS[1], 1_000, nonce=0)
    assert lossy.hits == 2
    account = node.get(f"/v1/accounts/0x{TRADERS[0].hex()}")
    assert (account["pending_nonce"], int(account["pending_collateral"])) == (1, before - 1_000)
    assert node.get(f"/v1/transactions/{ack.hash}")["status"] == "pending"

    cancelled = client().cancel(signed)
    assert lossy.hits == 3 and cancelled["was_resting"] is False  # the lost answer said it was
    assert node.get("/v1/markets/0/book")["asks"] == []
    assert node.get(f"/v1/accounts/0x{TRADERS[0].hex()}")["open_orders"] == []


def test_sdk__timed_out_after_the_member_took_the_order__placed_again_on_another__one_order(
    node: Node, members: Callable[..., Member]
) -> None:
    slow = members(relay_to=node.url, hang=True)
    signed = order(1, ETH, SIDE_SELL, 101, 20)
    with TraderClient([slow.url, node.url], trader_key(1), CONFIG, timeout=0.3) as trader:
        placed = trader.place(signed)
    assert slow.hits == 1 and (placed.status, placed.resting) == ("resting", 20)
    assert node.get("/v1/markets/0/book")["asks"] == [{"price": 101, "size": 20}]
    with (
        TraderClient(slow.url, trader_key(1), CONFIG, timeout=0.3, rounds=1) as alone,
        pytest.raises(SequencersUnavailable) as caught,
    ):
        alone.markets()
    assert [(f.code, f.status) for f in caught.value.failures] == [("timeout", None)]


def test_sdk__no_member_serves__typed_error_names_every_url_after_bounded_rounds(
    members: Callable[..., Member],
) -> None:
    dead, not_ready, misdirected = dead_url(), members(503, "not_ready"), members(421, "misdirected")
    with (
        TraderClient([dead, not_ready.url, misdirected.url], trader_key(0), CONFIG, rounds=2) as trader,
        pytest.raises(SequencersUnavailable) as caught,
    ):
        trader.markets()
    exc = caught.value
    assert isinstance(exc, RequestRefused) and (exc.status, exc.code) == (503, "sequencers_unavailable")
    assert [(f.url, f.code, f.status) for f in exc.failures] == [
        (dead, "unreachable", None),
        (not_ready.url, "not_ready", 503),
        (misdirected.url, "misdirected", 421),
    ]
    assert all(url in str(exc) for url in (dead, not_ready.url, misdirected.url))
    assert (not_ready.hits, misdirected.hits) == (2, 2)  # every URL once per round

    l1_away = [members(503, "l1_unavailable") for _ in range(2)]
    with (
        TraderClient([m.url for m in l1_away], trader_key(0), CONFIG, rounds=1) as trader,
        pytest.raises(SequencersUnavailable) as caught,
    ):
        trader.account()
    assert caught.value.code == "l1_unavailable"  # what every member said


def test_sdk__a_refusal_is_the_sets_answer__not_sent_to_another_member(
    node: Node, members: Callable[..., Member]
) -> None:
    other = members(503, "not_leader")
    with (
        TraderClient([node.url, other.url], trader_key(0), CONFIG) as trader,
        pytest.raises(RequestRefused) as caught,
    ):
        trader.place(order(0, ETH, SIDE_SELL, 100, 15))  # off the lot
    assert (caught.value.status, caught.value.code) == (400, "size_off_lot")
    full, spare = members(503, "overloaded"), members(503, "not_leader")
    with (
        TraderClient([full.url, spare.url], trader_key(0), CONFIG) as trader,
        pytest.raises(RequestRefused) as caught,
    ):
        trader.markets()
    assert not isinstance(caught.value, SequencersUnavailable) and caught.value.code == "overloaded"
    assert (other.hits, spare.hits) == (0, 0)


def test_parse_urls__comma_separated_and_repeated__in_order_without_repeats() -> None:
    a, b, c = "http://127.0.0.1:8600", "http://127.0.0.1:8601", "https://seq.example"
    assert parse_urls(a + "/") == (a,)
    assert parse_urls([f"{a}, {b}/", c, b]) == (a, b, c)
    for bad in ("", " , ", "127.0.0.1:8600", [a, "ftp://x"]):
        with pytest.raises(ValueError):
            parse_urls(bad)
    args = trade_cli._parser().parse_args(["--sequencer", f"{a},{b}", "--sequencer", c, "markets"])
    assert sequencer_urls(args) == (a, b, c)
    assert sequencer_urls(trade_cli._parser().parse_args(["markets"])) == ("http://127.0.0.1:8600",)
    with pytest.raises(SystemExit):
        trade_cli._parser().parse_args(["--sequencer", "127.0.0.1:8600", "markets"])


def test_trade_cli__several_sequencers__reads_the_domain_and_trades_on_the_one_that_serves(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "0x" + trader_key(1).hex()
    trade_cli.main(
        ["--sequencer", dead_url(), "--sequencer", node.url, "--key", key, "sell", "0", "100", "30"]
    )
    placed = orjson.loads(capsys.readouterr().out)
    assert (placed["status"], placed["resting"]) == ("resting", 30)  # signed for the node's domain
    dead = dead_url()
    with pytest.raises(SystemExit) as exited:
        trade_cli.main(["--sequencer", dead, "--key", key, "markets"])
    error = orjson.loads(capsys.readouterr().out)["error"]
    assert exited.value.code == 1 and error["code"] == "unreachable" and dead in error["message"]


def test_oracle_feed__first_member_down__update_acknowledged_by_the_next(tmp_path: Path) -> None:
    with contextlib.ExitStack() as held:  # the feeds' connections close before the node stops
        node = Node(tmp_path / "node.sqlite", wall=T0 + 5)  # a clock past the fixture's prices
        held.callback(node.close)
        committee = Committee(tuple(member_key(i) for i in range(3)), CONFIG)
        feed = OracleFeed([dead_url(), node.url], committee, RandomWalk({ETH: 100}, step_bps=0), [ETH])
        held.callback(feed.endpoints.close)
        assert feed.step(now=T0 + 5) == [] and feed.acknowledged == 1
        assert node.get("/v1/markets")[ETH]["oracle_time"] == T0 + 5
        # a wall clock ahead of the sequencer's batch clock: prices timed at the batch clock
        assert node.get("/v1/status")["l2_time"] == T0 + 5
        node.net.node.l2clock.wall = lambda: T0 + 8
        assert feed.step(now=T0 + 40) == [] and feed.acknowledged == 2
        assert node.get("/v1/markets")[ETH]["oracle_time"] == T0 + 8
        assert feed.step(now=T0 + 41) == [] and feed.acknowledged == 2  # nothing newer to sign
        nowhere = OracleFeed(dead_url(), committee, RandomWalk({ETH: 100}), [ETH])
        held.callback(nowhere.endpoints.close)
        assert nowhere.step(now=T0 + 6) == ["unreachable"]
        assert [r["code"] for r in nowhere.health()["reasons"]] == ["no_update_yet", "unreachable"]


def test_liquidator__first_member_down__asks_the_next__error_when_none_serves(node: Node) -> None:
    with TraderClient([dead_url(), node.url], trader_key(3), CONFIG) as trader:
        bot = Liquidator(trader)
        assert bot.step() == 0 and bot.last_error is None and bot.health()["ok"]
    dead = dead_url()
    with TraderClient(dead, trader_key(3), CONFIG, rounds=1) as trader:
        alone = Liquidator(trader)
        assert alone.step() == 0 and alone.last_error is not None and dead in alone.last_error
        assert [r["code"] for r in alone.health()["reasons"]] == ["sequencer_unavailable"]
