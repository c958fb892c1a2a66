"""Single orders answered inside the HTTP protocol (`sequencer.api.direct`): two identical nodes,
one served by the sequencer's protocol and one by uvicorn's plain httptools protocol (the ASGI
application alone), real servers on 127.0.0.1, raw HTTP/1.1 on the wire; every answer must be the same
bytes (the date header fixed on both), including refusals, bodies that do not validate, bodies
the protocol leaves to the application, pipelined requests and `Connection: close`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from exchange_fixtures import CONFIG, ETH, cancel, order
from uvicorn.server import ServerState

from sequencer.api import answers
from sequencer.api.app import create_app, server_protocol
from sequencer.fairness import Fairness, FairnessLimits
from sequencer.node import NodeOptions
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import order_digest
from sequencer.stf.types import Cancel
from tests.sequencer.test_admission import exchange_net
from tests.sequencer.test_api_exchange import Net, body, cancel_body

LIMIT = 16_384
DATE = (b"date", b"Mon, 23 Nov 2026 05:00:00 GMT")


class Served:
    """A node behind a real uvicorn protocol on 127.0.0.1, on the node's own loop."""

    def __init__(self, net: Net, direct: bool, fairness: Fairness | None = None) -> None:
        self.net = net
        app = create_app(net.node, max_body_bytes=LIMIT, fairness=fairness)
        http: Any = "httptools"
        if direct:
            http = server_protocol(net.node, max_body_bytes=LIMIT, fairness=fairness)
        config = uvicorn.Config(app, http=http, lifespan="off", log_level="warning", server_header=False)
        config.load()
        state = ServerState()
        state.default_headers = [DATE]

        self.connections: list[Any] = []

        def connection() -> Any:
            protocol = config.http_protocol_class(config=config, server_state=state, app_state={})
            self.connections.append(protocol)
            return protocol

        async def listen() -> asyncio.Server:
            return await asyncio.get_running_loop().create_server(connection, "127.0.0.1", 0)

        self.protocol = config.http_protocol_class
        self.server = net.loop.run_until_complete(listen())
        self.port = self.server.sockets[0].getsockname()[1]
        self.state = state

    def exchange(self, raw: bytes | list[bytes], answers: int = 1) -> tuple[list[bytes], bool]:
        """Send `raw` (or its parts, one write each, the server reading each before the next) on
        a new connection; read `answers` whole responses; whether the server closed the
        connection after them."""
        parts = [raw] if isinstance(raw, bytes) else raw

        async def go() -> tuple[list[bytes], bool]:
            this_one = len(self.connections) + 1  # the server's count once it accepted this one
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            for i, part in enumerate(parts):
                if i:
                    await self._read_by_server(this_one)
                writer.write(part)
            out = [await asyncio.wait_for(_response(reader), 10) for _ in range(answers)]
            try:
                closed = await asyncio.wait_for(reader.read(1), 0.2) == b""
            except TimeoutError:
                closed = False
            writer.close()
            return out, closed

        return self.net.loop.run_until_complete(go())

    async def _read_by_server(self, count: int) -> None:
        """Wait until the server has read the first part of a split request (its headers, and its
        body not yet whole), so that the next part arrives in a read of its own."""
        for _ in range(500):
            if len(self.connections) == count:
                cycle = self.connections[-1].cycle
                if cycle is not None and cycle.more_body:
                    return
            await asyncio.sleep(0.01)
        raise TimeoutError("the server did not read the first part")

    def close(self) -> None:
        self.server.close()
        self.net.loop.run_until_complete(self.server.wait_closed())


async def _response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


def post(payload: bytes, *, path: str = "/v1/orders", headers: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n{headers}\r\n"
    ).encode() + payload


@pytest.fixture(params=[False, True], ids=["no worker", "signature worker"])
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Served, Served]]:
    options = NodeOptions(signature_worker=request.param)
    direct, plain = (exchange_net(tmp_path / n, options) for n in ("direct.sqlite", "plain.sqlite"))
    served = Served(direct, True), Served(plain, False)
    yield served
    for s in served:
        s.close()
        s.net.loop.run_until_complete(s.net.node.close())
        s.net.close()


def same(pair: tuple[Served, Served], raw: bytes, answers: int = 1) -> list[bytes]:
    """The same bytes to both servers; the same answers back, the same connection state after."""
    direct, plain = pair
    got = direct.exchange(raw, answers)
    assert got == plain.exchange(raw, answers)
    return got[0]


def fields(answer: bytes) -> Any:
    return orjson.loads(answer.split(b"\r\n\r\n", 1)[1])


def test_direct__resting_fill_known_refused__same_bytes_as_the_asgi_path(pair: Any) -> None:
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    (resting,) = same(pair, post(orjson.dumps(body(ask))))
    assert resting.startswith(b"HTTP/1.1 200 OK\r\ndate: ") and fields(resting)["status"] == "resting"
    (filled,) = same(pair, post(orjson.dumps(body(order(1, ETH, SIDE_BUY, 101, 30)))))
    assert fields(filled)["status"] == "filled" and fields(filled)["receipt"]  # signed the same
    (known,) = same(pair, post(orjson.dumps(body(ask))))
    assert fields(known)["known"]
    (unknown_market,) = same(pair, post(orjson.dumps(body(order(1, 9, SIDE_BUY, 1, 10)))))
    assert unknown_market.startswith(b"HTTP/1.1 404")
    assert fields(unknown_market)["error"]["code"] == "unknown_market"
    forged = {**body(order(2, ETH, SIDE_BUY, 99, 10)), "trader": body(ask)["trader"]}
    (bad_signature,) = same(pair, post(orjson.dumps(forged)))
    assert fields(bad_signature)["error"]["code"] == "bad_signature"
    direct, plain = pair
    assert direct.state.total_requests == plain.state.total_requests == 5
    assert direct.protocol.answered == 5  # all of them in the protocol, none by the application


def test_direct__a_sets_leader__both_paths_name_its_log_position(pair: Any) -> None:
    for served in pair:
        served.net.node.log_position = lambda: 42  # type: ignore[method-assign]  # a set's leader's log
    (resting,) = same(pair, post(orjson.dumps(body(order(0, ETH, SIDE_SELL, 100, 50)))))
    assert fields(resting)["status"] == "resting" and b"\r\nx-rollup-log-position: 42\r\n" in resting
    (refused,) = same(pair, post(orjson.dumps(body(order(1, 9, SIDE_BUY, 1, 10)))))
    assert refused.startswith(b"HTTP/1.1 404") and b"\r\nx-rollup-log-position: 42\r\n" in refused
    assert pair[0].protocol.answered == 2


def test_direct__cancels__resting_again_forged__same_bytes_as_the_asgi_path(pair: Any) -> None:
    bid = order(1, ETH, SIDE_BUY, 99, 10)
    same(pair, post(orjson.dumps(body(bid))))
    (cancelled,) = same(pair, post(orjson.dumps(cancel_body(cancel(1, bid))), path="/v1/orders/cancel"))
    assert fields(cancelled)["was_resting"] and fields(cancelled)["receipt"]
    (again,) = same(pair, post(orjson.dumps(cancel_body(cancel(1, bid))), path="/v1/orders/cancel"))
    assert fields(again)["seq"] == fields(cancelled)["seq"]  # the same acknowledgement
    forged = Cancel(bid.order, cancel(2, order(2, ETH, SIDE_BUY, 99, 10)).sig)
    (refused,) = same(pair, post(orjson.dumps(cancel_body(forged)), path="/v1/orders/cancel"))
    assert refused.startswith(b"HTTP/1.1 400") and fields(refused)["error"]["code"] == "bad_signature"
    assert pair[0].protocol.answered == 4


def test_direct__what_it_leaves_to_the_application__same_answers(pair: Any) -> None:
    good = orjson.dumps(body(order(0, ETH, SIDE_SELL, 100, 10)))
    (invalid,) = same(pair, post(b'{"market": "x"}'))  # the application's validation error
    assert invalid.startswith(b"HTTP/1.1 400") and fields(invalid)["error"]["code"] == "malformed"
    (not_json,) = same(pair, post(good, headers="").replace(b"application/json", b"text/plain"))
    assert not_json.startswith(b"HTTP/1.1 4")
    (too_large,) = same(pair, post(b" " * (LIMIT + 1)))
    assert fields(too_large)["error"]["code"] == "too_large"
    chunked = (
        b"POST /v1/orders HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(good), good)
    )
    (streamed,) = same(pair, chunked)
    assert fields(streamed).get("status") == "resting", streamed
    (other_path,) = same(pair, post(b"{}", path="/v1/nothing"))
    assert other_path.startswith(b"HTTP/1.1 404")
    assert pair[0].protocol.answered == 0  # every one of them by the application


def test_direct__pipelined_and_connection_close__answers_in_order_then_closed(pair: Any) -> None:
    first = orjson.dumps(body(order(0, ETH, SIDE_SELL, 100, 10, salt=1)))
    second = orjson.dumps(body(order(1, ETH, SIDE_BUY, 100, 10, salt=2)))
    third = orjson.dumps(body(order(2, ETH, SIDE_SELL, 105, 10, salt=3)))
    raw = post(first) + b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n" + post(second) + post(third)
    direct, plain = pair
    got, closed = direct.exchange(raw, 4)
    expected, plain_closed = plain.exchange(raw, 4)
    assert not closed and not plain_closed
    assert [fields(a).get("status") for a in got] == ["resting", None, "filled", "resting"]
    for i in (0, 2, 3):
        assert got[i] == expected[i]  # (the status view between them carries times)
    (answer,), closed = direct.exchange(post(third, headers="connection: close\r\n"))
    assert (answer, closed) == (*plain.exchange(post(third, headers="connection: close\r\n"))[0], True)
    assert b"\r\nconnection: close\r\n" in answer and fields(answer)["known"]
    assert direct.protocol.answered == 4


def test_direct__handler_fails__500_internal_and_closed_as_on_the_asgi_path(
    pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(n: object, outcomes: object) -> object:
        raise RuntimeError("bug")

    monkeypatch.setattr(answers, "order_answer", broken)  # both paths use it
    raw = post(orjson.dumps(body(order(1, ETH, SIDE_BUY, 100, 10))))
    (answer,), closed = pair[0].exchange(raw)
    assert ([answer], closed) == (pair[1].exchange(raw)[0], True)
    assert answer.startswith(b"HTTP/1.1 500")
    assert answer.endswith(b'\r\n\r\n{"error":{"code":"internal","message":"internal error"}}')


def test_direct__node_not_synced__same_refusal_nothing_queued(pair: Any) -> None:
    for served in pair:
        served.net.node.follower.synced = False
    (refused,) = same(pair, post(orjson.dumps(body(order(0, ETH, SIDE_SELL, 100, 10)))))
    assert refused.startswith(b"HTTP/1.1 503") and fields(refused)["error"]["code"] == "not_ready"
    assert len(pair[0].net.node.intake.admission) == 0


def test_direct__client_gone_before_its_answer__order_admitted_all_the_same(pair: Any) -> None:
    direct, _ = pair
    signed = order(0, ETH, SIDE_SELL, 100, 10)
    queue = direct.net.node.intake.admission
    held: list[int] = []
    queue._round = lambda: held.append(1)  # rounds wait until the client is gone

    async def hang_up() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", direct.port)
        writer.write(post(orjson.dumps(body(signed))))
        await writer.drain()
        for _ in range(500):  # until the order is queued
            if len(queue):
                break
            await asyncio.sleep(0.01)
        writer.close()
        for _ in range(500):  # until the server saw the connection go
            if not direct.state.connections:
                break
            await asyncio.sleep(0.01)
        assert len(queue) == 1 and not direct.state.connections
        ready = queue.normal[0].ready  # its signer, from the worker (if there is one)
        for _ in range(500):
            if ready is None or ready.done():
                break
            await asyncio.sleep(0.01)
        del queue._round
        queue._running = None
        queue.run_ready()  # its round: admitted, the answer has no one to go to

    direct.net.loop.run_until_complete(hang_up())
    assert queue.rounds == 1 and direct.protocol.answered == 1
    (again,) = direct.exchange(post(orjson.dumps(body(signed))))[0]
    assert fields(again)["known"]  # the first one was admitted


def test_direct__long_pipeline_refused_at_once__every_request_answered_in_order(pair: Any) -> None:
    for served in pair:
        served.net.node.follower.synced = False
    raws = [post(orjson.dumps(body(order(0, ETH, SIDE_SELL, 100, 10, salt=i)))) for i in range(400)]
    answers = same(pair, b"".join(raws), answers=400)
    assert all(a.startswith(b"HTTP/1.1 503") for a in answers) and pair[0].protocol.answered == 400


def test_direct__http_1_0_and_a_body_split_across_reads__same_bytes(pair: Any) -> None:
    payload = orjson.dumps(body(order(0, ETH, SIDE_SELL, 100, 10)))
    old = post(payload).replace(b"HTTP/1.1\r\n", b"HTTP/1.0\r\n", 1)
    (answer,) = same(pair, old)
    assert b"\r\nconnection: close\r\n" in answer and fields(answer)["status"] == "resting"
    raw = post(orjson.dumps(body(order(1, ETH, SIDE_SELL, 101, 10))))
    (split,) = same(pair, [raw[:-20], raw[-20:]])
    assert fields(split)["status"] == "resting" and pair[0].protocol.answered == 2


def test_direct__write_buffer_full__answer_waits_until_it_drains(pair: Any) -> None:
    direct, _ = pair
    loop = direct.net.loop

    async def go() -> tuple[bytes, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", direct.port)
        writer.write(post(orjson.dumps(body(order(0, ETH, SIDE_SELL, 100, 10)))))
        for _ in range(500):
            if direct.connections:
                break
            await asyncio.sleep(0.01)
        server_side = direct.connections[-1]
        server_side.pause_writing()  # as the transport does over its high-water mark
        try:
            early = await asyncio.wait_for(reader.read(1), 0.5)
        except TimeoutError:
            early = b""
        server_side.resume_writing()
        answer = await asyncio.wait_for(_response(reader), 10)
        writer.close()
        return early, answer

    early, answer = loop.run_until_complete(go())
    assert early == b"" and fields(answer)["status"] == "resting"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[tuple[Served, Served], Clock]]:
    """`pair`, each server with its own fair share per client (one clock for both)."""
    clock = Clock()
    limits = FairnessLimits(bytes_per_s=1024, burst_bytes=4096, penalty_s=1.0)
    nets = [exchange_net(tmp_path / n, NodeOptions(signature_worker=False)) for n in ("d.sqlite", "p.sqlite")]
    served = Served(nets[0], True, Fairness(limits, clock)), Served(nets[1], False, Fairness(limits, clock))
    yield served, clock
    for s in served:
        s.close()
        s.net.loop.run_until_complete(s.net.node.close())
        s.net.close()


def test_fairness__bad_signature__next_request_refused_429_and_closed_on_both_paths(gated: Any) -> None:
    pair, clock = gated
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    forged = {**body(order(2, ETH, SIDE_BUY, 99, 10)), "trader": body(ask)["trader"]}
    good = post(orjson.dumps(body(ask)))
    raw = post(orjson.dumps(forged)) + good
    got, closed = pair[0].exchange(raw, 2)
    assert (got, closed) == pair[1].exchange(raw, 2)
    assert closed and fields(got[0])["error"]["code"] == "bad_signature"
    assert got[1].startswith(b"HTTP/1.1 429") and fields(got[1])["error"]["code"] == "rate_limited"
    assert b"\r\nretry-after: 1\r\n" in got[1] and b"\r\nconnection: close\r\n" in got[1]
    for served in pair:  # the refused order was never admitted
        assert served.net.node.exchange.order_details(order_digest(ask.order, CONFIG)) is None
    clock.now += 1.5  # a new connection is a new client; and the penalty is over anyway
    (placed,) = same(pair, good)
    assert fields(placed)["status"] == "resting"


def test_fairness__over_the_rate__429_with_retry_after__connection_kept(gated: Any) -> None:
    pair, _ = gated
    one = post(orjson.dumps(body(order(0, ETH, SIDE_SELL, 100, 10, salt=1))))
    per_burst = 4096 // (len(one.split(b"\r\n\r\n", 1)[1]))
    raw = b"".join(
        post(orjson.dumps(body(order(0, ETH, SIDE_SELL, 100 + i, 10, salt=i)))) for i in range(per_burst + 1)
    )
    got, closed = pair[0].exchange(raw, per_burst + 1)
    assert (got, closed) == pair[1].exchange(raw, per_burst + 1)
    assert not closed
    assert [fields(a).get("status") for a in got[:per_burst]] == ["resting"] * per_burst
    assert got[-1].startswith(b"HTTP/1.1 429") and b"\r\nretry-after: " in got[-1]
    assert b"connection: close" not in got[-1]


def test_fairness__host_floods_bad_signatures__its_new_connections_refused_on_both_paths(gated: Any) -> None:
    pair, clock = gated
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    forged = post(orjson.dumps({**body(order(2, ETH, SIDE_BUY, 99, 10)), "trader": body(ask)["trader"]}))
    for served in pair:
        for _ in range(FairnessLimits().host_offences):  # each on a new connection
            (answer,), _ = served.exchange(forged)
            assert fields(answer)["error"]["code"] == "bad_signature"
    (refused,) = same(pair, post(orjson.dumps(body(ask))))  # a new connection from that host
    assert refused.startswith(b"HTTP/1.1 429") and b"\r\nconnection: close\r\n" in refused
    clock.now += 1.5
    (placed,) = same(pair, post(orjson.dumps(body(ask))))
    assert fields(placed)["status"] == "resting"
