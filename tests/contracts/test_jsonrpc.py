"""`contracts.jsonrpc` against a small HTTP server on 127.0.0.1: credentials in the URL sent as
basic authentication, a server that closes every connection, answers that are not JSON-RPC, and
the proxy check that keeps web3's path where the environment names a proxy."""

from __future__ import annotations

import base64
import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pytest

from contracts.jsonrpc import JsonRpc, JsonRpcError, reaches_directly


@dataclass
class Served:
    """What the server saw, and how it answers the next request."""

    port: int
    requests: list[tuple[str, str | None, dict[str, object]]] = field(default_factory=list)
    """(path, Authorization header, body) of each request."""
    status: int = 200
    body: bytes | None = None
    """The raw answer; None: `{"result": "0x2a"}` with the request's id."""
    close: bool = False
    """Close the connection after each answer."""
    delay: float = 0.0
    """Seconds to wait before answering."""


@pytest.fixture
def served() -> Iterator[Served]:
    state = Served(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            request = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append((self.path, self.headers.get("Authorization"), request))
            time.sleep(state.delay)
            body = state.body
            if body is None:
                body = orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x2a"})
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(body)))
            if state.close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_json_rpc__credentials_and_path_in_url__basic_auth_to_that_path(served: Served) -> None:
    with JsonRpc(f"http://reader:s%40cret@127.0.0.1:{served.port}/v3/key?x=1", timeout=5) as client:
        assert client.call("eth_blockNumber", []) == "0x2a"
        assert client.call("eth_getBlockByNumber", ["0x1", False]) == "0x2a"
    expected = "Basic " + base64.b64encode(b"reader:s@cret").decode()
    assert [(path, auth) for path, auth, _ in served.requests] == [("/v3/key?x=1", expected)] * 2
    assert [body["method"] for _, _, body in served.requests] == ["eth_blockNumber", "eth_getBlockByNumber"]
    assert served.requests[0][2]["id"] != served.requests[1][2]["id"]
    with JsonRpc(f"http://127.0.0.1:{served.port}", timeout=5) as plain:
        assert plain.call("eth_chainId", []) == "0x2a"
    assert served.requests[-1][:2] == ("/", None)


def test_json_rpc__server_closes_every_connection__each_call_answered(served: Served) -> None:
    served.close = True
    with JsonRpc(f"http://127.0.0.1:{served.port}", timeout=5) as client:
        assert [client.call("eth_blockNumber", []) for _ in range(5)] == ["0x2a"] * 5
    assert len(served.requests) == 5  # each sent once


def test_json_rpc__endpoint_slower_than_the_timeout__one_timeout_not_two(served: Served) -> None:
    served.delay = 1.0
    with JsonRpc(f"http://127.0.0.1:{served.port}", timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client.call("eth_blockNumber", [])
        assert time.monotonic() - started < 0.55  # not sent again to wait a second time
        served.delay = 0.0
        assert client.call("eth_blockNumber", []) == "0x2a"
    assert len(served.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (500, b"upstream down", "HTTP 500"),
        (200, b"<html>not json</html>", "not JSON"),
        (200, b'{"jsonrpc": "2.0", "id": 1}', "not a JSON-RPC answer"),
        (200, b"[1, 2]", "not a JSON-RPC answer"),
        (
            200,
            b'{"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "header not found"}}',
            "header not found",
        ),
    ],
)
def test_json_rpc__not_an_answer__typed_error_and_the_next_call_works(
    served: Served, status: int, body: bytes, match: str
) -> None:
    with JsonRpc(f"http://127.0.0.1:{served.port}", timeout=5) as client:
        served.status, served.body = status, body
        with pytest.raises(JsonRpcError, match=match):
            client.call("eth_blockNumber", [])
        served.status, served.body = 200, None
        assert client.call("eth_blockNumber", []) == "0x2a"


def test_reaches_directly__proxy_named_for_the_scheme__not_unless_bypassed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    assert reaches_directly("https://rpc.example.org/v3/key")
    assert reaches_directly("http://127.0.0.1:8545")
    assert not reaches_directly("ws://127.0.0.1:8546")
    assert not reaches_directly("not a url")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert not reaches_directly("https://rpc.example.org/v3/key")
    assert reaches_directly("http://127.0.0.1:8545")  # no proxy for plain http
    monkeypatch.setenv("NO_PROXY", "rpc.example.org")
    assert reaches_directly("https://rpc.example.org/v3/key")
