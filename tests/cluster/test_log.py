"""The replicated log on a real three-node JetStream cluster: appends replicated to every node and
read back in order from another connection, fenced appends refused without writing, readers
from any position, a node killed (kill -9) and restarted."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from devnet.jetstream import NatsCluster
from sequencer.cluster.errors import ClusterUnavailable, EntryTooLarge, Fenced
from sequencer.cluster.log import Record, ReplicatedLog
from tests.cluster.helpers import connected, unique

T = TypeVar("T")


def payloads(n: int, size: int = 100) -> list[bytes]:
    return [bytes([i % 251]) * size + i.to_bytes(4, "big") for i in range(n)]


async def append_all(log: ReplicatedLog, items: list[bytes], after: int = 0) -> int:
    """Append each item fenced on the one before; returns the last position."""
    last = after
    for item in items:
        last = await log.append(item, last)
    return last


async def retry(action: Callable[[], Awaitable[T]], timeout: float) -> T:
    """Run `action` again while NATS is unavailable (an election in progress), up to `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await action()
        except ClusterUnavailable:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


def test_append__no_server_takes_it_yet__sent_again_until_the_stream_does__written_once(
    nats_cluster: NatsCluster,
) -> None:
    stream = unique("LOG")

    async def scenario() -> list[Record]:
        async with connected(nats_cluster, "writer", "maker") as (writer, maker):
            early = ReplicatedLog(writer, stream)  # its stream is not made yet: no responders
            append = asyncio.ensure_future(early.append(b"first", 0))
            await asyncio.sleep(0.3)
            assert not append.done()  # not refused: sent again while nobody takes it
            made = await ReplicatedLog.open(maker, stream)
            assert await append == 1
            return await made.read(0)

    assert asyncio.run(scenario()) == [Record(1, b"first")]


def test_append__no_stream_at_all__cluster_unavailable_after_the_request_timeout(
    nats_cluster: NatsCluster,
) -> None:
    async def scenario() -> None:
        async with connected(nats_cluster, "writer") as (writer,):
            with pytest.raises(ClusterUnavailable, match="no server of the stream took it"):
                await ReplicatedLog(writer, unique("LOG"), timeout=0.3).append(b"lost", 0)

    asyncio.run(scenario())


def test_append__three_replicas__read_back_in_order_from_another_connection_on_every_node(
    nats_cluster: NatsCluster,
) -> None:
    stream, items = unique("LOG"), payloads(20)

    async def scenario() -> tuple[list[int], list[Record]]:
        async with connected(nats_cluster, "writer", "reader") as (writer, reader):
            log = await ReplicatedLog.open(writer, stream)
            positions = [await log.append(item, seq) for seq, item in enumerate(items)]
            other = await ReplicatedLog.open(reader, stream)
            return positions, await other.read(0)

    positions, read = asyncio.run(scenario())
    assert positions == list(range(1, 21))
    assert read == list(enumerate(items, start=1))
    for index in range(3):
        nats_cluster.wait_replica(index, stream, 20, timeout=10)


def test_append__stale_or_future_expected_last__fenced_and_nothing_written(nats_cluster: NatsCluster) -> None:
    stream, items = unique("LOG"), payloads(3)

    async def scenario() -> tuple[Fenced, Fenced, int, list[bytes]]:
        async with connected(nats_cluster, "fenced") as (nc,):
            log = await ReplicatedLog.open(nc, stream)
            await append_all(log, items)
            with pytest.raises(Fenced) as stale:
                await log.append(b"a deposed leader's round", 1)
            with pytest.raises(Fenced) as future:
                await log.append(b"from nowhere", 7)
            return stale.value, future.value, await log.last_seq(), [r.data for r in await log.read(0)]

    stale, future, last, data = asyncio.run(scenario())
    assert (stale.expected, stale.actual) == (1, 3)
    assert (future.expected, future.actual) == (7, 3)
    assert last == 3
    assert data == items


def test_append__two_writers_at_one_position__one_written_the_other_fenced(nats_cluster: NatsCluster) -> None:
    """Two members that both believe they lead append at once, again and again: at each position
    exactly one entry is written (whether the loser is refused by the end or by the append in
    flight), and the log holds only the winners."""
    stream, rounds = unique("LOG"), 25

    async def scenario() -> tuple[list[list[int | None]], list[Record], list[bytes]]:
        async with connected(nats_cluster, "one", "two") as (one, two):
            logs = [await ReplicatedLog.open(one, stream), await ReplicatedLog.open(two, stream)]
            outcomes: list[list[int | None]] = []
            winners: list[bytes] = []
            for last in range(rounds):
                payloads = [f"writer {w} at {last + 1}".encode() for w in range(2)]
                tries = [log.append(payloads[w], last) for w, log in enumerate(logs)]
                results = await asyncio.gather(*tries, return_exceptions=True)
                assert all(isinstance(r, int | Fenced) for r in results), results
                outcomes.append([r if isinstance(r, int) else None for r in results])
                winners += [payloads[w] for w, r in enumerate(results) if isinstance(r, int)]
            return outcomes, await logs[0].read(0), winners

    outcomes, read, winners = asyncio.run(scenario())
    assert [sorted(o, key=lambda r: r is None) for o in outcomes] == [
        [seq, None] for seq in range(1, rounds + 1)
    ]
    assert read == list(enumerate(winners, start=1))


def test_append__same_entry_retried_at_its_position__written_once(nats_cluster: NatsCluster) -> None:
    """A leader whose append timed out retries it as it was: the log holds it once."""
    stream = unique("LOG")

    async def scenario() -> tuple[int, int, int]:
        async with connected(nats_cluster, "retry") as (nc,):
            log = await ReplicatedLog.open(nc, stream)
            first = await log.append(b"round 1", 0)
            again = await log.append(b"round 1", 0)
            with pytest.raises(Fenced):
                await log.append(b"another round 1", 0)
            return first, again, await log.last_seq()

    assert asyncio.run(scenario()) == (1, 1, 1)


def test_append__over_the_servers_payload_limit__entry_too_large_and_nothing_written(
    nats_cluster: NatsCluster,
) -> None:
    stream = unique("LOG")

    async def scenario() -> tuple[EntryTooLarge, int]:
        async with connected(nats_cluster, "large") as (nc,):
            log = await ReplicatedLog.open(nc, stream)
            with pytest.raises(EntryTooLarge) as err:
                await log.append(b"x" * nc.max_payload, 0)
            return err.value, await log.last_seq()

    err, last = asyncio.run(scenario())
    assert err.size > err.limit
    assert last == 0


def test_reader__from_position_n__sees_exactly_the_entries_after_n_then_new_ones(
    nats_cluster: NatsCluster,
) -> None:
    stream, items = unique("LOG"), payloads(11)

    async def scenario() -> None:
        async with connected(nats_cluster, "writer", "follower") as (writer, follower):
            log = await ReplicatedLog.open(writer, stream)
            await append_all(log, items[:10])
            other = await ReplicatedLog.open(follower, stream)
            assert await other.read(4, upto=7) == [
                (5, items[4]),
                (6, items[5]),
                (7, items[6]),
            ]
            assert await other.read(10) == []
            async with other.reader(4) as reader:
                got = [await reader.next(5.0) for _ in range(6)]
                assert got == list(enumerate(items[4:10], start=5))
                assert await reader.next(0.3) is None  # nothing after the end
                await log.append(items[10], 10)
                assert await anext(reader) == (11, items[10])
                assert reader.position == 11

    asyncio.run(scenario())


def test_kill9_of_the_stream_leader__appends_continue_on_two_of_three__restarted_node_catches_up(
    nats_cluster: NatsCluster,
) -> None:
    stream, items = unique("LOG"), payloads(20, size=1000)

    async def scenario() -> int:
        async with connected(nats_cluster, "writer", "follower") as (writer, follower):
            log = await ReplicatedLog.open(writer, stream)
            await append_all(log, items[:10])
            info = await log.js.stream_info(stream)
            assert info.cluster is not None
            victim = next(i for i, node in enumerate(nats_cluster.nodes) if node.name == info.cluster.leader)
            other = await ReplicatedLog.open(follower, stream)
            async with other.reader(0) as reader:
                assert [(await reader.next(5.0) or (0, b""))[0] for _ in range(10)] == list(range(1, 11))
                nats_cluster.kill9(victim)
                for seq in range(10, 20):
                    append = functools.partial(log.append, items[seq], seq)
                    assert await retry(append, timeout=20.0) == seq + 1
                everything = await retry(functools.partial(log.read, 0), timeout=10.0)
                assert everything == list(enumerate(items, start=1))
                # a follower reading through the crash gets the rest, in order, each once
                rest = [await reader.next(15.0) for _ in range(10)]
                assert rest == list(enumerate(items[10:], start=11))
            return victim

    victim = asyncio.run(scenario())
    nats_cluster.start_node(victim)
    nats_cluster.wait_replica(victim, stream, 20, timeout=30)
    nats_cluster.wait_ready()
