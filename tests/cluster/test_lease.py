"""The leader lease on a real three-node JetStream cluster: one holder at a time, a lapsed lease
taken by another member in a higher term while the old holder already knows it lost it (even
when it was paused by SIGSTOP), and the old leader's fenced append refused."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from devnet.jetstream import NatsCluster
from devnet.procs import REPO_ROOT, spawn, wait_until
from sequencer.cluster.entries import Round, TermStart, decode_entry, encode_entry
from sequencer.cluster.errors import ConfigMismatch, Fenced
from sequencer.cluster.lease import TAKE_EARLY_S, Lease
from sequencer.cluster.log import ReplicatedLog
from sequencer.journal import Commit, TxRow
from tests.cluster.helpers import connected, unique

TTL_S = 1.0


async def take(lease: Lease, timeout: float) -> float:
    """Try to take the lease until it is held; returns when (time.monotonic)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await lease.try_acquire():
        assert loop.time() < deadline, f"{lease.holder} did not get the lease in {timeout}s"
        await asyncio.sleep(0.02)
    return time.monotonic()


async def lead(log: ReplicatedLog, lease: Lease) -> int:
    """What a new leader does first: read the log's end from its leader, append its TermStart
    fenced there; returns the position of that entry."""
    assert lease.term is not None
    end = await log.last_seq()
    return await log.append(encode_entry(TermStart(lease.term, lease.holder)), end)


def test_lease__two_contenders_at_once__exactly_one_holds_it_each_time(nats_cluster: NatsCluster) -> None:
    """Both try at the same moment, again and again (the winner releases between rounds): each
    time one holds the lease, the other is refused, and the key names the one that holds it."""
    bucket, rounds = unique("LEASE"), 20

    async def scenario() -> list[tuple[list[bool], list[bool], str | None]]:
        async with connected(nats_cluster, "a", "b") as (a, b):
            leases = [await Lease.open(a, "a", TTL_S, bucket), await Lease.open(b, "b", TTL_S, bucket)]
            outcomes = []
            for _ in range(rounds):
                took = list(await asyncio.gather(*(lease.try_acquire() for lease in leases)))
                record = await leases[0].current()
                outcomes.append((took, [lease.held() for lease in leases], record.holder if record else None))
                for lease in leases:
                    await lease.release()
            return outcomes

    for took, held, holder in asyncio.run(scenario()):
        assert sorted(took) == [False, True]
        assert held == took
        assert holder == ("a" if took[0] else "b")


def test_lease__holder_stops_renewing__other_takes_it_after_ttl_in_higher_term__old_append_fenced(
    nats_cluster: NatsCluster,
) -> None:
    bucket, stream = unique("LEASE"), unique("LOG")
    old_round = encode_entry(Round(wall_ms=1000, commits=(Commit((TxRow(1, 1, 1, b"late order"),)),)))

    async def scenario() -> None:
        async with connected(nats_cluster, "a", "b") as (a, b):
            old, new = await Lease.open(a, "a", TTL_S, bucket), await Lease.open(b, "b", TTL_S, bucket)
            old_log, new_log = await ReplicatedLog.open(a, stream), await ReplicatedLog.open(b, stream)
            assert await old.try_acquire()
            seen = await lead(old_log, old)  # a leads from position `seen`; then stops renewing
            assert not await new.try_acquire()  # held by a
            taken_at = await take(new, timeout=5 * TTL_S)
            assert taken_at >= old.deadline  # the old holder's deadline passed first...
            assert not old.held()  # ...so it already knows it lost the lease
            assert new.term is not None and old.term is not None and new.term > old.term
            term_start = await lead(new_log, new)
            with pytest.raises(Fenced) as refused:
                await old_log.append(old_round, seen)
            assert (refused.value.expected, refused.value.actual) == (seen, term_start)
            assert not await old.renew()  # its term is over: it cannot renew it
            entries = [decode_entry(r.data) for r in await new_log.read(0)]
            assert entries == [TermStart(old.term, "a"), TermStart(new.term, "b")]

    asyncio.run(scenario())


def test_lease__holder_paused_by_sigstop__not_held_on_resume__its_append_fenced(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    bucket, stream = unique("LEASE"), unique("LOG")
    argv = [sys.executable, "-m", "tests.cluster.lease_child", "--urls", ",".join(nats_cluster.urls)]
    argv += ["--holder", "paused", "--ttl", str(TTL_S), "--stream", stream, "--bucket", bucket]
    child = spawn(argv, "lease_child", tmp_path / "child.log", cwd=REPO_ROOT)

    def events(name: str) -> list[dict[str, Any]]:
        printed = [orjson.loads(line) for line in child.log_tail(1_000_000).splitlines() if line[:1] == "{"]
        return [event for event in printed if event["event"] == name]

    def led() -> list[dict[str, Any]]:
        child.check_alive()
        return events("leader")

    try:
        (leader,) = wait_until(led, 20, what="the child to lead")
        wait_until(lambda: len(events("tick")) >= 3, 10, what="the child to tick")
        os.kill(child.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()

        async def take_over() -> tuple[int, int]:
            async with connected(nats_cluster, "successor") as (nc,):
                lease = await Lease.open(nc, "successor", TTL_S, bucket)
                await take(lease, timeout=5 * TTL_S)
                assert lease.term is not None
                return lease.term, await lead(await ReplicatedLog.open(nc, stream), lease)

        term, term_start = asyncio.run(take_over())
        resumed_at = time.monotonic()
        os.kill(child.pid, signal.SIGCONT)
        (append,) = wait_until(lambda: events("append"), 10, what="the child to try its append")
        assert child.popen.wait(timeout=10) == 0
    finally:
        child.stop()
    ticks = events("tick")
    assert any(t["held"] for t in ticks if float(t["at"]) < stopped_at)  # it held the lease before
    after = [t for t in ticks if float(t["at"]) >= resumed_at]
    assert after and not any(t["held"] for t in after)  # never once after it ran again
    assert term > int(leader["term"])
    assert append == {"event": "append", "result": "fenced", "expected": leader["seen"], "actual": term_start}


def test_lease__run_loop__reports_gain_and_loss__release_lets_another_take_it_at_once(
    nats_cluster: NatsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = unique("LEASE")

    async def scenario() -> tuple[list[tuple[bool, int | None]], float]:
        async with connected(nats_cluster, "a", "b") as (a, b):
            lease, other = await Lease.open(a, "a", TTL_S, bucket), await Lease.open(b, "b", TTL_S, bucket)
            changes: list[tuple[bool, int | None]] = []
            gained = asyncio.Event()

            def on_change(held: bool, term: int | None) -> None:
                changes.append((held, term))
                gained.set()

            loop_task = asyncio.create_task(lease.run(on_change, interval=TTL_S / 4))
            await asyncio.wait_for(gained.wait(), 5)
            await asyncio.sleep(2 * TTL_S)  # renewed across two ttls
            assert lease.held() and changes == [(True, lease.term)]
            loop_task.cancel()
            await asyncio.gather(loop_task, return_exceptions=True)
            started = time.monotonic()
            await take(other, timeout=TTL_S / 2)  # released: no wait for the ttl
            return changes, time.monotonic() - started

    changes, waited = asyncio.run(scenario())
    assert [held for held, _ in changes] == [True, False]
    assert changes[0][1] == changes[1][1]
    assert waited < TTL_S / 2
    logged = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    events = [(e["event"], e.get("holder")) for e in logged if str(e["event"]).startswith("leadership")]
    assert events == [("leadership_gained", "a"), ("leadership_released", "a"), ("leadership_gained", "b")]


async def until(check: Any, timeout: float) -> float:
    """Wait (polling every 10 ms) until `check()` is true; returns when (time.monotonic)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not true within {timeout}s"
        await asyncio.sleep(0.01)
    return time.monotonic()


def test_lease__watching_member__tries_only_once_the_last_write_may_lapse_or_is_deleted(
    nats_cluster: NatsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """A member watching the key is told a take could succeed only when the holder's last write is
    nearly a ttl old, then takes the lease over that write (a compare-and-set on its revision) a
    ttl after it saw it, not before; a release (a delete) tells a watcher at once."""
    bucket = unique("LEASE")

    async def scenario() -> None:
        async with connected(nats_cluster, "a", "b", "c") as (a, b, c):
            holder, watcher, third = [
                await Lease.open(nc, name, TTL_S, bucket) for nc, name in ((a, "a"), (b, "b"), (c, "c"))
            ]
            assert watcher.may_be_free()  # nothing watched yet: try
            assert await holder.try_acquire()
            watching = [asyncio.create_task(lease.watch()) for lease in (watcher, third)]
            try:
                await until(lambda: watcher.seen_holder == "a" and third.seen_holder == "a", 5)
                free_while_renewed = []
                last_renewal = time.monotonic()
                while time.monotonic() - last_renewal < 2 * TTL_S and len(free_while_renewed) < 100:
                    if len(free_while_renewed) % 10 == 0:
                        last_sent = time.monotonic()
                        assert await holder.renew()
                    free_while_renewed.append(watcher.may_be_free())
                    await asyncio.sleep(TTL_S / 50)
                assert not any(free_while_renewed)
                free_at = await until(watcher.may_be_free, 2 * TTL_S)  # the holder stopped renewing
                assert last_sent + TTL_S - TAKE_EARLY_S - 0.05 <= free_at <= last_sent + TTL_S
                last_revision = holder.revision
                assert watcher.seen_received is not None and watcher.seen_revision == last_revision
                due = watcher.seen_received + TTL_S
                await until(lambda: time.monotonic() >= due - 0.3, TTL_S)
                wait = watcher.next_try_in(0.5)  # the take over the lapsed write is tried on time
                assert 0 < wait < 0.5 and abs(time.monotonic() + wait - due) < 0.01
                assert watcher.next_try_in(wait / 2) == wait / 2  # not sooner than the usual pace
                taken_at = await take(watcher, timeout=2 * TTL_S)
                assert taken_at >= last_sent + TTL_S  # the holder's write was sent after last_sent
                assert not holder.held() and not await holder.renew()
                assert watcher.term is not None and holder.term is not None and watcher.term > holder.term
                logged = [
                    orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line[:1] == "{"
                ]
                gained = [e for e in logged if e["event"] == "leadership_gained" and e["holder"] == "b"]
                assert [e["over_lapsed"] for e in gained] == [last_revision]
                await until(lambda: third.seen_holder == "b", 5)
                assert await watcher.renew()
                released = time.monotonic()
                await watcher.release()
                freed = await until(third.may_be_free, TTL_S)
                assert freed - released < TTL_S - TAKE_EARLY_S  # the delete, not the age, freed it
                assert third.seen_holder is None
            finally:
                for task in watching:
                    task.cancel()
                await asyncio.gather(*watching, return_exceptions=True)

    asyncio.run(scenario())


def test_lease__stale_watch__write_over_a_renewed_lease_refused__holder_keeps_it(
    nats_cluster: NatsCluster,
) -> None:
    """A member whose watch missed the holder's renewals (it believes an old write lapsed) tries
    to write over that old revision: refused, and the holder keeps the lease and renews it."""
    bucket = unique("LEASE")

    async def scenario() -> None:
        async with connected(nats_cluster, "a", "b") as (a, b):
            holder, other = await Lease.open(a, "a", TTL_S, bucket), await Lease.open(b, "b", TTL_S, bucket)
            assert await holder.try_acquire()
            old_revision = holder.revision
            for _ in range(3):
                await asyncio.sleep(TTL_S / 5)
                assert await holder.renew()
            other.seen_revision, other.seen_received = old_revision, time.monotonic() - 2 * TTL_S
            assert other.lapsed_revision() == old_revision
            assert other.next_try_in(0.1) == 0.1  # lapsed already: the usual pace
            assert not await other.try_acquire()
            assert not other.held() and other.revision is None
            assert holder.held() and await holder.renew()
            record = await holder.current()
            assert record is not None and record.holder == "a"

    asyncio.run(scenario())


def test_lease__bucket_kept_with_another_ttl__config_mismatch(nats_cluster: NatsCluster) -> None:
    bucket = unique("LEASE")

    async def scenario() -> None:
        async with connected(nats_cluster, "config") as (nc,):
            await Lease.open(nc, "a", TTL_S, bucket)
            with pytest.raises(ConfigMismatch):
                await Lease.open(nc, "b", 2 * TTL_S, bucket)

    asyncio.run(scenario())
