"""Structured logging: one JSON object per line on stderr.

Every service logs through `get_logger(service)`; a line carries the time, the level, the
service, an event name and the event's fields, so logs can be grepped and parsed alike.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

import orjson


def _default(value: Any) -> Any:
    """Make bytes and other odd values printable (hex for bytes)."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value)


class Logger:
    """A tiny structured logger writing JSON lines."""

    def __init__(self, service: str, stream: IO[str] | None = None) -> None:
        self.service = service
        self.stream = stream

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        record = {"ts": round(time.time(), 3), "level": level, "service": self.service, "event": event}
        record.update(fields)
        line = orjson.dumps(record, default=_default).decode()
        stream = self.stream or sys.stderr
        stream.write(line + "\n")
        stream.flush()

    def info(self, event: str, **fields: Any) -> None:
        """Log an event at level info."""
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log an event at level warning."""
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log an event at level error."""
        self._emit("error", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        """Log an event at level critical: the service cannot go on as it should without help."""
        self._emit("critical", event, fields)


def get_logger(service: str) -> Logger:
    """Return the structured logger of a service."""
    return Logger(service)
