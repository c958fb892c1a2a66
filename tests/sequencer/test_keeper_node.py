"""The sequencer's keeper over a real node on the in-memory L1: the risk view a liquidation bot
reads, funding steps when due, auto-deleveraging of a bankrupt account, and fault injection by
transaction type (tests and demo only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from exchange_fixtures import BTC, BTC_PARAMS, COMMITTEE, ETH, ETH_PARAMS, TRADERS, liquidate, order, price

from sequencer.node import NodeOptions
from sequencer.stf.codec import encode_message
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL, TX_TYPE_FILL
from sequencer.stf.errors import InvalidBatch
from sequencer.stf.keys import account_key
from sequencer.stf.margin import read_acct
from sequencer.stf.state import copy_state, get_account, get_markets
from sequencer.stf.transition import REASON_STATE_ROOT, check_batch
from sequencer.stf.types import Deleverage, Funding, OracleUpdate, SetCommittee, SetMarket
from tests.sequencer.test_api_exchange import T0, ClockedL1, Net, body
from tests.sequencer.test_chain import FakeRollup

A, B, C, D = TRADERS[:4]
SIZE = 90_000
"""C buys 90,000 ETH units at 100 from D: 9,000,000 notional on 1,000,000 collateral (9x)."""


def make_net(path: Path, options: NodeOptions) -> Net:
    l1 = ClockedL1(FakeRollup())
    for message in (SetMarket(ETH, ETH_PARAMS), SetMarket(BTC, BTC_PARAMS), SetCommittee(COMMITTEE)):
        l1.log.append(l1.rollup.message(encode_message(message)))
    for trader in (A, B, C, D):
        l1.deposit(trader, 1_000_000)
    n = Net(path, l1, options)
    assert n.post_batch()
    for market, mark in ((ETH, 100), (BTC, 5000)):
        n.node.submit(OracleUpdate(market, tuple(price(i, market, mark, mark, T0) for i in range(3))))
    assert n.post_batch()
    return n


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = make_net(tmp_path / "seq.sqlite", NodeOptions(max_pending=200))
    yield n
    n.close()


def leverage_c(n: Net) -> None:
    """D rests an ask of 90,000 at 100; C lifts it: C long, D short, both in a batch."""
    assert n.client.post("/v1/orders", json=body(order(3, ETH, SIDE_SELL, 100, SIZE))).status_code == 200
    placed = n.client.post("/v1/orders", json=body(order(2, ETH, SIDE_BUY, 100, SIZE))).json()
    assert placed["status"] == "filled"
    assert n.post_batch()


def move_eth(n: Net, mark: int, at: int) -> None:
    """The committee prices ETH at `mark` at clock `at`."""
    n.node.clock = lambda: at
    n.node.submit(OracleUpdate(ETH, tuple(price(i, ETH, mark, mark, at) for i in range(3))))


def test_risk__lists_an_account_below_maintenance_and_the_liquidation_that_restores_it(net: Net) -> None:
    leverage_c(net)
    assert net.client.get("/v1/risk").json()["candidates"] == []
    move_eth(net, 92, T0 + 5)  # C: equity 982,000 - 720,000 = 262,000 < maintenance 414,000
    risk = net.client.get("/v1/risk").json()
    assert risk["l2_time"] == T0 + 5
    (candidate,) = risk["candidates"]
    assert (candidate["account"], candidate["market"], candidate["bankrupt"]) == ("0x" + C.hex(), ETH, False)
    assert int(candidate["shortfall"]) == 414_000 - 262_000
    # each unit liquidated frees 92 * (5% - 1%) of margin: ceil(152,000 / 3.68) = 41,305 -> lots of 10
    assert candidate["size"] == 41_310
    net.node.submit(liquidate(0, C, ETH, candidate["size"]))
    assert net.client.get("/v1/risk").json()["candidates"] == []  # restored, as of the mempool
    assert net.post_batch()
    assert read_acct(net.node.chain.state.tree.get(account_key(C))).size(ETH) == SIZE - 41_310


def test_keeper__funding_steps_when_due_once_each(net: Net) -> None:
    later = T0 + ETH_PARAMS.funding_interval + 1
    assert net.node.keeper_step() == []  # not due yet
    move_eth(net, 100, later)
    net.node.submit(OracleUpdate(BTC, tuple(price(i, BTC, 5000, 5000, later) for i in range(3))))
    assert net.node.keeper_step() == [Funding(ETH), Funding(BTC)]
    assert net.node.keeper_step() == []  # already pending
    assert net.post_batch()
    markets = get_markets(net.node.chain.state)
    assert [m.last_funding_time for m in markets] == [T0 + 60, T0 + 60]


def test_keeper__deleverages_a_bankrupt_account_the_insurance_fund_cannot_cover(net: Net) -> None:
    leverage_c(net)
    move_eth(net, 85, T0 + 5)  # C: equity 982,000 - 1,350,000 < 0; the fund holds fees only
    (candidate,) = net.client.get("/v1/risk").json()["candidates"]
    assert candidate["bankrupt"]
    (admitted,) = net.node.keeper_step()
    assert admitted == Deleverage(C, D, ETH)
    assert net.post_batch()
    c = get_account(net.node.chain.state, C)
    assert c.positions == () and c.collateral >= 0
    assert (
        read_acct(net.node.chain.state.tree.get(account_key(D))).size(ETH) == 0
    )  # D's short absorbed C's long


def test_fault_injection_by_type__only_the_first_fill_root_is_wrong(tmp_path: Path) -> None:
    n = make_net(tmp_path / "faulty.sqlite", NodeOptions(max_pending=200, corrupt_tx_type=TX_TYPE_FILL))
    try:
        pre = copy_state(n.node.chain.state)
        l1_batches = len(n.l1.rollup.batches)
        assert n.client.post("/v1/orders", json=body(order(3, ETH, SIDE_SELL, 100, 1_000))).status_code == 200
        assert n.client.post("/v1/orders", json=body(order(2, ETH, SIDE_BUY, 100, 1_000))).status_code == 200
        assert n.post_batch()
        batch = n.l1.rollup.batches[l1_batches]
        fill_at = next(i for i, raw in enumerate(batch.txs) if raw[0] == TX_TYPE_FILL)
        with pytest.raises(InvalidBatch) as info:
            check_batch(
                pre,
                batch.header,
                list(batch.txs),
                list(batch.roots),
                n.node.chain.context(batch),
                n.node.config,
            )
        assert (info.value.reason, info.value.tx_index) == (REASON_STATE_ROOT, fill_at)
        assert n.node.faults_left == 0  # one fault, spent on the batch holding a fill
    finally:
        n.close()
