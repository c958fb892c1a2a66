"""A small JSON-RPC client for the reads a node makes several times a second.

A node polls the L1 head, its time and the hashes of the blocks it folded several times a
second. Through web3 each such call costs several times the CPU of the request itself (the
`requests` session, the middleware, the block formatters), on machines where the node shares two
cores with its whole set. `JsonRpc` posts the request on one kept-alive HTTP connection and reads
the raw answer.

Only reads go through it: a request whose connection broke is sent once more on a new one, which
is safe only for calls that change nothing. It speaks to the endpoint directly: where the
environment names a proxy for it (`HTTP_PROXY`, `HTTPS_PROXY`, not bypassed by `NO_PROXY`),
`reaches_directly` says no and the caller keeps web3's path, which honours it. Credentials in the
URL (`https://user:secret@host/...`) are sent as HTTP basic authentication, as web3's are.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

_HEADERS = {"Content-Type": "application/json", "Connection": "keep-alive"}


class JsonRpcError(Exception):
    """The node answered with an error, or not with a JSON-RPC answer at all."""


def reaches_directly(url: str) -> bool:
    """Whether `url` is an HTTP(S) endpoint the environment names no proxy for."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.scheme not in urllib.request.getproxies():
        return True
    return bool(urllib.request.proxy_bypass(parts.hostname))


class JsonRpc:
    """Read-only JSON-RPC calls to one HTTP(S) endpoint, over one kept-alive connection. Not
    thread-safe: one caller at a time (each node process has its own)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an HTTP(S) JSON-RPC endpoint: {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._headers = dict(_HEADERS)
        if parts.username is not None:
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(secret).decode()
        self._ids = itertools.count(1)
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = kind(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> JsonRpc:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __del__(self) -> None:
        # a client dropped without close() (a Web3L1 that lives as long as its process) closes its
        # socket here rather than leaving it to the collector's warning
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    def call(self, method: str, params: list[Any]) -> Any:
        """The `result` of `method(params)`; JsonRpcError if the node answers with an error, and
        the connection's own error (OSError, HTTPException) if it cannot be reached."""
        body = orjson.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", self._path, body, self._headers)
                response = conn.getresponse()
                data = response.read()
                break
            except TimeoutError:
                self.close()  # a slow endpoint, not a stale connection: sending again would wait twice
                raise
            except (http.client.HTTPException, OSError):
                self.close()  # a kept-alive connection the server closed: once more on a new one
                if attempt == 2:
                    raise
        if response.status != 200:
            raise JsonRpcError(f"{method}: HTTP {response.status}: {data[:200]!r}")
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            raise JsonRpcError(f"{method}: not JSON: {data[:200]!r}") from err
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise JsonRpcError(f"{method}: not a JSON-RPC answer: {data[:200]!r}")
        if "error" in answer:
            raise JsonRpcError(f"{method}: {answer['error']}")
        return answer["result"]
