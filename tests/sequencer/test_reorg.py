"""A sequencer node over an in-memory L1 that reorganises: a batch of ours that vanishes is posted
again, one replaced by another sequencer's is posted after it, a revert taken back puts the
reverted batch's transactions back in it; with confirmations, the poster waits for its batch to be
read, and posts again what a reorganisation above the confirmation depth took out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from devnet.faulty import corrupt
from sequencer.builder import build_batch
from sequencer.cluster.entries import encode_commit, encode_round
from sequencer.cluster.log import Record
from sequencer.journal import Commit, TxRow
from sequencer.mempool import PendingTx
from sequencer.node import NodeOptions, SequencerNode
from sequencer.replication import Applier
from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.state import get_account, state_root
from sequencer.store import Store
from tests.contracts.test_follow import block_hash
from tests.sequencer.test_api import FakeL1
from tests.sequencer.test_chain import ADDRS, CONFIG, KEYS, L2_TIME, FakeRollup

FOREIGN = b"\xbb" * 20
T = TypeVar("T")
Snapshot = tuple[int, list[Any], list[Any], int]


class ForkableL1(FakeL1):
    """`FakeL1` (block n holds event n) whose blocks have hashes, read `confirmations` deep, with
    `snapshot` and `revert` as anvil's `evm_snapshot` and `evm_revert`: the blocks after the
    snapshot are gone, and the blocks that take their numbers have new hashes."""

    def __init__(self, rollup: FakeRollup, confirmations: int = 0) -> None:
        super().__init__(rollup)
        self.confirmations = confirmations
        self.forks: list[int] = []

    def head_block(self) -> int:
        return max(0, len(self.log) - self.confirmations)

    def block_hash(self, number: int) -> bytes | None:
        return block_hash(number, self.forks) if number <= len(self.log) else None

    def snapshot(self) -> Snapshot:
        r = self.rollup
        return (len(self.log), list(r.batches), list(r.queue), r.block)

    def revert(self, snapshot: Snapshot) -> None:
        blocks, batches, queue, block = snapshot
        del self.log[blocks:]
        self.rollup.batches, self.rollup.queue, self.rollup.block = batches, queue, block
        self.forks.append(blocks)

    def filler(self) -> None:
        """One more block (a deposit to an account the tests do not look at)."""
        self.deposit(ADDRS[3], 1)


class Net:
    """A started node over a `ForkableL1`, with its deposits batched."""

    def __init__(self, tmp_path: Path, confirmations: int = 0, *, in_set: bool = False) -> None:
        self.l1 = ForkableL1(FakeRollup(), confirmations)
        for addr in ADDRS[:2]:
            self.l1.deposit(addr, 1_000)
        for _ in range(confirmations):
            self.l1.filler()
        self.store = Store(tmp_path / "seq.sqlite")
        options = NodeOptions(in_set=in_set)
        self.node = SequencerNode(CONFIG, self.store, self.l1, self.l1, start_block=1, options=options)
        self.node.follower.cursor.window_blocks = 1  # remember every block
        self.loop = asyncio.new_event_loop()
        self.run(self.node.start())

    def run(self, step: Awaitable[T]) -> T:
        return self.loop.run_until_complete(step)

    def admit(self, key: int, amount: int, nonce: int) -> bytes:
        h, _ = self.run(self.node.admit_tx(sign_transfer(KEYS[key], ADDRS[2], amount, nonce, CONFIG)))
        return h

    def post(self) -> bool:
        return self.run(self.node.poster.build_and_post())

    def poll(self) -> None:
        while self.run(self.node.follower.poll()) or not self.node.follower.cursor.caught_up:
            pass

    def status(self, h: bytes) -> tuple[str, int | None]:
        row = self.store.get(h)
        assert row is not None
        return row.status, row.batch_index

    def on_l1(self) -> list[bytes]:
        return [tx_hash(raw) for b in self.l1.rollup.batches for raw in b.txs]

    def agrees_with_l1(self) -> bool:
        chain = self.node.chain
        tip = self.l1.rollup.batches[-1].header
        return chain.valid_count == len(self.l1.rollup.batches) and state_root(chain.state) == tip.post_root

    def close(self) -> None:
        self.loop.close()
        self.store.close()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path)
    assert n.post()  # the deposits
    yield n
    n.close()


def foreign_batch(net: Net, key: int, amount: int, *, wrong: bool = False) -> None:
    """Another sequencer appends a batch with one transfer of `KEYS[key]` on the L1's tip (with a
    wrong root when `wrong`)."""
    chain = net.node.chain
    tx = sign_transfer(KEYS[key], ADDRS[2], amount, 0, CONFIG)
    raw = encode_tx(tx)
    pending = [PendingTx(0, tx_hash(raw), raw, tx)]
    built = build_batch(chain.state, chain.queue, pending, CONFIG, l2_time=L2_TIME)
    assert built is not None
    net.l1.log.append(net.l1.rollup.append(corrupt(built, root_at=0) if wrong else built, FOREIGN))


def test_reorg__our_batch_taken_out__its_txs_pending_again_then_posted_again(net: Net) -> None:
    before = net.l1.snapshot()
    h = net.admit(0, 250, 0)
    assert net.post() and net.status(h) == ("batched", 1)
    net.l1.revert(before)  # the L1 forgets the block with batch 1
    net.poll()
    assert net.node.follower.cursor.reorgs == 1 and len(net.node.chain.batches) == 1
    assert net.status(h) == ("pending", None) and [p.hash for p in net.node.mempool.pending] == [h]
    assert net.node.health()["l1"]["reorgs"] == 1
    assert net.post() and net.status(h) == ("batched", 1) and net.on_l1().count(h) == 1
    assert net.agrees_with_l1() and get_account(net.node.chain.state, ADDRS[2]).collateral == 250


def test_reorg__our_batch_replaced_by_another_sequencers__ours_posted_after_it(net: Net) -> None:
    before = net.l1.snapshot()
    h = net.admit(0, 250, 0)
    assert net.post() and net.status(h) == ("batched", 1)
    net.l1.revert(before)
    net.poll()
    foreign_batch(net, 1, 100)  # in the new history, batch 1 is another sequencer's
    net.poll()
    assert net.node.chain.batches[1].header.sequencer == FOREIGN
    assert net.status(h) == ("pending", None)
    assert net.post() and net.status(h) == ("batched", 2)
    assert net.agrees_with_l1() and get_account(net.node.chain.state, ADDRS[2]).collateral == 350


def test_reorg__revert_taken_back__reverted_txs_batched_again_and_nothing_built_on_the_fraud(
    net: Net,
) -> None:
    foreign_batch(net, 1, 100, wrong=True)
    net.poll()
    assert net.node.chain.fraud is not None
    before = net.l1.snapshot()
    net.l1.log.append(net.l1.rollup.revert_from(1))
    net.poll()
    (readmitted,) = [p.hash for p in net.node.mempool.pending]  # the other sequencer's transfer
    net.l1.revert(before)  # the proof and its revert are taken out
    net.poll()
    assert net.node.chain.fraud is not None and net.node.mempool.pending == []
    assert net.status(readmitted) == ("batched", 1) and net.post() is False
    net.l1.log.append(net.l1.rollup.revert_from(1))  # proven again
    net.poll()
    assert net.status(readmitted) == ("pending", None)
    assert net.post() and net.status(readmitted) == ("batched", 1) and net.agrees_with_l1()


@pytest.mark.parametrize("taken_out", ["revert", "reorg"])
def test_set_member__foreign_batch_seen_before_the_log_then_taken_out__the_log_brings_its_tx_pending(
    tmp_path: Path, taken_out: str
) -> None:
    """A member of a set remembers the transactions of a batch it read before its log brought
    them; once that batch is reverted (or reorganised away) they are no longer batched in it, so
    when the leader takes them back into the log they are pending here and the view holds them
    (the next nonce counts them)."""
    net = Net(tmp_path, in_set=True)
    try:
        assert net.post()  # the deposits
        net.node.follower.leads = lambda: False
        before = net.l1.snapshot()
        foreign_batch(net, 1, 100, wrong=taken_out == "revert")
        net.poll()
        raw = encode_tx(sign_transfer(KEYS[1], ADDRS[2], 100, 0, CONFIG))
        assert net.node.follower.included_on_l1(tx_hash(raw)) == 1
        if taken_out == "revert":
            net.l1.log.append(net.l1.rollup.revert_from(1))
        else:
            net.l1.revert(before)
            net.l1.filler()
        net.poll()
        assert len(net.node.chain.batches) == 1
        applier = Applier(net.store, net.node.mempool, net.node.follower.included_on_l1)
        row = TxRow(seq=1, clock=L2_TIME + 1, deadline=L2_TIME + 1, raw=raw)
        applier.apply(Record(1, encode_round(1, [encode_commit(Commit((row,)))])))
        assert net.status(tx_hash(raw)) == ("pending", None)
        assert get_account(net.node.mempool.view, ADDRS[1]).nonce == 1
        assert net.node.views.account_view(ADDRS[1]).pending_nonce == 1
    finally:
        net.close()


def test_confirmations__our_batch_read_blocks_later__the_next_waits_for_it_without_failing(
    tmp_path: Path,
) -> None:
    net = Net(tmp_path, confirmations=2)
    try:
        assert net.post()  # the deposits, in block 5 (read once block 7 is mined)
        h = net.admit(0, 250, 0)
        assert net.post() is False and net.l1.appends == 1  # waits: batch 0 is not read yet
        net.l1.filler()
        net.l1.filler()
        net.poll()
        assert net.node.follower.in_flight is None and len(net.node.chain.batches) == 1
        assert net.post() and net.l1.appends == 2 and net.node.loop_health.errors == {}
        assert net.status(h) == ("pending", None)  # on L1, not read yet
        net.l1.filler()
        net.l1.filler()
        net.poll()
        assert net.status(h) == ("batched", 1) and net.agrees_with_l1()
    finally:
        net.close()


def test_confirmations__our_batch_taken_out_above_the_depth__posted_again_once_read_past(
    tmp_path: Path,
) -> None:
    net = Net(tmp_path, confirmations=2)
    try:
        before = net.l1.snapshot()
        assert net.post() and net.l1.appends == 1
        net.l1.revert(before)  # block 5 not read yet: the follower sees no reorganisation
        for _ in range(3):  # block 5 again (without the batch), read once block 7 is mined
            net.l1.filler()
        net.poll()
        assert net.node.follower.cursor.reorgs == 0 and net.node.chain.batches == []
        assert net.node.follower.in_flight is None  # read past its block without it: given up
        assert net.post() and net.l1.appends == 2
        net.l1.filler()
        net.l1.filler()
        net.poll()
        assert len(net.node.chain.batches) == 1 and net.agrees_with_l1()
    finally:
        net.close()
