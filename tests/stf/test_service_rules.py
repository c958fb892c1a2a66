"""The rules the services call directly (the exchange, the order book, the keeper, the mempool):
each says what the transaction it belongs to says, and `touched_accounts` / `touched_orders` are
the Account and Order keys of `touched_keys`."""

from __future__ import annotations

from dataclasses import replace

import pytest
from exchange_fixtures import BTC, ETH, MARKETS, NOW
from exchange_vectors import EXCHANGE_VECTORS
from hypothesis import given
from hypothesis import strategies as st
from spec_vectors import SPEC_VECTORS
from stf_vectors import CONFIG, VECTORS, Vector

from sequencer.stf.codec import decode_tx
from sequencer.stf.errors import (
    DecodeError,
    FundingNotDue,
    InvalidOrder,
    NotLiquidatable,
    OrderExpired,
    PriceOffTick,
    SizeOffLot,
    StaleOracle,
    UnknownMarket,
)
from sequencer.stf.keys import account_key, order_key
from sequencer.stf.liquidation import (
    check_deleverageable,
    check_liquidatable,
    liquidatable,
    takes_over,
)
from sequencer.stf.margin import equity, increases, reducing_size, unrealized_pnl
from sequencer.stf.oracle import check_funding_due
from sequencer.stf.trading import (
    check_flags,
    check_price,
    check_side,
    check_size,
    check_unexpired,
    expired,
    leg_market,
)
from sequencer.stf.transition import touched_accounts, touched_keys, touched_orders
from sequencer.stf.types import Acct, Leg

A = b"\x0a" * 20
MARKETS_T = tuple(MARKETS)


def test_expired__at_expiry_second__dead_and_before__live() -> None:
    assert not expired(100, 99)
    assert expired(100, 100)
    assert not expired(0, 10**12)
    check_unexpired(100, 99)
    with pytest.raises(OrderExpired) as caught:
        check_unexpired(100, 100)
    assert (caught.value.expiry, caught.value.now) == (100, 100)


@pytest.mark.parametrize(
    ("check", "error"),
    [
        (lambda: check_side(2), InvalidOrder),
        (lambda: check_flags(8), InvalidOrder),
        (lambda: check_flags(1 | 4), InvalidOrder),  # POST_ONLY with IOC
        (lambda: check_price(0, 5), PriceOffTick),
        (lambda: check_price(7, 5), PriceOffTick),
        (lambda: check_size(0, 10), SizeOffLot),
        (lambda: check_size(15, 10), SizeOffLot),
        (lambda: leg_market(Leg(len(MARKETS), 0, 100, 10), MARKETS_T), UnknownMarket),
        (lambda: leg_market(Leg(ETH, 3, 100, 10), MARKETS_T), InvalidOrder),
    ],
)
def test_order_checks__broken_rule__its_error(check: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        check()  # type: ignore[operator]


def test_order_checks__valid__pass() -> None:
    check_side(0)
    check_side(1)
    check_flags(1 | 2)
    check_price(10, 5)
    check_size(20, 10)
    assert leg_market(Leg(BTC, 1, 5000, 1), MARKETS_T) == MARKETS[BTC]


def test_check_funding_due__stale_not_started_early_and_due() -> None:
    last = MARKETS[ETH].last_funding_time
    with pytest.raises(FundingNotDue):
        check_funding_due(ETH, MARKETS_T, last + 59)
    check_funding_due(ETH, MARKETS_T, last + 60)
    with pytest.raises(StaleOracle):
        check_funding_due(ETH, MARKETS_T, MARKETS[ETH].oracle_time + 61)
    not_started = (replace(MARKETS[ETH], last_funding_time=0),)
    with pytest.raises(FundingNotDue):
        check_funding_due(ETH, not_started, NOW)


def test_liquidatable__below_maintenance_with_fresh_prices_only() -> None:
    # 100 ETH long at 100: maintenance margin 500; equity = collateral + 0
    under, healthy = Acct(499, 0, {ETH: [100, 10_000, 0]}), Acct(500, 0, {ETH: [100, 10_000, 0]})
    assert liquidatable(under, MARKETS_T, NOW)
    check_liquidatable(A, under, MARKETS_T, NOW)
    assert not liquidatable(healthy, MARKETS_T, NOW)
    with pytest.raises(NotLiquidatable, match="at or above the maintenance margin 500"):
        check_liquidatable(A, healthy, MARKETS_T, NOW)
    stale = NOW + 61
    assert not liquidatable(under, MARKETS_T, stale)
    with pytest.raises(StaleOracle):
        check_liquidatable(A, under, MARKETS_T, stale)


def test_check_deleverageable__one_position_negative_equity_beyond_insurance() -> None:
    bankrupt = Acct(-1_001, 0, {ETH: [10, 1_000, 0]})  # equity -1,001
    check_deleverageable(A, bankrupt, ETH, MARKETS_T, 1_000, NOW)
    with pytest.raises(NotLiquidatable, match="covers"):
        check_deleverageable(A, bankrupt, ETH, MARKETS_T, 1_001, NOW)
    with pytest.raises(NotLiquidatable, match="only position"):
        check_deleverageable(A, bankrupt, BTC, MARKETS_T, 0, NOW)
    with pytest.raises(NotLiquidatable, match="not negative"):
        check_deleverageable(A, Acct(0, 0, {ETH: [10, 1_000, 0]}), ETH, MARKETS_T, 0, NOW)
    with pytest.raises(StaleOracle):
        check_deleverageable(A, bankrupt, ETH, MARKETS_T, 0, NOW + 61)


@pytest.mark.parametrize(
    ("held", "size", "expected"),
    [(-10, 10, True), (-11, 10, True), (-9, 10, False), (10, 10, False), (0, 10, False), (10, -10, True)],
)
def test_takes_over__opposite_and_at_least_as_large(held: int, size: int, expected: bool) -> None:
    assert takes_over(held, size) is expected


@given(st.integers(-1_000, 1_000), st.sampled_from([0, 1]), st.integers(1, 2_000))
def test_reducing_size__the_most_a_trade_may_take_without_increasing(held: int, side: int, size: int) -> None:
    after = held + size if side == 0 else held - size
    assert increases(held, after) is (size > reducing_size(held, side))


@given(st.integers(-(10**9), 10**9), st.dictionaries(st.sampled_from([ETH, BTC]), st.integers(-1_000, 1_000)))
def test_unrealized_pnl__equity_is_collateral_plus_its_sum(collateral: int, sizes: dict[int, int]) -> None:
    a = Acct(collateral, 0, {m: [size, size * 90, 0] for m, size in sizes.items() if size})
    pnl = sum(unrealized_pnl(p, MARKETS[m].mark_price) for m, p in a.positions.items())
    assert equity(a, MARKETS_T) == collateral + pnl


ALL_VECTORS = VECTORS + EXCHANGE_VECTORS + SPEC_VECTORS


@pytest.mark.parametrize("v", ALL_VECTORS, ids=[v.name for v in ALL_VECTORS])
def test_touched_accounts_and_orders__are_the_account_and_order_keys_of_touched_keys(v: Vector) -> None:
    try:
        tx = decode_tx(v.tx)
    except DecodeError:
        return
    keys = touched_keys(tx, CONFIG)
    accounts = [account_key(a) for a in touched_accounts(tx)]
    orders = [order_key(d) for d in touched_orders(tx, CONFIG)]
    assert [k for k in keys if k in accounts] == list(dict.fromkeys(accounts))
    assert [k for k in keys if k in orders] == list(dict.fromkeys(orders))
