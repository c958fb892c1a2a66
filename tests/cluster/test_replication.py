"""The set's log carries a leader's commits to the other members: a member that applies the log
holds the same durable log (transactions, order records, fills), and once rebuilt the same books
and view, at the same position; an answer waits until its commit is in the log; a leader fenced by
a newer one fails every waiting answer with `not_leader` and appends nothing. Over a real
three-node JetStream cluster and real exchanges (no L1)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from exchange_fixtures import BTC, ETH, TRADERS, cancel, order

from devnet.jetstream import NatsCluster
from sequencer.cluster.entries import TermStart, encode_entry
from sequencer.cluster.log import ReplicatedLog
from sequencer.errors import NotLeader
from sequencer.matching import Side
from sequencer.mempool import logged_pending
from sequencer.replication import Applier, Replicator
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.errors import RollupError
from sequencer.stf.state import get_account
from sequencer.stf.types import L1Context
from tests.cluster.helpers import connected, unique
from tests.sequencer.test_exchange import Harness, funded

A, B, C, D = TRADERS[:4]


def rows(h: Harness) -> dict[str, list[Any]]:
    db = h.store.db
    return {
        "txs": db.execute("SELECT seq, hash, raw, status, clock FROM txs ORDER BY seq").fetchall(),
        "orders": db.execute(
            "SELECT digest, seq, kind, trader, market, raw, status, reason FROM orders ORDER BY seq"
        ).fetchall(),
        "fills": db.execute("SELECT * FROM fills ORDER BY tx_seq, leg").fetchall(),
    }


def books(h: Harness) -> dict[int, Any]:
    return {m: book.depth(1000) for m, book in sorted(h.exchange.books.items())}


def same_exchange(a: Harness, b: Harness, *, require_orders: bool = True) -> bool:
    """The same books (every resting order in priority order), open-order exposure and view of
    every trader's account; `a` numbers its next order after every logged one."""
    assert books(a) == books(b)
    assert any(books(b)[ETH]) or not require_orders
    for market, book in b.exchange.books.items():
        for side in (Side.BUY, Side.SELL):
            assert list(a.exchange.books[market].orders(side)) == list(book.orders(side))
    assert {d: (r.seq, r.signed) for d, r in a.exchange.resting.items()} == {
        d: (r.seq, r.signed) for d, r in b.exchange.resting.items()
    }
    assert a.exchange.by_trader == b.exchange.by_trader
    markets = b.exchange.markets()
    for trader in (A, B, C, D):
        assert a.exchange.exposure.of(trader, markets) == b.exchange.exposure.of(trader, markets)
        assert get_account(a.mempool.view, trader) == get_account(b.mempool.view, trader)
    assert a.exchange.next_seq() > b.exchange.log.max_seq()  # a new order comes after every one logged
    return True


def rebuilt(h: Harness) -> None:
    """What a member does before it reads or leads: the view and the books from its log."""
    h.mempool.rebase(h.state, [], L1Context(0, {}), logged_pending(h.store, h.mempool.hashes))
    h.exchange.rebuild()


def flow(h: Harness, rng: random.Random, count: int) -> int:
    """Random orders around 100 on both markets, some cancelled; returns how many were refused."""
    placed, refused = [], 0
    for i in range(count):
        trader = rng.randrange(4)
        side = rng.choice((SIDE_BUY, SIDE_SELL))
        signed = order(
            trader, rng.choice((ETH, BTC)), side, 100 + rng.randint(-3, 3), rng.randint(1, 9) * 10, salt=i
        )
        try:
            h.exchange.place(signed)
            placed.append((trader, signed))
        except RollupError:
            refused += 1
        if placed and rng.random() < 0.15:
            who, victim = placed.pop(rng.randrange(len(placed)))
            h.exchange.cancel(cancel(who, victim))
    return refused


def test_replication__follower_applies_the_log__same_durable_log_books_and_view(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    leader = Harness(tmp_path / "leader.sqlite", funded(A, B, C, D))
    follower = Harness(tmp_path / "follower.sqlite", funded(A, B, C, D))

    async def scenario() -> None:
        async with connected(nats_cluster, "leader", "follower") as (nl, nf):
            stream = unique("LOG")
            log_l, log_f = await ReplicatedLog.open(nl, stream), await ReplicatedLog.open(nf, stream)
            fatal: list[str] = []
            replicator = Replicator(log_l, lambda: True, fatal.append)
            leader.mempool.journal = replicator.record
            writer = asyncio.create_task(replicator.run())
            try:
                refused = flow(leader, random.Random(7), 300)
                assert refused < 300
                barrier = replicator.barrier()
                assert barrier is not None  # answers wait for the log
                await asyncio.wait_for(barrier, 30)
                assert replicator.barrier() is None and not fatal
                assert replicator.replicated_seq == leader.store.top_seq() > 0
                follower.mempool.replica = True
                applier = Applier(follower.store, follower.mempool, lambda _: None, follower.exchange.follow)
                for record in await log_f.read(0):
                    applier.apply(record)
                assert applier.applied.position == replicator.position == await log_f.last_seq()
                assert not applier.dirty  # the view and the books followed entry by entry
            finally:
                writer.cancel()

    asyncio.run(scenario())
    assert rows(follower) == rows(leader)
    assert rows(leader)["fills"] and any(r[6] == "cancelled" for r in rows(leader)["orders"])
    assert [(p.seq, p.hash) for p in follower.mempool.pending] == [
        (p.seq, p.hash) for p in leader.mempool.pending
    ]
    assert same_exchange(follower, leader)  # followed, not rebuilt
    rebuilt(follower)
    rebuilt(leader)
    assert same_exchange(follower, leader)
    leader.store.close()
    follower.store.close()


def test_replication__leader_fenced_by_a_newer_term__waiting_answers_fail_not_leader(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    old = Harness(tmp_path / "old.sqlite", funded(A, B))

    async def scenario() -> None:
        async with connected(nats_cluster, "old", "new") as (no, nn):
            stream = unique("LOG")
            log_old, log_new = await ReplicatedLog.open(no, stream), await ReplicatedLog.open(nn, stream)
            fatal: list[str] = []
            replicator = Replicator(log_old, lambda: True, fatal.append)
            old.mempool.journal = replicator.record
            await log_new.append(encode_entry(TermStart(2, "new")), 0)  # a newer leader's term
            writer = asyncio.create_task(replicator.run())
            try:
                old.exchange.place(order(0, ETH, SIDE_BUY, 99, 10))
                barrier = replicator.barrier()
                assert barrier is not None
                with pytest.raises(NotLeader):
                    await asyncio.wait_for(barrier, 30)
                assert fatal and "expected the log to end at 0" in fatal[0]
                assert await log_new.last_seq() == 1  # nothing of the old leader's
                later = replicator.barrier()
                assert later is not None and later.done() and isinstance(later.exception(), NotLeader)
            finally:
                writer.cancel()

    asyncio.run(scenario())
    old.store.close()


def test_replication__lease_lapsed_before_the_append__nothing_appended(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    h = Harness(tmp_path / "s.sqlite", funded(A))

    async def scenario() -> None:
        async with connected(nats_cluster, "a") as (nc,):
            log_ = await ReplicatedLog.open(nc, unique("LOG"))
            fatal: list[str] = []
            replicator = Replicator(log_, lambda: False, fatal.append)
            h.mempool.journal = replicator.record
            writer = asyncio.create_task(replicator.run())
            try:
                h.exchange.place(order(0, ETH, SIDE_BUY, 99, 10))
                barrier = replicator.barrier()
                assert barrier is not None
                with pytest.raises(NotLeader):
                    await asyncio.wait_for(barrier, 10)
                assert await log_.last_seq() == 0
            finally:
                writer.cancel()

    asyncio.run(scenario())
    h.store.close()
