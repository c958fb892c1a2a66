"""The risk math on its own (protocol section 3, "Common rules"), with hand-worked numbers."""

from __future__ import annotations

import pytest
from exchange_fixtures import BTC, ETH, MARKETS

from sequencer.stf.errors import InsufficientMargin, PositionLimit, StaleOracle
from sequencer.stf.margin import (
    check_risk,
    equity,
    fee,
    increases,
    initial_margin,
    maintenance_margin,
    settle,
    trade,
)
from sequencer.stf.types import Acct

OWNER = b"\x0a" * 20
MARKETS_T = tuple(MARKETS)


def test_trade__partial_close_truncates_the_removed_notional_toward_zero() -> None:
    long = Acct(0, 0, {ETH: [3, 10, 0]})  # 3 bought for 10 in all
    trade(long, OWNER, ETH, -1, 5, MARKETS_T)
    assert (long.collateral, long.positions[ETH]) == (5 - 3, [2, 7, 0])  # removed 10 * 1 // 3 = 3
    short = Acct(0, 0, {ETH: [-3, -10, 0]})
    trade(short, OWNER, ETH, 1, 5, MARKETS_T)
    assert (short.collateral, short.positions[ETH]) == (-5 + 3, [-2, -7, 0])


def test_trade__closing_everything_realizes_the_exact_notional_and_removes_the_position() -> None:
    a = Acct(0, 0, {ETH: [3, 10, 0]})
    trade(a, OWNER, ETH, -1, 5, MARKETS_T)
    trade(a, OWNER, ETH, -2, 6, MARKETS_T)
    assert a.positions == {}
    assert a.collateral == 5 + 12 - 10  # sold for 17, paid 10


def test_trade__flip_snapshots_the_funding_index() -> None:
    markets = (MARKETS_T[ETH].__class__(MARKETS_T[ETH].params, 100, 100, 1, 0, 42), MARKETS_T[BTC])
    a = Acct(0, 0, {ETH: [2, 200, 42]})
    trade(a, OWNER, ETH, -5, 100, markets)
    assert a.positions[ETH] == [-3, -300, 42]
    assert a.collateral == 2 * 100 - 200


def test_trade__ninth_position_refused() -> None:
    markets = tuple(MARKETS_T[ETH] for _ in range(9))
    a = Acct(0, 0, {m: [1, 100, 0] for m in range(8)})
    with pytest.raises(PositionLimit):
        trade(a, OWNER, 8, 1, 100, markets)


def test_settle__longs_pay_a_rising_index_and_shorts_receive_it() -> None:
    markets = (MARKETS_T[ETH].__class__(MARKETS_T[ETH].params, 100, 100, 1, 0, 7), MARKETS_T[BTC])
    long, short = Acct(0, 0, {ETH: [10, 1000, 2]}), Acct(0, 0, {ETH: [-10, -1000, 2]})
    settle(long, markets)
    settle(short, markets)
    assert (long.collateral, long.positions[ETH][2]) == (-50, 7)
    assert (short.collateral, short.positions[ETH][2]) == (50, 7)


def test_margins_round_up_per_position() -> None:
    # ETH mark 100, IMR 10%, MMR 5%: 1 unit -> ceil(10) and ceil(5); BTC 5,000 at 20% / 10%.
    a = Acct(0, 0, {ETH: [-1, -100, 0], BTC: [1, 4_000, 0]})
    assert initial_margin(a, MARKETS_T) == 10 + 1_000
    assert maintenance_margin(a, MARKETS_T) == 5 + 500
    assert equity(a, MARKETS_T) == (-100 + 100) + (5_000 - 4_000)
    odd = Acct(0, 0, {ETH: [3, 300, 0]})  # 3 * 100 * 5% = 15 exactly; 3 * 100 * 10% = 30
    assert (initial_margin(odd, MARKETS_T), maintenance_margin(odd, MARKETS_T)) == (30, 15)


@pytest.mark.parametrize(
    ("notional", "bps", "expected"),
    [
        (4_400, 20, 9),
        (4_400, -10, -4),
        (10_000, 20, 20),
        (10_000, -10, -10),
        (1, 1, 1),
        (1, -1, 0),
        (0, 5, 0),
    ],
)
def test_fee__charges_round_up_rebates_down(notional: int, bps: int, expected: int) -> None:
    assert fee(notional, bps) == expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (0, 1, True),
        (1, 2, True),
        (-1, -2, True),
        (2, 1, False),
        (2, 0, False),
        (2, -1, True),
        (-2, 1, True),
        (0, 0, False),
    ],
)
def test_increases(before: int, after: int, expected: bool) -> None:
    assert increases(before, after) is expected


def test_check_risk__increasing_needs_a_fresh_price_and_initial_margin() -> None:
    a = Acct(999, 0, {ETH: [100, 10_000, 0]})  # equity 999 < initial 1,000
    with pytest.raises(InsufficientMargin):
        check_risk(OWNER, 0, 0, a, MARKETS_T, [ETH], MARKETS_T[ETH].oracle_time)
    a.collateral = 1_000
    check_risk(OWNER, 0, 0, a, MARKETS_T, [ETH], MARKETS_T[ETH].oracle_time)
    with pytest.raises(StaleOracle):
        check_risk(OWNER, 0, 0, a, MARKETS_T, [ETH], MARKETS_T[ETH].oracle_time + 61)
