"""Fan-out of chain events to WebSocket subscribers (`GET /v1/stream`).

Each subscriber has a bounded queue; one that falls `MAX_QUEUED` messages behind is dropped (its
socket is closed with code 1013, "try again later") rather than letting memory grow or slowing
the node. Messages are plain JSON objects with a `type` field.
"""

from __future__ import annotations

import asyncio
from typing import Any

MAX_QUEUED = 1_000
"""Messages a subscriber may fall behind before it is dropped."""


class Stream:
    """Publish/subscribe on the event loop thread."""

    def __init__(self) -> None:
        self.subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A new subscriber's queue (`None` in it means: you were dropped)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(MAX_QUEUED + 1)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Forget a subscriber."""
        self.subscribers.discard(queue)

    def publish(self, message: dict[str, Any]) -> None:
        """Send a message to every subscriber; drop the ones too far behind."""
        for queue in list(self.subscribers):
            if queue.qsize() >= MAX_QUEUED:
                self.subscribers.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(message)
