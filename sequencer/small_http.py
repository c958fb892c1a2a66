"""`/health` and `/metrics` for the small services (oracle feed, liquidator) that have no API.

One `ThreadingHTTPServer` in a daemon thread: `GET /health` answers the service's health dict
(200 when its `ok` is true, 503 otherwise), `GET /metrics` its Prometheus registry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def serve_health_and_metrics(
    health: Callable[[], dict[str, Any]], registry: CollectorRegistry, host: str, port: int, name: str
) -> ThreadingHTTPServer:
    """Serve `/health` and `/metrics` on `host:port` in a background thread; returns the server
    (call `shutdown()` to stop it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server API names it
            if self.path == "/health":
                report = health()
                body, kind = json.dumps(report).encode(), "application/json"
                status = 200 if report.get("ok") else 503
            elif self.path == "/metrics":
                body, status, kind = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            else:
                body, status, kind = (
                    b'{"error": {"code": "not_found", "message": "no such path"}}',
                    404,
                    "application/json",
                )
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass  # requests are not worth a log line each

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name=f"{name}-http", daemon=True).start()
    return server
