"""What the cluster tests share: connections closed at the end, and names of their own."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator

from nats.aio.client import Client as NATS

from devnet.jetstream import NatsCluster
from sequencer.cluster.connect import connect

_names = itertools.count()


def unique(prefix: str) -> str:
    """A stream or bucket name of its own for each test (they share the session's cluster)."""
    return f"{prefix}_{os.getpid()}_{next(_names)}"


@contextlib.asynccontextmanager
async def connected(cluster: NatsCluster, *names: str) -> AsyncIterator[list[NATS]]:
    """One connection to the cluster per name (each a member or a client), all closed at the end."""
    conns: list[NATS] = []
    try:
        for name in names:
            conns.append(await connect(cluster.urls, name))
        yield conns
    finally:
        for nc in conns:
            await nc.close()
