"""Transactions nobody signs (Funding, Deleverage) name the state they change, so that each one
has its own bytes (and hash): a Funding names the period it settles from, a Deleverage the
bankrupt account's nonce, which it consumes. A replay of either is a no-op with a typed error.

(The vectors of `exchange_vectors.py` hold the same rules for the Vyper verifier too.)
"""

from __future__ import annotations

import pytest
from exchange_fixtures import BTC, ETH, NOW, TRADERS, acct, ctx, leaves, markets_with
from hypothesis import given
from hypothesis import strategies as st
from stf_vectors import CONFIG, state_of

from sequencer.stf.codec import decode_tx, encode_tx, tx_hash
from sequencer.stf.constants import DELEVERAGE_TX_BYTES, FUNDING_TX_BYTES
from sequencer.stf.errors import BadNonce, DecodeError, FundingNotDue, WrongFundingPeriod
from sequencer.stf.state import get_account, get_markets
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import Deleverage, Funding

C, E = TRADERS[2], TRADERS[4]
u16 = st.integers(0, 2**16 - 1)
u64 = st.integers(0, 2**64 - 1)
addresses = st.binary(min_size=20, max_size=20)


def test_funding__layout() -> None:
    raw = encode_tx(Funding(0x0102, 0x0A0B0C0D0E0F1011))
    assert raw == bytes.fromhex("0601020a0b0c0d0e0f1011")
    assert len(raw) == FUNDING_TX_BYTES == 11


def test_deleverage__layout() -> None:
    raw = encode_tx(Deleverage(b"\xaa" * 20, b"\xbb" * 20, 0x0102, 7))
    assert raw == b"\x0a" + b"\xaa" * 20 + b"\xbb" * 20 + b"\x01\x02" + (7).to_bytes(8, "big")
    assert len(raw) == DELEVERAGE_TX_BYTES == 51


@given(st.one_of(st.builds(Funding, u16, u64), st.builds(Deleverage, addresses, addresses, u16, u64)))
def test_round_trip(tx: Funding | Deleverage) -> None:
    assert decode_tx(encode_tx(tx)) == tx


@pytest.mark.parametrize(
    "raw",
    [b"\x06\x00\x01", b"\x06" * 10, b"\x06" * 12, b"\x0a" * 43, b"\x0a" * 50, b"\x0a" * 52],
    ids=[
        "funding-without-period",
        "funding-10",
        "funding-12",
        "deleverage-without-nonce",
        "delev-50",
        "delev-52",
    ],
)
def test_decode__the_lengths_without_the_identity__malformed(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_tx(raw)


@pytest.mark.parametrize(
    "tx", [Funding(0, 2**64), Funding(0, -1), Deleverage(C, E, 0, 2**64), Deleverage(C, E, 0, -1)]
)
def test_encode__identity_out_of_range__refused(tx: Funding | Deleverage) -> None:
    with pytest.raises(DecodeError):
        encode_tx(tx)


def test_funding__each_period_its_own_step__a_replay_or_a_future_period_is_a_no_op() -> None:
    state = state_of(leaves({}, markets=markets_with(BTC, last_funding_time=NOW - 120)))
    for since in (NOW - 180, NOW - 121, NOW - 119, NOW - 60, NOW):  # not the market's period
        outcome = apply_tx(state, encode_tx(Funding(BTC, since)), ctx(), CONFIG)
        assert not outcome.applied and type(outcome.error) is WrongFundingPeriod
        assert isinstance(outcome.error, FundingNotDue) and outcome.error.code == "funding_not_due"
        assert (outcome.error.last_funding_time, outcome.error.since) == (NOW - 120, since)
    step = Funding(BTC, NOW - 120)
    assert apply_tx(state, encode_tx(step), ctx(), CONFIG).applied  # two periods at once
    assert get_markets(state)[BTC].last_funding_time == NOW
    replay = apply_tx(state, encode_tx(step), ctx(), CONFIG)
    assert not replay.applied and type(replay.error) is WrongFundingPeriod
    early = apply_tx(state, encode_tx(Funding(BTC, NOW)), ctx(), CONFIG)  # the next period, not due
    assert not early.applied and type(early.error) is FundingNotDue
    assert tx_hash(encode_tx(step)) != tx_hash(encode_tx(Funding(BTC, NOW)))


def test_funding__the_period_of_another_market_is_not_this_ones() -> None:
    state = state_of(leaves({}, markets=markets_with(BTC, last_funding_time=NOW - 60)))
    eth_period = get_markets(state)[ETH].last_funding_time
    outcome = apply_tx(state, encode_tx(Funding(BTC, eth_period)), ctx(NOW + 60), CONFIG)
    assert not outcome.applied and type(outcome.error) is WrongFundingPeriod


def test_deleverage__names_and_consumes_the_account_nonce__a_replay_is_a_no_op() -> None:
    sunk = markets_with(ETH, mark_price=90, index_price=90)
    pre = {C: acct(400, 5, (ETH, 100, 10_000)), E: acct(5_000, 0, (ETH, -300, -36_000))}
    for nonce in (4, 6, 0):
        state = state_of(leaves(pre, markets=sunk, insurance=100))
        outcome = apply_tx(state, encode_tx(Deleverage(C, E, ETH, nonce)), ctx(), CONFIG)
        assert not outcome.applied and type(outcome.error) is BadNonce
    state = state_of(leaves(pre, markets=sunk, insurance=100))
    tx = Deleverage(C, E, ETH, 5)
    assert apply_tx(state, encode_tx(tx), ctx(), CONFIG).applied
    assert get_account(state, C).nonce == 6 and get_account(state, E).nonce == 0
    replay = apply_tx(state, encode_tx(tx), ctx(), CONFIG)
    assert not replay.applied and type(replay.error) is BadNonce
