"""Each signing account's share of orders, held by the node whatever connections they come on
(`sequencer.fairness.AccountRates` in `Intake`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from exchange_fixtures import ETH, order

from sequencer.errors import RateLimited
from sequencer.exchange import OrderOutcome
from sequencer.node import NodeOptions
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.errors import BadSignature
from tests.sequencer.test_admission import exchange_net


def test_account__over_its_share__next_orders_refused_429__others_and_forgers_cannot_spend_it(
    tmp_path: Path,
) -> None:
    net = exchange_net(tmp_path / "n.sqlite", NodeOptions(account_orders_per_s=1, account_orders_burst=2))
    place = net.node.admit_orders
    run = net.loop.run_until_complete
    forged = replace(order(0, ETH, SIDE_BUY, 90, 10, salt=99), sig=order(1, ETH, SIDE_BUY, 90, 10).sig)
    for _ in range(3):  # forged orders in trader 0's name cost trader 0 nothing
        (out,) = run(place([forged]))
        assert isinstance(out, BadSignature)
    placed = run(place([order(0, ETH, SIDE_SELL, 100 + i, 10, salt=i) for i in range(3)]))
    assert all(isinstance(o, OrderOutcome) for o in placed)  # within the round: one over the burst
    with pytest.raises(RateLimited) as refused:
        run(place([order(0, ETH, SIDE_SELL, 120, 10, salt=7)]))
    assert refused.value.retry_after_s > 0
    (other,) = run(place([order(1, ETH, SIDE_SELL, 120, 10, salt=7)]))  # another account: its own share
    assert isinstance(other, OrderOutcome) and not other.known
    net.loop.run_until_complete(net.node.close())
    net.close()
