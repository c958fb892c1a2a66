"""The margin of open orders (`margin.order_margin`, `margin.check_open_order`), the sequencer's
admission rule for resting orders, with hand-worked numbers on the fixtures' markets (ETH: mark
100, initial margin 10%, max_position 1,000,000; BTC: mark 5,000, 20%, max_position 1,000), and
the property that makes it hold as orders fill."""

from __future__ import annotations

from dataclasses import replace

import pytest
from exchange_fixtures import BTC, ETH, MARKETS
from hypothesis import given
from hypothesis import strategies as st

from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.errors import InsufficientOrderMargin, OpenPositionLimit, StaleOracle
from sequencer.stf.margin import (
    OpenOrders,
    check_open_order,
    equity,
    fee,
    initial_margin,
    order_loss,
    order_margin,
    trade,
)
from sequencer.stf.types import Acct

OWNER = b"\x0a" * 20
MARKETS_T = tuple(MARKETS)


def test_order_loss__a_buy_above_the_mark_or_a_sell_below_it__gains_count_zero() -> None:
    assert order_loss(SIDE_BUY, 105, 10, 100) == 50
    assert order_loss(SIDE_SELL, 95, 10, 100) == 50
    assert order_loss(SIDE_BUY, 95, 10, 100) == order_loss(SIDE_SELL, 105, 10, 100) == 0


def test_order_margin__without_orders__the_initial_margin() -> None:
    a = Acct(10_000, 0, {ETH: [10, 1000, 0], BTC: [-2, -10_000, 0]})
    assert order_margin(a, MARKETS_T, {}) == initial_margin(a, MARKETS_T) == 100 + 2_000


def test_order_margin__the_worst_side_per_market_plus_the_orders_losses() -> None:
    a = Acct(0, 0, {ETH: [10, 1000, 0], BTC: [-2, -10_000, 0]})
    # ETH: long 10 with buys 30 and sells 50: all buys -> 40, all sells -> -40; the buys lose 20
    # BTC: short 2 with buys 5: all buys -> 3, all sells -> -2; no order in BTC loses
    orders = {ETH: OpenOrders(30, 50, 20), BTC: OpenOrders(5, 0, 0)}
    assert order_margin(a, MARKETS_T, orders) == (40 * 100 // 10 + 20) + 3 * 5000 // 5


def test_check_open_order__unfunded__refused_with_what_it_needs() -> None:
    with pytest.raises(InsufficientOrderMargin) as refused:
        check_open_order(OWNER, Acct(0, 0, {}), MARKETS_T, {}, ETH, SIDE_BUY, 100, 10, 0)
    assert (refused.value.account, refused.value.required, refused.value.equity) == (OWNER, 100, 0)


def test_check_open_order__equity_exactly_the_margin__passes_one_less_refused() -> None:
    check_open_order(OWNER, Acct(100, 0, {}), MARKETS_T, {}, ETH, SIDE_SELL, 100, 10, 0)
    with pytest.raises(InsufficientOrderMargin):
        check_open_order(OWNER, Acct(99, 0, {}), MARKETS_T, {}, ETH, SIDE_SELL, 100, 10, 0)


def test_check_open_order__a_buy_above_the_mark__its_loss_needs_margin_too() -> None:
    with pytest.raises(InsufficientOrderMargin) as refused:
        check_open_order(OWNER, Acct(100, 0, {}), MARKETS_T, {}, ETH, SIDE_BUY, 101, 10, 0)
    assert refused.value.required == 100 + 10


def test_check_open_order__open_orders_count__the_next_one_on_the_same_side_refused() -> None:
    a = Acct(150, 0, {})
    check_open_order(OWNER, a, MARKETS_T, {}, ETH, SIDE_BUY, 100, 10, 0)  # margin 100
    with pytest.raises(InsufficientOrderMargin) as refused:
        check_open_order(OWNER, a, MARKETS_T, {ETH: OpenOrders(10, 0, 0)}, ETH, SIDE_BUY, 100, 10, 0)
    assert refused.value.required == 200
    # the other side is the worst side only past 10: a sell of 10 adds nothing
    check_open_order(OWNER, a, MARKETS_T, {ETH: OpenOrders(10, 0, 0)}, ETH, SIDE_SELL, 100, 10, 0)


def test_check_open_order__not_raising_the_margin__passes_under_margined() -> None:
    a = Acct(50, 0, {ETH: [10, 1000, 0]})  # equity 50, initial margin 100
    check_open_order(OWNER, a, MARKETS_T, {}, ETH, SIDE_SELL, 100, 20, 0)  # sells reach -10: no more
    with pytest.raises(InsufficientOrderMargin):
        check_open_order(OWNER, a, MARKETS_T, {}, ETH, SIDE_SELL, 100, 30, 0)


def test_check_open_order__position_and_orders_past_max_position__refused_unless_shrinking() -> None:
    rich = Acct(10**12, 0, {BTC: [900, 900 * 5000, 0]})
    with pytest.raises(OpenPositionLimit) as refused:
        check_open_order(OWNER, rich, MARKETS_T, {}, BTC, SIDE_BUY, 5000, 200, 0)
    assert (refused.value.market, refused.value.exposure, refused.value.limit) == (BTC, 1100, 1000)
    with pytest.raises(OpenPositionLimit):
        check_open_order(OWNER, rich, MARKETS_T, {}, BTC, SIDE_SELL, 5000, 1901, 0)
    check_open_order(OWNER, rich, MARKETS_T, {}, BTC, SIDE_SELL, 5000, 1900, 0)
    over = Acct(10**12, 0, {BTC: [1200, 1200 * 5000, 0]})  # above the limit (it was lowered)
    check_open_order(OWNER, over, MARKETS_T, {}, BTC, SIDE_SELL, 5000, 100, 0)
    with pytest.raises(OpenPositionLimit):
        check_open_order(OWNER, over, MARKETS_T, {BTC: OpenOrders(0, 100, 0)}, BTC, SIDE_BUY, 5000, 1, 0)


def test_check_open_order__a_market_never_priced__stale_oracle() -> None:
    unpriced = (replace(MARKETS_T[ETH], mark_price=0, oracle_time=0), MARKETS_T[BTC])
    with pytest.raises(StaleOracle):
        check_open_order(OWNER, Acct(10**12, 0, {}), unpriced, {}, ETH, SIDE_SELL, 100, 10, 0)


@given(
    held=st.integers(-50, 50),
    orders=st.lists(
        st.tuples(st.sampled_from([SIDE_BUY, SIDE_SELL]), st.integers(80, 120), st.integers(1, 30)),
        min_size=1,
        max_size=6,
    ),
    fills=st.lists(st.tuples(st.integers(0, 5), st.integers(1, 30), st.integers(0, 20)), max_size=6),
)
def test_order_margin__filling_open_orders__never_lowers_equity_less_margin_but_by_fees(
    held: int, orders: list[tuple[int, int, int]], fills: list[tuple[int, int, int]]
) -> None:
    """Each fill takes part of an open order at its price or a better one (by `better` ticks)."""
    a = Acct(0, 0, {ETH: [held, held * 100, 0]} if held else {})
    left = [list(o) for o in orders]

    def slack() -> int:
        buy = sum(s for side, _, s in left if side == SIDE_BUY)
        sell = sum(s for side, _, s in left if side == SIDE_SELL)
        loss = sum(order_loss(side, p, s, 100) for side, p, s in left)
        return equity(a, MARKETS_T) - order_margin(a, MARKETS_T, {ETH: OpenOrders(buy, sell, loss)})

    before = slack()
    fees = 0
    for index, size, better in fills:
        side, limit, size_left = left[index % len(left)]
        size = min(size, size_left)
        if not size:
            continue
        price = max(limit - better, 1) if side == SIDE_BUY else limit + better
        trade(a, OWNER, ETH, size if side == SIDE_BUY else -size, price, MARKETS_T)
        paid = fee(size * price, MARKETS_T[ETH].params.taker_fee_bps)
        a.collateral -= paid
        fees += paid
        left[index % len(left)][2] -= size
        assert slack() >= before - fees
