"""Batches come from the log: the leader records each batch it appended on L1 in the set's log
(`BatchPosted`), a member applies it, and a new leader whose L1 read is behind that batch waits
for it instead of building a conflicting batch, then posts what never landed; a slashed leader
stops leading and acknowledging at once; a take-over that does not end in time gives way to
another member. Real members (node, log, lease) on a real three-node
JetStream cluster and real stores, over one in-memory L1 that refuses a batch not built on its
tip as the Rollup does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from contracts.bindings import TransactionReverted
from contracts.l1 import Mined
from devnet.jetstream import NatsCluster
from sequencer import member as member_module
from sequencer.builder import build_batch
from sequencer.cluster.connect import connect
from sequencer.cluster.entries import BatchPosted, decode_entry
from sequencer.cluster.lease import Lease
from sequencer.cluster.log import ReplicatedLog
from sequencer.errors import NotLeader
from sequencer.member import Member, MemberOptions
from sequencer.mempool import PendingTx
from sequencer.metrics import REGISTRY
from sequencer.node import NodeOptions, SequencerNode
from sequencer.poster import REFUSED_PREV_ROOT
from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.l1types import L1Event
from sequencer.stf.state import state_root
from sequencer.store import Store
from tests.cluster.helpers import unique
from tests.sequencer.test_chain import ADDRS, CONFIG, KEYS, L2_TIME, FakeRollup
from tests.sequencer.test_reorg import ForkableL1

TTL_S = 1.0
WAIT_S = 20.0


class SharedL1(ForkableL1):
    """One sequencer's view (its own account, its own confirmations) of an L1 shared with others;
    like the Rollup, it refuses a batch not built on the tip."""

    def __init__(self, rollup: FakeRollup, log: list[L1Event], forks: list[int], n: int, confirmations: int):
        super().__init__(rollup, confirmations)
        self.log, self.forks = log, forks
        self.address = bytes([0xA0 + n]) * 20
        self.attempts = 0
        """Appends tried, refused or not."""

    def append_batch(
        self,
        txs: list[bytes],
        roots: list[bytes],
        prev_root: bytes,
        queue_start: int,
        queue_end: int,
        l2_time: int,
    ) -> Mined:
        self.attempts += 1
        if self.rollup.batches and prev_root != self.rollup.batches[-1].header.post_root:
            raise TransactionReverted("append_batch", REFUSED_PREV_ROOT)
        return super().append_batch(txs, roots, prev_root, queue_start, queue_end, l2_time)


@dataclass
class L1:
    """The shared L1: its batches, queue and blocks."""

    rollup: FakeRollup = field(default_factory=FakeRollup)
    log: list[L1Event] = field(default_factory=list)
    forks: list[int] = field(default_factory=list)

    def view(self, n: int, confirmations: int) -> SharedL1:
        return SharedL1(self.rollup, self.log, self.forks, n, confirmations)

    def fillers(self, count: int) -> None:
        """`count` more blocks (deposits to an account the tests do not look at)."""
        for _ in range(count):
            self.view(9, 0).filler()

    def on_l1(self) -> list[bytes]:
        return [tx_hash(raw) for b in self.rollup.batches for raw in b.txs]


@dataclass
class Seq:
    """One member of the set: its node over its view of the L1, and the member."""

    l1: SharedL1
    node: SequencerNode
    member: Member
    deposed: list[str]

    async def poll(self) -> None:
        """Fold the L1 up to what this member's read reaches."""
        while await self.node.follower.poll() or not self.node.follower.cursor.caught_up:
            pass

    async def transfer(self, key: int, amount: int, nonce: int) -> bytes:
        h, _ = await self.node.admit_tx(sign_transfer(KEYS[key], ADDRS[2], amount, nonce, CONFIG))
        return h

    def status(self, h: bytes) -> str:
        row = self.node.store.get(h)
        assert row is not None
        return row.status


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"not within {WAIT_S}s: {what}"
        await asyncio.sleep(0.01)


@asynccontextmanager
async def set_of(
    cluster: NatsCluster, tmp_path: Path, l1: L1, confirmations: list[int]
) -> AsyncIterator[Callable[[int], Awaitable[Seq]]]:
    """Start members one by one (`join(n)`) on a log and lease of their own; all stopped at the end."""
    stream, bucket = unique("LOG"), unique("LEASE")
    joined: list[tuple[Seq, object]] = []

    async def join(n: int) -> Seq:
        name = f"member-{n}"
        nc = await connect(cluster.urls, name)
        view = l1.view(n, confirmations[n])
        node = SequencerNode(
            CONFIG,
            Store(tmp_path / f"{name}.sqlite"),
            view,
            view,
            start_block=1,
            options=NodeOptions(in_set=True),
        )
        deposed: list[str] = []
        lease = await Lease.open(nc, name, TTL_S, bucket)
        member = Member(
            node, await ReplicatedLog.open(nc, stream), lease, MemberOptions(name), deposed.append
        )
        node.attach_member(member)
        seq = Seq(view, node, member, deposed)
        joined.append((seq, nc))
        await node.start()
        member.start()
        return seq

    try:
        yield join
    finally:
        for seq, nc in joined:
            await seq.member.stop()
            await nc.close()  # type: ignore[attr-defined]
            seq.node.store.close()


async def logged(seq: Seq) -> list[BatchPosted]:
    """The BatchPosted entries of the set's log."""
    entries = [decode_entry(r.data) for r in await seq.member.log.read(0)]
    return [e for e in entries if isinstance(e, BatchPosted)]


async def leader_and_follower(join: Callable[[int], Awaitable[Seq]], l1: L1) -> tuple[Seq, Seq]:
    """Member 0 leads and posts the deposits; member 1 follows, its L1 read past that batch."""
    for addr in ADDRS[:2]:
        l1.view(9, 0).deposit(addr, 1_000)
    a = await join(0)
    await until(a.member.leading, "member 0 leads")
    b = await join(1)
    assert await a.node.poster.build_and_post()  # the deposits
    l1.fillers(b.l1.confirmations)
    await b.poll()
    assert len(b.node.chain.batches) == 1
    return a, b


Story = Callable[[L1, Seq, Seq], Awaitable[None]]


def run_set(cluster: NatsCluster, tmp_path: Path, confirmations: list[int], story: Story) -> None:
    """`story(l1, leader, follower)` on a set of two members (`leader_and_follower`)."""
    l1 = L1()

    async def scenario() -> None:
        async with set_of(cluster, tmp_path, l1, confirmations) as join:
            a, b = await leader_and_follower(join, l1)
            await story(l1, a, b)

    asyncio.run(scenario())


async def batches_logged(seq: Seq, count: int) -> list[BatchPosted]:
    """Wait until the set's log holds `count` BatchPosted entries; returns them."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while len(entries := await logged(seq)) < count:
        assert asyncio.get_running_loop().time() < deadline, (
            f"not {count} BatchPosted entries within {WAIT_S}s"
        )
        await asyncio.sleep(0.02)
    return entries


async def applied_everything(a: Seq, b: Seq) -> None:
    """Wait until the follower applied the log to its end (the leader's BatchPosted included)."""
    end = await a.member.log.last_seq()
    await until(lambda: b.member.applier.applied.position == end, "the follower applied the log")


async def fail_over(a: Seq, b: Seq) -> None:
    """The leader goes (its lease given back); the follower takes over."""
    await a.member.stop()
    await until(b.member.leading, "member 1 leads")


def test_batch_log__leader_posts__batch_posted_logged_applied_and_new_leader_waits_instead_of_reposting(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    async def story(l1: L1, a: Seq, b: Seq) -> None:
        sent = [await a.transfer(0, 100, 0), await a.transfer(1, 50, 0)]
        assert await a.node.poster.build_and_post()
        await until(lambda: len(l1.rollup.batches) == 2, "the batch on L1")
        entries = await batches_logged(a, 2)
        tip = l1.rollup.batches[1]
        assert [e.batch_index for e in entries] == [0, 1]
        assert entries[0].seqs == ()  # the deposits: queue entries only
        assert entries[1] == BatchPosted(
            1,
            tip.l1_block,
            l1.rollup.batches[0].header.post_root,
            tip.header.post_root,
            b"\x01" * 32,
            tuple(a.node.store.get(h).seq for h in sent),  # type: ignore[union-attr]
        )
        await applied_everything(a, b)
        # member 1 reads the L1 two blocks deep: the batch is beyond its read, so in flight
        assert set(b.member.batches.in_flight) == {1}
        assert [b.status(h) for h in sent] == ["pending", "pending"]

        await fail_over(a, b)
        assert not await b.node.poster.build_and_post()  # it waits for the batch on L1
        assert b.l1.attempts == 0 and b.member.batches.waiting()
        l1.fillers(2)
        await b.poll()
        assert not b.member.batches.waiting() and [b.status(h) for h in sent] == ["batched"] * 2
        later = await b.transfer(0, 10, 1)
        assert await b.node.poster.build_and_post()  # the fillers' deposits and `later`
        assert b.l1.attempts == 1 and len(l1.rollup.batches) == 3
        assert l1.on_l1().count(later) == 1 and all(l1.on_l1().count(h) == 1 for h in sent)
        l1.fillers(2)
        await b.poll()
        assert len(b.node.chain.batches) == 3 and b.status(later) == "batched"
        assert state_root(b.node.chain.state) == l1.rollup.batches[-1].header.post_root

    run_set(nats_cluster, tmp_path, [0, 2], story)


def test_batch_log__logged_batch_never_landed__new_leader_posts_its_transactions(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    async def story(l1: L1, a: Seq, b: Seq) -> None:
        before = l1.view(9, 0).snapshot()
        sent = await a.transfer(0, 100, 0)
        assert await a.node.poster.build_and_post()
        await batches_logged(a, 2)
        await applied_everything(a, b)
        assert 1 in b.member.batches.in_flight
        await fail_over(a, b)
        l1.view(9, 0).revert(before)  # the L1 reorganises: the old leader's batch is gone
        l1.fillers(3)
        await b.poll()  # its read passes the block that held the batch: it never landed
        assert not b.member.batches.waiting() and b.status(sent) == "pending"
        assert await b.node.poster.build_and_post()
        assert l1.on_l1().count(sent) == 1 and l1.rollup.batches[-1].header.sequencer == b.l1.address
        l1.fillers(2)
        await b.poll()
        assert b.status(sent) == "batched"
        entries = await logged(b)
        assert entries[-1].batch_index == 1 and entries[-1].seqs == (b.node.store.get(sent).seq,)  # type: ignore[union-attr]

    run_set(nats_cluster, tmp_path, [0, 2], story)


def test_batch_log__new_leader_that_must_rebuild__waits_for_its_l1_read__drops_nothing(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """A new leader that must rebuild its view (it could not follow the log) plans its pending
    work on its L1 tip only once its read has reached the batches the log says were appended: on
    an older tip the deposit that funds a pending transfer would be missing, and it would drop
    an acknowledged transfer."""

    async def story(l1: L1, a: Seq, b: Seq) -> None:
        l1.view(9, 0).deposit(ADDRS[3], 1_000)
        await a.poll()
        funded = await a.transfer(3, 100, 0)  # needs the deposit
        assert await a.node.poster.build_and_post()  # the deposit and the transfer
        await batches_logged(a, 2)
        await applied_everything(a, b)
        assert b.member.batches.waiting() and b.status(funded) == "pending"
        b.member.applier.dirty = True  # (a member that could not follow the log: it rebuilds)
        await a.member.stop()
        await until(lambda: b.member.role in ("candidate", "leader"), "member 1 takes the lease")
        await asyncio.sleep(0.3)
        assert b.member.role == "candidate" and b.status(funded) == "pending"  # waiting for L1
        l1.fillers(2)
        await b.poll()
        await until(b.member.leading, "member 1 leads")
        assert b.status(funded) == "batched" and not b.deposed

    run_set(nats_cluster, tmp_path, [0, 2], story)


def test_member__slashed_on_l1__stops_leading_and_acknowledging_at_once_and_never_leads_again(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    async def story(l1: L1, a: Seq, b: Seq) -> None:
        await a.transfer(0, 100, 0)
        assert await a.node.poster.build_and_post()
        l1.log.append(l1.rollup.revert_from(1))  # a fraud proof against member 0's batch
        await a.poll()
        assert a.member.role == "deposed" and a.deposed and "slashed" in a.deposed[0]
        assert not a.member.leading()
        with pytest.raises(NotLeader):
            await a.transfer(1, 50, 0)
        attempts = a.l1.attempts
        assert not await a.node.poster.build_and_post() and a.l1.attempts == attempts
        assert a.node.health()["ok"] is False
        await until(b.member.leading, "member 1 takes the lapsed lease")
        assert a.member.role == "deposed"

    run_set(nats_cluster, tmp_path, [0, 0], story)


def test_take_over__stuck__deposed_within_the_limit__the_lease_goes_to_another_member(
    nats_cluster: NatsCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(member_module, "TAKE_OVER_LIMIT_S", 1.0)
    l1 = L1()

    async def scenario() -> None:
        async with set_of(nats_cluster, tmp_path, l1, [0, 0, 0]) as join:
            a, b = await leader_and_follower(join, l1)
            b.member.applier.dirty = True  # its take-over rebuilds the view, under the follower's lock
            async with b.node.follower.lock:  # held: the take-over cannot end
                await a.member.stop()  # the leader goes, its lease given back
                await until(lambda: bool(b.deposed), "member 1 deposed")
            assert "did not end within 1 s" in b.deposed[0] and not b.member.leading()
            c = await join(2)
            await until(c.member.leading, "member 2 takes the lapsed lease")
            assert b.member.role == "deposed"

    asyncio.run(scenario())


def test_poster__another_batch_extended_the_root_first__superseded_counted_no_health_error_then_posts_on_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lone node whose batch meets a tip another sequencer's batch moved (as after a failover,
    a double post): the refusal is expected; it counts it, logs it at info, keeps /health clean,
    and its next batch goes on the new tip."""
    l1 = L1()
    for addr in ADDRS[:2]:
        l1.view(9, 0).deposit(addr, 1_000)
    view = l1.view(0, 0)
    store = Store(tmp_path / "lone.sqlite")
    node = SequencerNode(CONFIG, store, view, view, start_block=1)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(node.start())
        assert loop.run_until_complete(node.poster.build_and_post())  # the deposits
        ours, _ = loop.run_until_complete(node.admit_tx(sign_transfer(KEYS[0], ADDRS[2], 100, 0, CONFIG)))
        theirs = sign_transfer(KEYS[1], ADDRS[2], 70, 0, CONFIG)
        raw = encode_tx(theirs)
        chain = node.chain
        built = build_batch(
            chain.state, chain.queue, [PendingTx(0, tx_hash(raw), raw, theirs)], CONFIG, l2_time=L2_TIME
        )
        assert built is not None
        l1.log.append(l1.rollup.append(built, b"\xbb" * 20))  # another member's batch, not read yet
        before = REGISTRY.get_sample_value("rollup_batches_superseded_total") or 0.0
        capsys.readouterr()

        assert not loop.run_until_complete(node.poster.build_and_post())
        assert view.attempts == 2 and len(l1.rollup.batches) == 2
        assert REGISTRY.get_sample_value("rollup_batches_superseded_total") == before + 1
        assert node.poster.superseded == 1
        events = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
        superseded = [e for e in events if e["event"] == "batch_superseded"]
        assert [(e["level"], e["index"], e["txs"]) for e in superseded] == [("info", 1, 1)]
        assert not any(
            e["level"] in ("warning", "error") and e["event"].startswith("batch_post") for e in events
        )
        health = node.health()
        assert health["last_error"] is None  # (its loops are not running: the test drives them)
        assert {r["code"] for r in health.get("reasons", [])} <= {"loop_stopped"}
        assert len(chain.batches) == 2  # it folded the batch that took the tip

        assert loop.run_until_complete(node.poster.build_and_post())  # planned again on the new tip
        assert [tx_hash(r) for r in l1.rollup.batches[-1].txs] == [ours] and store.get(
            ours
        ).status == "batched"  # type: ignore[union-attr]
        assert state_root(chain.state) == l1.rollup.batches[-1].header.post_root
    finally:
        loop.close()
        store.close()
