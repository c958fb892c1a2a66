"""A member of a sequencer set that does not lead keeps its view (the tip, the L1 queue entries no
batch has consumed yet, the log's pending transactions) complete however its L1 reads fall: a
deposit read in the same poll as the leader's batch that consumes it is in the view, and so is
every queue entry after it; the member that then leads admits what the deposit pays for. A view
that lacks an entry the tip consumed, however it came to, is rebuilt on the tip by the next read."""

from __future__ import annotations

from pathlib import Path

from contracts.follow import POLL_RANGE_BLOCKS
from sequencer.builder import build_batch
from sequencer.cluster.entries import encode_commit, encode_round
from sequencer.cluster.log import Record
from sequencer.journal import Commit, TxRow
from sequencer.mempool import PendingTx
from sequencer.replication import Applier
from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.state import get_account, get_next_deposit_index
from tests.sequencer.test_chain import ADDRS, CONFIG, KEYS, L2_TIME
from tests.sequencer.test_reorg import FOREIGN, Net, foreign_batch

DEPOSIT = 1_000


def leaders_batch(net: Net) -> None:
    """The set's leader appends a batch of the queue entries this member has not read yet."""
    chain = net.node.chain
    queue = {e.index: e for e in net.l1.rollup.queue}
    built = build_batch(chain.state, queue, [], CONFIG, l2_time=L2_TIME)
    assert built is not None
    net.l1.log.append(net.l1.rollup.append(built, FOREIGN))


def test_set_member__deposit_and_the_batch_consuming_it_in_one_read__the_view_holds_the_deposit(
    tmp_path: Path,
) -> None:
    net = Net(tmp_path, in_set=True)
    try:
        assert net.post()  # the first deposits, batched while this member led
        net.node.follower.leads = lambda: False
        net.node.mempool.replica = True
        net.node.follower.cursor.window_blocks = POLL_RANGE_BLOCKS  # as in production: many blocks a read
        net.l1.deposit(ADDRS[3], DEPOSIT)
        leaders_batch(net)
        net.poll()  # the deposit and its batch in one read
        chain, view = net.node.chain, net.node.mempool.view
        assert get_account(chain.state, ADDRS[3]).collateral == DEPOSIT
        assert get_account(view, ADDRS[3]).collateral == DEPOSIT
        assert get_next_deposit_index(view) == get_next_deposit_index(chain.state)

        net.l1.deposit(ADDRS[2], DEPOSIT)  # the next entry, read alone: due, so in the view too
        net.poll()
        assert get_account(net.node.mempool.view, ADDRS[2]).collateral == DEPOSIT

        net.node.follower.leads = lambda: True  # this member leads: the deposit pays
        net.node.mempool.replica = False
        net.admit(3, DEPOSIT, 0)
        assert get_account(net.node.mempool.view, ADDRS[3]).collateral == 0
    finally:
        net.close()


def test_set_member__view_missing_a_consumed_queue_entry__rebuilt_on_the_tip_at_once(tmp_path: Path) -> None:
    """Whatever path loses a queue entry from the view (here: none is added during the read), the
    fold that finds the view's queue index behind the tip's rebuilds the view on the tip."""
    net = Net(tmp_path, in_set=True)
    try:
        assert net.post()
        net.node.follower.leads = lambda: False
        net.node.mempool.replica = True
        net.node.follower.cursor.window_blocks = POLL_RANGE_BLOCKS
        follower = net.node.follower
        follower._add_new_deposits = lambda: None  # type: ignore[method-assign]
        net.l1.deposit(ADDRS[3], DEPOSIT)
        leaders_batch(net)
        net.poll()
        view = net.node.mempool.view
        assert get_account(view, ADDRS[3]).collateral == DEPOSIT
        assert get_next_deposit_index(view) == get_next_deposit_index(net.node.chain.state)
    finally:
        net.close()


def test_set_member__revert_and_the_leaders_batch_taking_its_tx_back_in_one_read__batched_not_dropped(
    tmp_path: Path,
) -> None:
    """The log brought a transaction this member had read in another sequencer's batch; one L1
    read then brings that batch's revert and the leader's batch that holds the transaction again.
    The transaction is batched in the leader's batch, not left pending on the tip that holds it
    (where planning it again would drop it as a double spend) and the view counts it once."""
    net = Net(tmp_path, in_set=True)
    try:
        assert net.post()  # the deposits
        net.node.follower.leads = lambda: False
        net.node.mempool.replica = True
        net.node.follower.cursor.window_blocks = POLL_RANGE_BLOCKS
        tx = sign_transfer(KEYS[1], ADDRS[2], 100, 0, CONFIG)
        raw = encode_tx(tx)
        h = tx_hash(raw)
        foreign_batch(net, 1, 100, wrong=True)  # the faulty sequencer's batch 1 holds it
        net.poll()
        applier = Applier(net.store, net.node.mempool, net.node.follower.included_on_l1)
        row = TxRow(seq=1, clock=L2_TIME + 1, deadline=L2_TIME + 1, raw=raw)
        applier.apply(Record(1, encode_round(1, [encode_commit(Commit((row,)))])))  # the leader's log
        assert net.status(h) == ("batched", 1)

        chain = net.node.chain
        net.l1.log.append(net.l1.rollup.revert_from(1))
        built = build_batch(chain.state, chain.queue, [PendingTx(1, h, raw, tx)], CONFIG, l2_time=L2_TIME)
        assert built is not None
        net.l1.log.append(net.l1.rollup.append(built, FOREIGN))  # the leader's batch 1, same read
        net.poll()
        assert net.node.chain.fraud is None and len(net.node.chain.batches) == 2
        assert net.status(h) == ("batched", 1)
        assert net.node.mempool.pending == []
        assert get_account(net.node.mempool.view, ADDRS[1]).nonce == 1
    finally:
        net.close()
