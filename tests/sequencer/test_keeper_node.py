"""The sequencer's keeper over a real node on the in-memory L1: the risk view a liquidation bot
reads, funding steps when due, auto-deleveraging of a bankrupt account, and fault injection by
transaction type (tests and demo only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from exchange_fixtures import BTC, BTC_PARAMS, COMMITTEE, ETH, ETH_PARAMS, TRADERS, liquidate, order, price

from devnet.faulty import Fault, FaultyNode
from sequencer.node import NodeOptions, SequencerNode
from sequencer.stf.codec import encode_message, encode_tx, tx_hash
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL, TX_TYPE_FILL
from sequencer.stf.errors import InvalidBatch
from sequencer.stf.keys import account_key
from sequencer.stf.margin import read_acct
from sequencer.stf.state import copy_state, get_account, get_markets, set_markets
from sequencer.stf.transition import REASON_STATE_ROOT, check_batch
from sequencer.stf.types import Deleverage, Funding, L1Context, OracleUpdate, SetCommittee, SetMarket
from tests.sequencer.test_api_exchange import T0, ClockedL1, Net, body
from tests.sequencer.test_chain import FakeRollup

A, B, C, D = TRADERS[:4]
SIZE = 90_000
"""C buys 90,000 ETH units at 100 from D: 9,000,000 notional on 1,000,000 collateral (9x)."""


def make_net(path: Path, options: NodeOptions, node: Callable[..., SequencerNode] = SequencerNode) -> Net:
    l1 = ClockedL1(FakeRollup())
    for message in (SetMarket(ETH, ETH_PARAMS), SetMarket(BTC, BTC_PARAMS), SetCommittee(COMMITTEE)):
        l1.log.append(l1.rollup.message(encode_message(message)))
    for trader in (A, B, C, D):
        l1.deposit(trader, 1_000_000)
    n = Net(path, l1, options, node)
    assert n.post_batch()
    for market, mark in ((ETH, 100), (BTC, 5000)):
        n.node.intake.submit(OracleUpdate(market, tuple(price(i, market, mark, mark, T0) for i in range(3))))
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
    n.node.l2clock.wall = lambda: at
    n.node.intake.submit(OracleUpdate(ETH, tuple(price(i, ETH, mark, mark, at) for i in range(3))))


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
    net.node.intake.submit(liquidate(0, C, ETH, candidate["size"]))
    assert net.client.get("/v1/risk").json()["candidates"] == []  # restored, as of the mempool
    assert net.post_batch()
    assert read_acct(net.node.chain.state.tree.get(account_key(C))).size(ETH) == SIZE - 41_310


def test_keeper__funding_steps_when_due_once_each(net: Net) -> None:
    later = T0 + ETH_PARAMS.funding_interval + 1
    assert net.node.upkeep.step() == []  # not due yet
    move_eth(net, 100, later)
    net.node.intake.submit(OracleUpdate(BTC, tuple(price(i, BTC, 5000, 5000, later) for i in range(3))))
    assert net.node.upkeep.step() == [Funding(ETH, T0), Funding(BTC, T0)]  # the period from T0
    assert net.node.upkeep.step() == []  # already pending
    assert net.post_batch()
    markets = get_markets(net.node.chain.state)
    assert [m.last_funding_time for m in markets] == [T0 + 60, T0 + 60]


def price_both(n: Net, at: int) -> None:
    """The committee prices both markets at clock `at`, each mark above its index (ETH 1,010
    over 1,000: premium 5 at the cap of 50 bps; BTC 5,010 over 5,000: premium 10)."""
    n.node.l2clock.wall = lambda: at
    n.node.intake.submit(OracleUpdate(ETH, tuple(price(i, ETH, 1_010, 1_000, at) for i in range(3))))
    n.node.intake.submit(OracleUpdate(BTC, tuple(price(i, BTC, 5_010, 5_000, at) for i in range(3))))


def test_keeper__funding_steps_every_interval_of_many_each_its_own_transaction(net: Net) -> None:
    """Each interval's step names its period, so it is a new transaction (a new hash, a new
    acknowledgement), and every interval is paid: the bug was that every step of a market had one
    hash, so the sequencer answered the second with the first's acknowledgement and funding
    stopped after one round."""
    interval = ETH_PARAMS.funding_interval
    assert BTC_PARAMS.funding_interval == interval
    price_both(net, T0 + 1)
    assert net.post_batch()
    seqs: set[int] = set()
    for k in range(1, 7):
        price_both(net, T0 + k * interval + 1)
        steps = net.node.upkeep.step()
        assert steps == [Funding(ETH, T0 + (k - 1) * interval), Funding(BTC, T0 + (k - 1) * interval)]
        for step in steps:
            ack = net.client.get(f"/v1/transactions/0x{tx_hash(encode_tx(step)).hex()}").json()
            assert ack["status"] == "pending"
            seqs.add(ack["seq"])
        assert net.post_batch()
        markets = get_markets(net.node.chain.state)
        assert [m.last_funding_time for m in markets] == [T0 + k * interval] * 2
        assert [m.funding_index for m in markets] == [5 * k, 10 * k]
    assert len(seqs) == 12  # twelve steps, twelve acknowledgements


def test_funding_sent_by_hand__the_due_period_applies_other_periods_are_refused(net: Net) -> None:
    interval = ETH_PARAMS.funding_interval
    price_both(net, T0 + interval + 1)
    first = net.node.upkeep.step()[0]
    assert first == Funding(ETH, T0)
    assert net.post_batch()
    price_both(net, T0 + 2 * interval + 1)
    by_hand = Funding(ETH, T0 + interval)  # the period as GET /v1/markets shows it
    assert net.client.get("/v1/markets").json()[ETH]["last_funding_time"] == by_hand.since
    answer = net.client.post("/v1/transactions", json={"raw": "0x" + encode_tx(by_hand).hex()})
    assert answer.status_code == 200
    assert (
        answer.json()["hash"]
        == "0x" + tx_hash(encode_tx(by_hand)).hex()
        != "0x" + tx_hash(encode_tx(first)).hex()
    )
    # the first round's step again is that transaction (batched): its first acknowledgement
    again = net.client.post("/v1/transactions", json={"raw": "0x" + encode_tx(first).hex()}).json()
    status = net.client.get(f"/v1/transactions/{again['hash']}").json()
    assert again["hash"] == "0x" + tx_hash(encode_tx(first)).hex() and status["status"] == "batched"
    # a step of another period than the market's (BTC's is T0 + interval) is refused
    for since in (T0 - interval, T0 + interval - 1, T0 + interval + 1, T0 + 2 * interval):
        wrong = net.client.post("/v1/transactions", json={"raw": "0x" + encode_tx(Funding(BTC, since)).hex()})
        assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "funding_not_due", since
    assert net.post_batch()
    assert get_markets(net.node.chain.state)[ETH].last_funding_time == T0 + 2 * interval
    status = net.client.get(f"/v1/transactions/{answer.json()['hash']}").json()
    assert status["status"] == "batched"


def test_keeper__a_funding_step_dropped_after_a_rebase_is_revived_when_due_again(net: Net) -> None:
    """A pending step dropped by a rebase (here: its price stale on the state rebased onto) has
    the same bytes when it is due again: the keeper revives it instead of being refused it as
    dropped for ever."""
    later = T0 + ETH_PARAMS.funding_interval + 1
    price_both(net, later)
    assert net.post_batch()  # the prices are on the chain: only the steps are pending
    steps = net.node.upkeep.step()
    assert steps == [Funding(ETH, T0), Funding(BTC, T0)]
    stale = copy_state(net.node.chain.state)
    set_markets(stale, [replace(m, oracle_time=T0 - 3_600) for m in get_markets(stale)])
    mempool = net.node.mempool
    mempool.rebase(stale, [], L1Context(0, {}, later), [])
    hashes = [tx_hash(encode_tx(step)) for step in steps]
    assert [net.node.store.get(h).status for h in hashes] == ["dropped", "dropped"]  # type: ignore[union-attr]
    mempool.rebase(net.node.chain.state, [], L1Context(0, {}, later), [])
    assert net.node.upkeep.step() == steps  # the same bytes, pending again
    assert net.post_batch()
    assert [m.last_funding_time for m in get_markets(net.node.chain.state)] == [T0 + 60, T0 + 60]
    assert [net.node.store.get(h).status for h in hashes] == ["batched", "batched"]  # type: ignore[union-attr]


def test_keeper__deleverages_a_bankrupt_account_the_insurance_fund_cannot_cover(net: Net) -> None:
    leverage_c(net)
    move_eth(net, 85, T0 + 5)  # C: equity 982,000 - 1,350,000 < 0; the fund holds fees only
    (candidate,) = net.client.get("/v1/risk").json()["candidates"]
    assert candidate["bankrupt"]
    (admitted,) = net.node.upkeep.step()
    assert admitted == Deleverage(C, D, ETH, 0)  # C's nonce, which it consumes
    assert net.post_batch()
    c = get_account(net.node.chain.state, C)
    assert c.positions == () and c.collateral >= 0 and c.nonce == 1
    assert (
        read_acct(net.node.chain.state.tree.get(account_key(D))).size(ETH) == 0
    )  # D's short absorbed C's long


def test_fault_injection_by_type__only_the_first_fill_root_is_wrong(tmp_path: Path) -> None:
    faulty = partial(FaultyNode, fault=Fault(tx_type=TX_TYPE_FILL))
    n = make_net(tmp_path / "faulty.sqlite", NodeOptions(max_pending=200), faulty)
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
        assert n.node.faults_left == 0  # type: ignore[attr-defined]  # one fault, spent on the batch holding a fill
    finally:
        n.close()
