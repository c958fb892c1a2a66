"""Open orders backed by margin: an order is admitted only if its trader's margin covers its
positions plus its open orders with it (each market's worst side, as if filled), within
`max_position`, and a limit order only while its trader rests fewer than `max_open_orders`;
cancels and reduce-only orders always pass. Over a real mempool and SQLite log (no L1), and a
property over random flows of orders, cancels, transfers, withdrawals (signed and forced) and
price moves (hypothesis)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from exchange_fixtures import ETH, ETH_PARAMS, MARKETS, TRADERS, acct, cancel, leaves, order, trader_key
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from stf_vectors import CONFIG, state_of

from sequencer.exchange import AdmitTxs, OrderStatus
from sequencer.stf.codec import read_acct
from sequencer.stf.constants import FLAG_IOC, FLAG_POST_ONLY, FLAG_REDUCE_ONLY, SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import sign_transfer, sign_withdraw
from sequencer.stf.errors import (
    InsufficientOrderMargin,
    OpenOrdersUncovered,
    OpenPositionLimit,
    RollupError,
    TooManyOpenOrders,
)
from sequencer.stf.keys import account_key
from sequencer.stf.margin import OpenOrders, equity, initial_margin, order_loss, settle, trade
from tests.sequencer.test_exchange import RICH, Harness, digest, funded, priced
from tests.sequencer.test_open_orders_cover import force

A, B, C, D, FRESH = TRADERS[:5]


def test_place__a_fresh_key_without_collateral__refused_and_nothing_recorded(tmp_path: Path) -> None:
    h = Harness(tmp_path / "s.sqlite", funded(A))
    bid = order(4, ETH, SIDE_BUY, 100, 10)
    with pytest.raises(InsufficientOrderMargin) as refused:
        h.exchange.place(bid)
    assert (refused.value.account, refused.value.required, refused.value.equity) == (FRESH, 100, 0)
    assert h.exchange.order_details(digest(bid)) is None
    assert len(h.exchange.books[ETH]) == 0 and h.store.counts() == {}
    h.store.close()


def test_place__past_max_position__refused_whatever_the_margin(tmp_path: Path) -> None:
    h = Harness(tmp_path / "s.sqlite", state_of(leaves({A: acct(10**15)})))
    huge = order(0, ETH, SIDE_SELL, 10**9, 10**12)  # far above max_position (1,000,000)
    with pytest.raises(OpenPositionLimit):
        h.exchange.place(huge)
    h.exchange.place(order(0, ETH, SIDE_SELL, 101, 600_000, salt=1))
    with pytest.raises(OpenPositionLimit) as refused:  # the open sells count
        h.exchange.place(order(0, ETH, SIDE_SELL, 101, 400_010, salt=2))
    assert (refused.value.exposure, refused.value.limit) == (1_000_010, ETH_PARAMS.max_position)
    h.exchange.place(order(0, ETH, SIDE_BUY, 99, 1_000_000, salt=3))  # the other side has room
    h.store.close()


def test_place__margin_taken_by_open_orders__freed_by_a_cancel_and_an_expiry(tmp_path: Path) -> None:
    h = Harness(tmp_path / "s.sqlite", state_of(leaves({A: acct(1_000)})))  # margins 100 at 100
    first = order(0, ETH, SIDE_BUY, 100, 100)
    h.exchange.place(first)
    with pytest.raises(InsufficientOrderMargin):
        h.exchange.place(order(0, ETH, SIDE_BUY, 99, 10, salt=1))
    h.exchange.place(order(0, ETH, SIDE_SELL, 101, 100, salt=2))  # the other side: not worse
    h.exchange.cancel(cancel(0, first))
    h.exchange.place(order(0, ETH, SIDE_BUY, 99, 50, salt=3, expiry=h.now + 30))
    with pytest.raises(InsufficientOrderMargin):
        h.exchange.place(order(0, ETH, SIDE_BUY, 99, 60, salt=4))
    h.now += 30
    h.exchange.sweep()
    h.exchange.place(order(0, ETH, SIDE_BUY, 99, 100, salt=5))
    h.store.close()


def test_place__filled_orders_count_as_position__an_order_that_reduces_passes(tmp_path: Path) -> None:
    h = Harness(tmp_path / "s.sqlite", state_of(leaves({A: acct(1_000), B: acct(RICH)})))
    h.exchange.place(order(0, ETH, SIDE_BUY, 100, 100))
    h.exchange.place(order(1, ETH, SIDE_SELL, 100, 100))  # A is long 100, its rebate 10 more
    with pytest.raises(InsufficientOrderMargin):
        h.exchange.place(order(0, ETH, SIDE_BUY, 99, 10, salt=1))
    out = h.exchange.place(order(0, ETH, SIDE_SELL, 101, 200, salt=2))  # to short 100: no worse
    assert out.status == OrderStatus.RESTING
    h.store.close()


def test_place__more_than_max_open_orders__refused_but_ioc_reduce_only_and_cancels_pass(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path / "s.sqlite", funded(A, B), max_open_orders=2)
    h.exchange.place(order(1, ETH, SIDE_SELL, 101, 50))
    bids = [order(0, ETH, SIDE_BUY, 99 - i, 10, salt=i) for i in range(2)]
    for bid in bids:
        h.exchange.place(bid)
    with pytest.raises(TooManyOpenOrders) as refused:
        h.exchange.place(order(0, ETH, SIDE_BUY, 90, 10, salt=5))
    assert (refused.value.account, refused.value.limit) == (A, 2)
    taken = h.exchange.place(order(0, ETH, SIDE_BUY, 101, 20, salt=6, flags=FLAG_IOC))
    assert [f.size for f in taken.fills] == [20]
    closing = h.exchange.place(order(0, ETH, SIDE_SELL, 105, 20, salt=7, flags=FLAG_REDUCE_ONLY))
    assert closing.status == OrderStatus.RESTING and len(h.exchange.open_orders(A)) == 3
    h.exchange.cancel(cancel(0, bids[0]))
    h.exchange.cancel(cancel(0, bids[1]))
    h.exchange.place(order(0, ETH, SIDE_BUY, 90, 10, salt=8))
    h.store.close()


def test_rebuild__resting_orders_still_hold_their_margin(tmp_path: Path) -> None:
    h = Harness(tmp_path / "s.sqlite", state_of(leaves({A: acct(1_000)})))
    h.exchange.place(order(0, ETH, SIDE_BUY, 100, 100))
    h.reopen()
    assert h.exchange.exposure.of(A, h.exchange.markets()) == {ETH: OpenOrders(100, 0, 0)}
    with pytest.raises(InsufficientOrderMargin):
        h.exchange.place(order(0, ETH, SIDE_BUY, 99, 10, salt=1))
    h.store.close()


# ---- the property ------------------------------------------------------------------------

NO_FEES = replace(ETH_PARAMS, maker_fee_bps=0, taker_fee_bps=0, max_position=300)
"""ETH without fees (a fee is the one thing a fill takes from the margin the rule keeps) and a
small `max_position`, so that random flows meet it."""

PLAYERS = 3

STEP = st.tuples(
    st.sampled_from(["order"] * 6 + ["cancel", "withdraw", "transfer", "forced", "oracle"]),
    st.integers(0, PLAYERS - 1),
    st.sampled_from([SIDE_BUY, SIDE_SELL]),
    st.integers(-4, 4),  # ticks from 100: an order's price, or the new mark
    st.integers(1, 12),  # lots of 10, or hundreds of collateral
    st.sampled_from([0, 0, FLAG_IOC, FLAG_POST_ONLY]),
)
"""A step: an order of a player; a cancel of the order placed `lots` orders ago; a signed
withdrawal, a transfer to the next player or a withdrawal forced through the L1 queue, of `lots`
hundreds; or a new ETH mark `100 + ticks`."""


def _uncovered(h: Harness, trader: bytes) -> list[str]:
    """What of `trader`'s exposure its margin does not cover: its position, and its position if
    all of its resting orders of one side filled (each side in turn) at their prices, or at the
    mark where that is better (a gain is not counted on), valued at the mark with the state
    machine's own `trade`, `equity` and `initial_margin`."""
    markets = h.exchange.markets()
    mark = markets[ETH].mark_price
    resting = h.exchange.open_orders(trader)
    out = []
    for side in (None, SIDE_BUY, SIDE_SELL):
        a = read_acct(h.mempool.view.tree.get(account_key(trader)))
        settle(a, markets)
        for o in resting:
            if o.side == side == SIDE_BUY:
                trade(a, trader, ETH, o.size, max(o.price, mark), markets)
            elif o.side == side == SIDE_SELL:
                trade(a, trader, ETH, -o.size, min(o.price, mark), markets)
        if equity(a, markets) < initial_margin(a, markets) or abs(a.size(ETH)) > NO_FEES.max_position:
            out.append(f"side {side}: size {a.size(ETH)}, equity {equity(a, markets)}")
    return out


def _counted(h: Harness, trader: bytes) -> tuple[OpenOrders, OpenOrders]:
    """`trader`'s orders as the exchange counts them, and as its book holds them."""
    markets = h.exchange.markets()
    resting = h.exchange.open_orders(trader)
    kept = OpenOrders(
        sum(o.size for o in resting if o.side == SIDE_BUY),
        sum(o.size for o in resting if o.side == SIDE_SELL),
        sum(order_loss(o.side, o.price, o.size, markets[ETH].mark_price) for o in resting),
    )
    return h.exchange.exposure.of(trader, markets).get(ETH, OpenOrders(0, 0, 0)), kept


def _adding(h: Harness, trader: bytes) -> list[int]:
    """Prices of `trader`'s resting orders that add exposure: their side, all filled, would leave
    a larger position than it holds, or they would fill at a loss against the mark."""
    mark = h.exchange.markets()[ETH].mark_price
    held = read_acct(h.mempool.view.tree.get(account_key(trader))).size(ETH)
    resting = h.exchange.open_orders(trader)
    buys = sum(o.size for o in resting if o.side == SIDE_BUY)
    sells = sum(o.size for o in resting if o.side == SIDE_SELL)
    return [
        o.price
        for o in resting
        if (o.side == SIDE_BUY and (abs(held + buys) > abs(held) or o.price > mark))
        or (o.side == SIDE_SELL and (abs(held - sells) > abs(held) or o.price < mark))
    ]


def _next_nonce(h: Harness, trader: bytes) -> int:
    return read_acct(h.mempool.view.tree.get(account_key(trader))).nonce


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    collateral=st.lists(st.integers(500, 4_000), min_size=PLAYERS, max_size=PLAYERS),
    steps=st.lists(STEP, min_size=10, max_size=40),
)
def test_accepted_orders__never_leave_exposure_filled_or_resting_uncovered(
    collateral: list[int], steps: list[tuple[str, int, int, int, int, int]]
) -> None:
    """After every step, each account's exposure, filled or resting, is covered, or none of its
    resting orders adds to it (what stays only reduces its position); a transfer or withdrawal
    refused for its open orders changes nothing."""
    markets = [replace(MARKETS[0], params=NO_FEES), *MARKETS[1:]]
    state = state_of(leaves({TRADERS[i]: acct(c) for i, c in enumerate(collateral)}, markets=markets))
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp) / "s.sqlite", state)
        placed = []
        for n, (kind, i, side, ticks, lots, flags) in enumerate(steps):
            trader = TRADERS[i]
            if kind == "order":
                signed = order(i, ETH, side, 100 + ticks, 10 * lots, flags=flags, salt=n)
                try:
                    h.exchange.place(signed)
                    placed.append((i, signed))
                except RollupError:
                    pass
            elif kind == "cancel" and len(placed) >= lots:
                h.exchange.cancel(cancel(*placed[-lots]))
            elif kind in ("withdraw", "transfer"):
                to = TRADERS[(i + 1) % PLAYERS]
                signs = sign_withdraw if kind == "withdraw" else sign_transfer
                tx = signs(trader_key(i), to, 100 * lots, _next_nonce(h, trader), CONFIG)
                before = h.mempool.view.tree.get(account_key(trader))
                (result,) = h.exchange.admit([AdmitTxs([tx])])[0]  # type: ignore[misc]
                if isinstance(result, OpenOrdersUncovered):
                    event("a transfer or withdrawal refused for open orders")
                    assert h.mempool.view.tree.get(account_key(trader)) == before
            elif kind == "forced":
                force(h, sign_withdraw(trader_key(i), trader, 100 * lots, _next_nonce(h, trader), CONFIG))
            elif kind == "oracle":
                h.now += 1
                h.exchange.admit([AdmitTxs([priced(100 + ticks, at=h.now)])])
            if any(m.get("reason") == "margin" for m in h.messages()):
                event(f"orders cancelled for margin after a step {kind}")
            for t in TRADERS[:PLAYERS]:
                counted, kept = _counted(h, t)
                assert counted == kept, (t.hex(), n)
                assert _uncovered(h, t) == [] or _adding(h, t) == [], (t.hex(), n, _uncovered(h, t))
        h.store.close()
