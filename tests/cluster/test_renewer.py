"""The lease renewed from its own thread (`Renewer`) on a real three-node JetStream cluster: a
holder whose event loop is blocked for twice the ttl keeps the lease and no one else takes it;
a holder whose loop stops turning for longer than `max_stall_s` loses it at its deadline and
another member takes it in a higher term; nothing is renewed once the member says stop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from devnet.jetstream import NatsCluster
from sequencer.cluster.lease import Lease
from sequencer.cluster.renewer import Renewer
from tests.cluster.helpers import connected, unique
from tests.cluster.test_lease import take

TTL_S = 1.0


@contextlib.asynccontextmanager
async def holder_and_other(
    cluster: NatsCluster, **options: float
) -> AsyncIterator[tuple[Lease, Lease, Renewer]]:
    """Member a holding the lease with a started renewer, and member b; the renewer is stopped at
    the end."""
    bucket = unique("LEASE")
    async with connected(cluster, "a", "b") as (a, b):
        holder, other = await Lease.open(a, "a", TTL_S, bucket), await Lease.open(b, "b", TTL_S, bucket)
        renewer = Renewer(holder, cluster.urls, bucket=bucket, **options)
        await asyncio.to_thread(renewer.start)
        try:
            assert await holder.try_acquire()
            yield holder, other, renewer
        finally:
            await asyncio.to_thread(renewer.stop)


def test_renewer__holder_loop_blocked_two_ttls__keeps_the_lease__no_one_takes_it(
    nats_cluster: NatsCluster,
) -> None:
    async def scenario() -> None:
        async with holder_and_other(nats_cluster) as (holder, other, renewer):
            renewer.active = True
            term = holder.term
            time.sleep(2 * TTL_S)  # this loop is blocked (a long step): the thread renews
            assert holder.held() and holder.term == term and renewer.renewals >= 3
            assert not await other.try_acquire()
            record = await other.current()
            assert record is not None and record.holder == "a"

    asyncio.run(scenario())


def test_renewer__holder_loop_stalled_past_the_limit__lease_lapses__another_takes_it(
    nats_cluster: NatsCluster,
) -> None:
    async def scenario() -> None:
        async with holder_and_other(nats_cluster, max_stall_s=0.3) as (holder, other, renewer):
            renewer.active = True
            renewer.beat()
            stalled_at = time.monotonic()  # no beat from here on: a wedged loop
            taken_at = await take(other, timeout=5 * TTL_S)
            assert taken_at - stalled_at < 0.3 + 2 * TTL_S
            assert not holder.held()
            assert other.term is not None and holder.term is not None and other.term > holder.term

    asyncio.run(scenario())


def test_renewer__inactive__renews_nothing__the_lease_lapses(nats_cluster: NatsCluster) -> None:
    async def scenario() -> None:
        async with holder_and_other(nats_cluster) as (holder, other, renewer):
            renewer.active = False  # (a member deposed, or giving the lease up)
            for _ in range(20):
                renewer.beat()
                await asyncio.sleep(0.1)
            assert renewer.renewals == 0 and not holder.held()
            await take(other, timeout=5 * TTL_S)

    asyncio.run(scenario())
