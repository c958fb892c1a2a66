"""HTTP server of the embedded L1: a raw ASGI app on uvicorn (uvloop + httptools), orjson.

- `POST /`: JSON-RPC 2.0, single or batch. JSON-RPC errors always travel with HTTP 200.
- `GET /health`: 200 `{"status": "ok", "chainId": ..., "blockNumber": ...}`.
- `GET /metrics`: Prometheus text (requests by method, errors by code, block height, latency).

All chain work runs on ONE worker thread (eth-tester/py-evm are not thread-safe); a batch runs
as one unit on it. The event loop only parses, encodes and answers /health and /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Generator, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import orjson
import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from devnet.l1.chain import DEFAULT_CHAIN_ID, DEV_ACCOUNT_COUNT, DEV_MNEMONIC, DevChain, dev_accounts
from devnet.l1.errors import ParseError
from devnet.l1.rpc import METHODS, Response, handle_payload, parse_body, parse_error_response

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8545
MAX_BODY_BYTES = 32 * 1024 * 1024
MUTATING_METHODS = frozenset(
    {
        "eth_sendTransaction",
        "eth_sendRawTransaction",
        "evm_mine",
        "evm_revert",
        "evm_snapshot",
        "evm_increaseTime",
        "evm_setNextBlockTimestamp",
    }
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class JsonLogger:
    """One JSON object per line: ts, level, event, then the event's fields."""

    def __init__(self, stream: IO[str] | None = None, service: str = "l1") -> None:
        self.stream = stream
        self.service = service

    def log(self, level: str, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "level": level, "service": self.service, "event": event}
        record.update(fields)
        stream = self.stream or sys.stderr
        stream.write(orjson.dumps(record, default=str).decode() + "\n")
        stream.flush()

    def info(self, event: str, **fields: Any) -> None:
        self.log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log("error", event, **fields)


class Metrics:
    """Prometheus metrics of one node (own registry, so tests can build several apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "l1_rpc_requests_total", "JSON-RPC requests by method", ["method"], registry=self.registry
        )
        self.errors = Counter(
            "l1_rpc_errors_total", "JSON-RPC errors by code", ["code"], registry=self.registry
        )
        self.height = Gauge("l1_block_height", "Number of the head block", registry=self.registry)
        self.latency = Histogram(
            "l1_http_request_seconds",
            "Time to answer one HTTP POST (a batch counts once)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )


class L1App:
    """The ASGI application around one `DevChain`."""

    def __init__(self, chain: DevChain, logger: JsonLogger | None = None, log_requests: bool = False) -> None:
        self.chain = chain
        self.logger = logger or JsonLogger()
        self.log_requests = log_requests
        self.metrics = Metrics()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="l1-evm")
        self.height = chain.block_number
        self.metrics.height.set(self.height)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    # -- chain side (worker thread only)

    def _on_internal(self, method: str, exc: BaseException) -> None:
        self.logger.error(
            "rpc_internal_error",
            method=method,
            error=repr(exc),
            traceback="".join(traceback.format_exception(exc)),
        )

    def _work(self, payload: Any) -> tuple[Response, int]:
        response = handle_payload(self.chain, payload, self._on_internal)
        return response, self.chain.block_number

    # -- event loop side

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path in ("/", ""):
            await self._rpc(receive, send)
        elif method == "GET" and path == "/health":
            body = {"status": "ok", "chainId": self.chain.chain_id, "blockNumber": self.height}
            await _respond(send, 200, orjson.dumps(body), b"application/json")
        elif method == "GET" and path == "/metrics":
            await _respond(send, 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST.encode())
        elif path in ("/", "/health", "/metrics"):
            await _respond(send, 405, b'{"error":"method not allowed"}', b"application/json")
        else:
            await _respond(send, 404, b'{"error":"not found"}', b"application/json")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _rpc(self, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await _respond(send, 413, b'{"error":"request body too large"}', b"application/json")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            payload = parse_body(b"".join(chunks))
        except ParseError as err:
            response = parse_error_response(err)
        else:
            loop = asyncio.get_running_loop()
            response, height = await loop.run_in_executor(self.executor, self._work, payload)
            if height != self.height:
                self.height = height
                self.metrics.height.set(height)
        self._account(response)
        if response.body is None:
            await _respond(send, 204, b"", b"application/json")
        else:
            await _respond(send, 200, orjson.dumps(response.body), b"application/json")
        self.metrics.latency.observe(time.perf_counter() - started)

    def _account(self, response: Response) -> None:
        for outcome in response.outcomes:
            label = outcome.method if outcome.method in METHODS else "<unknown>"
            self.metrics.requests.labels(label).inc()
            if outcome.error_code is not None:
                self.metrics.errors.labels(str(outcome.error_code)).inc()
            if self.log_requests or (outcome.method in MUTATING_METHODS and outcome.error_code is None):
                self.logger.info("rpc", method=outcome.method, block=self.height, code=outcome.error_code)
            elif outcome.error_code is not None and outcome.method in MUTATING_METHODS:
                self.logger.warning(
                    "rpc_rejected",
                    method=outcome.method,
                    code=outcome.error_code,
                    message=outcome.error_message,
                )


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _QuietServer(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown (exit by signal, and a
    KeyboardInterrupt traceback); we shut down gracefully and return normally instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 lets the OS pick a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def banner(url: str, chain_id: int, accounts: int, mnemonic: str) -> str:
    lines = [
        "derivrollup embedded L1 (py-evm, automine)",
        f"Chain ID: {chain_id}",
        f"Mnemonic: {mnemonic}",
        "Available accounts (10000 ETH each): address, private key",
    ]
    for i, acct in enumerate(dev_accounts(accounts, mnemonic)):
        lines.append(f"({i}) {acct.address} {acct.private_key}")
    lines.append(f"Listening on {url}")
    return "\n".join(lines)


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    chain_id: int = DEFAULT_CHAIN_ID,
    *,
    accounts: int = DEV_ACCOUNT_COUNT,
    log_requests: bool = False,
    out: IO[str] | None = None,
) -> None:
    """Run the node until SIGINT/SIGTERM. Prints the banner (URL last) to `out` (stdout)."""
    logger = JsonLogger()
    chain = DevChain(chain_id=chain_id, accounts=accounts)
    app = L1App(chain, logger, log_requests=log_requests)
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    url = f"http://{host}:{actual_port}"
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = _QuietServer(config)
    stream = out or sys.stdout
    stream.write(banner(url, chain_id, accounts, DEV_MNEMONIC) + "\n")
    stream.flush()
    logger.info("l1_started", url=url, chain_id=chain_id, accounts=accounts, block=chain.block_number)
    try:
        server.run(sockets=[sock])
    finally:
        app.close()
        sock.close()
        logger.info("l1_stopped", url=url, block=chain.block_number)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m devnet.l1node [--host H] [--port N] [--chain-id ID]`."""
    parser = argparse.ArgumentParser(prog="rollup l1", description="Embedded dev L1 (py-evm) over JSON-RPC")
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port; 0 picks a free one")
    parser.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID, help="chain id (default 31337)")
    parser.add_argument(
        "--accounts", type=int, default=DEV_ACCOUNT_COUNT, help=f"dev accounts (default {DEV_ACCOUNT_COUNT})"
    )
    parser.add_argument("--log-requests", action="store_true", help="log every JSON-RPC request")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.chain_id, accounts=args.accounts, log_requests=args.log_requests)
    return 0
