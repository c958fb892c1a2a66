"""A member of a sequencer set that does not lead keeps its view (the tip, the L1 queue entries no
batch has consumed yet, the log's pending transactions) complete however its L1 reads fall: a
deposit read in the same poll as the leader's batch that consumes it is in the view, and so is
every queue entry after it; the member that then leads admits what the deposit pays for. A view
that lacks an entry the tip consumed, however it came to, is rebuilt on the tip by the next read."""

from __future__ import annotations

from pathlib import Path

from contracts.follow import POLL_RANGE_BLOCKS
from sequencer.builder import build_batch
from sequencer.stf.state import get_account, get_next_deposit_index
from tests.sequencer.test_chain import ADDRS, CONFIG, L2_TIME
from tests.sequencer.test_reorg import FOREIGN, Net

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
