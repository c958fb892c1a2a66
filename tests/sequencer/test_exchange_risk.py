"""Account risk for the API: equity, margins, ratio and liquidation prices, checked against the
state machine itself (a Liquidate applies exactly at and beyond the liquidation price)."""

from __future__ import annotations

import pytest
from exchange_fixtures import BTC, ETH, MARKETS, TRADERS, acct, ctx, leaves, liquidate, markets_with
from stf_vectors import CONFIG, state_of

from sequencer.exchange import account_risk
from sequencer.stf.codec import encode_tx
from sequencer.stf.transition import apply_tx

A, B, C, D = TRADERS[:4]


def liquidation_applies(account_value: bytes, market: int, mark: int) -> bool:
    """Whether the state machine lets D liquidate one lot of C's position at this mark."""
    markets = markets_with(market, mark_price=mark)
    state = state_of(leaves({C: account_value, D: acct(10**9)}, markets=markets))
    lot = markets[market].params.lot_size
    return apply_tx(state, encode_tx(liquidate(3, C, market, lot)), ctx(), CONFIG).applied


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ((ETH, 100, 10_000), 98),  # long: 600 + 100p - 10,000 < ceil(5p)  <=>  p <= 98
        ((ETH, -100, -10_000), 101),  # short: 10,600 - 100p < ceil(5p)  <=>  p >= 101
        ((BTC, 3, 15_000), 5_333),  # 600 + 3p - 15,000 < ceil(0.3p): liquidatable now (mark 5,000)
    ],
)
def test_liquidation_price__agrees_with_the_state_machine(
    position: tuple[int, int, int], expected: int
) -> None:
    value = acct(600, 0, position)
    risk = account_risk(state_of(leaves({C: value})).tree, C)
    (p,) = risk.positions
    assert p.liquidation_price == expected
    market, size = position[0], position[1]
    beyond = expected - 1 if size > 0 else expected + 1
    inside = expected + 1 if size > 0 else expected - 1
    assert liquidation_applies(value, market, expected)
    assert liquidation_applies(value, market, beyond)
    assert not liquidation_applies(value, market, inside)


def test_account_risk__two_positions__equity_margins_ratio() -> None:
    value = acct(5_000, 0, (ETH, 100, 9_000), (BTC, -2, -10_400))
    risk = account_risk(state_of(leaves({C: value})).tree, C)
    eth_mark, btc_mark = MARKETS[ETH].mark_price, MARKETS[BTC].mark_price
    assert risk.equity == 5_000 + (100 * eth_mark - 9_000) + (-2 * btc_mark + 10_400)
    assert risk.initial_margin == 1_000 + 2_000  # 10% of 10,000 + 20% of 10,000
    assert risk.maintenance_margin == 500 + 1_000
    assert risk.margin_ratio_bps == risk.equity * 10_000 // 1_500
    assert [(p.market, p.size, p.unrealized_pnl) for p in risk.positions] == [
        (ETH, 100, 1_000),
        (BTC, -2, 400),
    ]


def test_account_risk__no_position__no_ratio_no_liquidation() -> None:
    risk = account_risk(state_of(leaves({C: acct(700)})).tree, C)
    assert (risk.collateral, risk.equity, risk.margin_ratio_bps, risk.positions) == (700, 700, None, ())


def test_liquidation_price__fully_collateralized_long__none() -> None:
    value = acct(20_000, 0, (ETH, 100, 10_000))
    (p,) = account_risk(state_of(leaves({C: value})).tree, C).positions
    assert p.liquidation_price is None
