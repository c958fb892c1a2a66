"""The keeper's decisions: funding due, liquidation candidates and sizes, deleverage ranking.

Each decision is checked against the state machine: what the keeper proposes applies.
"""

from __future__ import annotations

from exchange_fixtures import BTC, ETH, NOW, TRADERS, acct, ctx, leaves, liquidate, markets_with
from stf_vectors import CONFIG, state_of

from sequencer.keeper import RiskIndex, deleverage_options, due_funding, liquidation_candidates
from sequencer.stf.codec import encode_tx
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import Fill, Funding

A, B, C, D, E = TRADERS[:5]


def index_of(*traders: bytes) -> RiskIndex:
    index = RiskIndex()
    index.traders.update(traders)
    return index


def test_due_funding__only_markets_whose_interval_passed_with_a_fresh_price() -> None:
    markets = markets_with(BTC, last_funding_time=NOW - 60)
    state = state_of(leaves({}, markets=markets))
    assert due_funding(state.tree, NOW) == [Funding(BTC)]  # ETH's last step was 10 s ago
    assert due_funding(state.tree, NOW + 50) == [Funding(ETH), Funding(BTC)]  # prices still fresh
    assert due_funding(state.tree, NOW + 200) == []  # prices older than 60 s: stale
    assert apply_tx(state, encode_tx(Funding(BTC)), ctx(), CONFIG).applied


def test_liquidation_candidates__worst_first_with_a_size_that_restores_maintenance() -> None:
    # C: long 100 ETH @ 10,000 with 400 -> equity 400, maintenance 500: short 100.
    # Each unit liquidated frees 100 * (5% - 1%) = 4 of margin: 25 units, rounded up to lots: 30.
    state = state_of(
        leaves(
            {C: acct(400, 0, (ETH, 100, 10_000)), D: acct(50_000), A: acct(9_000, 0, (ETH, -100, -10_000))}
        )
    )
    (candidate,) = liquidation_candidates(state.tree, index_of(A, C, D), NOW)
    assert (candidate.account, candidate.market, candidate.size, candidate.shortfall) == (C, ETH, 30, 100)
    assert not candidate.bankrupt
    outcome = apply_tx(state, encode_tx(liquidate(3, C, ETH, candidate.size)), ctx(), CONFIG)
    assert outcome.applied
    assert liquidation_candidates(state.tree, index_of(A, C, D), NOW) == []  # restored


def test_liquidation_candidates__skip_stale_prices_and_forget_flat_traders() -> None:
    state = state_of(
        leaves(
            {C: acct(400, 0, (ETH, 100, 10_000)), B: acct(7)}, markets=markets_with(ETH, oracle_time=NOW - 61)
        )
    )
    index = index_of(B, C)
    assert liquidation_candidates(state.tree, index, NOW) == []
    assert index.traders == {C}


def test_deleverage_options__rank_the_most_profitable_leveraged_opposite_position_first() -> None:
    # C long 100 @ 10,000, mark 90: equity -600, Insurance 100. D and E are short enough.
    sunk = markets_with(ETH, mark_price=90, index_price=90)
    state = state_of(
        leaves(
            {
                C: acct(400, 0, (ETH, 100, 10_000)),
                D: acct(50_000, 0, (ETH, -100, -10_000)),  # profit 1,000, low leverage
                E: acct(2_000, 0, (ETH, -150, -18_000)),  # profit 4,500, high leverage
                A: acct(1_000, 0, (ETH, -50, -5_000)),  # too small to absorb 100
            },
            markets=sunk,
            insurance=100,
        )
    )
    options = deleverage_options(state.tree, index_of(A, C, D, E), C, NOW)
    assert [o.counterparty for o in options] == [E, D]
    assert apply_tx(state, encode_tx(options[0]), ctx(), CONFIG).applied


def test_deleverage_options__none_when_insurance_covers() -> None:
    sunk = markets_with(ETH, mark_price=90, index_price=90)
    state = state_of(
        leaves(
            {C: acct(400, 0, (ETH, 100, 10_000)), D: acct(50_000, 0, (ETH, -100, -10_000))},
            markets=sunk,
            insurance=600,
        )
    )
    assert deleverage_options(state.tree, index_of(C, D), C, NOW) == []


def test_risk_index__notes_the_traders_of_position_changing_transactions() -> None:
    from exchange_fixtures import order

    index = RiskIndex()
    index.note(Fill(order(1, ETH, 1, 100, 10), order(0, ETH, 0, 100, 10), 10))
    index.note(Funding(ETH))
    assert index.traders == {A, B}
