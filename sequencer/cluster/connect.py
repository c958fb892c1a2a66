"""The NATS connection of a sequencer-set member: every server's URL, reconnecting forever, and
its errors and reconnections as structured log lines (never tracebacks on stderr)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import nats
import nats.errors
from nats.aio.client import Client as NATS

from contracts.logs import get_logger
from sequencer.cluster.errors import ClusterUnavailable

log = get_logger("cluster")

CONNECT_TIMEOUT_S = 2
"""Per attempt, per server."""
CONNECT_WAIT_S = 10.0
"""For the first connection, over every attempt."""
RECONNECT_WAIT_S = 0.25


async def connect(urls: Sequence[str], name: str, timeout: float = CONNECT_WAIT_S) -> NATS:
    """Connect to the cluster at `urls` (any of them may be down); raises ClusterUnavailable if
    none answers within `timeout` seconds. The connection then moves to a live server by itself
    whenever its server goes."""

    async def on_error(err: Exception) -> None:
        log.warning("nats_error", connection=name, error=f"{type(err).__name__}: {err}")

    async def on_disconnected() -> None:
        if not nc.is_closed:  # a connection closed on purpose is not news
            log.warning("nats_disconnected", connection=name)

    async def on_reconnected() -> None:
        log.info(
            "nats_reconnected",
            connection=name,
            server=str(nc.connected_url.netloc if nc.connected_url else ""),
        )

    nc = NATS()
    try:
        # with no limit on attempts the client tries every server again and again: bounded here
        await asyncio.wait_for(
            nc.connect(
                servers=list(urls),
                name=name,
                connect_timeout=CONNECT_TIMEOUT_S,
                reconnect_time_wait=RECONNECT_WAIT_S,  # type: ignore[arg-type]
                max_reconnect_attempts=-1,
                error_cb=on_error,
                disconnected_cb=on_disconnected,
                reconnected_cb=on_reconnected,
            ),
            timeout,
        )
    except (nats.errors.Error, OSError, TimeoutError) as err:
        await nc.close()
        raise ClusterUnavailable(f"no NATS server answers at {', '.join(urls)}") from err
    return nc
