"""The keeper's decisions: funding due, liquidation candidates and sizes, deleverage ranking.

Each decision is checked against the state machine: what the keeper proposes applies.
"""

from __future__ import annotations

from dataclasses import replace

from exchange_fixtures import BTC, ETH, NOW, TRADERS, acct, ctx, leaves, liquidate, markets_with
from stf_vectors import CONFIG, state_of

from sequencer.keeper import RiskIndex, deleverage_options, due_funding, liquidation_candidates
from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.errors import WrongFundingPeriod
from sequencer.stf.state import get_account, get_markets, set_account, set_markets
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import Fill, Funding, Position

A, B, C, D, E = TRADERS[:5]


def index_of(*traders: bytes) -> RiskIndex:
    index = RiskIndex()
    index.traders.update(traders)
    return index


def test_due_funding__only_markets_whose_interval_passed_with_a_fresh_price() -> None:
    markets = markets_with(BTC, last_funding_time=NOW - 60)
    state = state_of(leaves({}, markets=markets))
    # each step names the period it settles from: the market's last funding time
    assert due_funding(state.tree, NOW) == [Funding(BTC, NOW - 60)]  # ETH's last step was 10 s ago
    assert due_funding(state.tree, NOW + 50) == [Funding(ETH, NOW - 10), Funding(BTC, NOW - 60)]
    assert due_funding(state.tree, NOW + 200) == []  # prices older than 60 s: stale
    (step,) = due_funding(state.tree, NOW)
    assert apply_tx(state, encode_tx(step), ctx(), CONFIG).applied
    assert due_funding(state.tree, NOW) == []  # that period is settled
    assert due_funding(state.tree, NOW + 50) == [Funding(ETH, NOW - 10)]  # BTC's next is due at NOW + 60


def test_due_funding__each_period_has_its_own_bytes_and_a_replay_is_a_no_op() -> None:
    state = state_of(leaves({}, markets=markets_with(BTC, last_funding_time=NOW - 60)))
    hashes = set()
    for k in range(5):  # five intervals, priced afresh each time
        now = NOW + 60 * k
        markets = get_markets(state)
        set_markets(state, [replace(m, oracle_time=now - 1) for m in markets])
        step = next(s for s in due_funding(state.tree, now) if s.market == BTC)
        assert step == Funding(BTC, NOW - 60 + 60 * k)
        raw = encode_tx(step)
        hashes.add(tx_hash(raw))
        assert apply_tx(state, raw, ctx(now), CONFIG).applied
        replay = apply_tx(state, raw, ctx(now + 60), CONFIG)
        assert not replay.applied and isinstance(replay.error, WrongFundingPeriod)
    assert len(hashes) == 5
    assert get_markets(state)[BTC].last_funding_time == NOW + 240


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
    assert {o.nonce for o in options} == {0}  # C's nonce, which the deleverage consumes
    assert apply_tx(state, encode_tx(options[0]), ctx(), CONFIG).applied
    assert get_account(state, C).nonce == 1


def test_deleverage_options__the_same_pair_again_later_is_another_transaction() -> None:
    # C is deleveraged against E, opens the same position again, and is bankrupt again: the
    # second deleverage of the pair names C's next nonce, so its bytes (and hash) differ.
    sunk = markets_with(ETH, mark_price=90, index_price=90)
    bankrupt = {C: acct(400, 0, (ETH, 100, 10_000)), E: acct(50_000, 0, (ETH, -300, -36_000))}
    state = state_of(leaves(bankrupt, markets=sunk, insurance=100))
    first = deleverage_options(state.tree, index_of(C, E), C, NOW)[0]
    assert apply_tx(state, encode_tx(first), ctx(), CONFIG).applied
    set_account(
        state, C, replace(get_account(state, C), collateral=400, positions=(Position(ETH, 100, 10_000, 0),))
    )
    second = deleverage_options(state.tree, index_of(C, E), C, NOW)[0]
    assert (first.counterparty, second.counterparty) == (E, E)
    assert (first.nonce, second.nonce) == (0, 1)
    assert tx_hash(encode_tx(first)) != tx_hash(encode_tx(second))
    replay = apply_tx(state, encode_tx(first), ctx(), CONFIG)
    assert not replay.applied and replay.error is not None and replay.error.code == "bad_nonce"
    assert apply_tx(state, encode_tx(second), ctx(), CONFIG).applied
    assert get_account(state, C).nonce == 2


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
    index.note(Funding(ETH, NOW))
    assert index.traders == {A, B}
