"""Rules of prices and funding (protocol section 3, "Oracle and funding").

Mark and index prices come from the oracle committee held in the Oracle leaf (set by an L1
governance message): an update carries at least `threshold` prices signed by distinct members and
takes the lower medians. The circuit breaker and the funding clock live in the market's record.
"""

from __future__ import annotations

from dataclasses import replace

from sequencer.stf.codec import decode_committee, encode_markets
from sequencer.stf.constants import BPS, INT128_MAX, INT128_MIN
from sequencer.stf.eip712 import price_digest, recover_sig
from sequencer.stf.errors import (
    FundingNotDue,
    InvalidOracleUpdate,
    WrongFundingPeriod,
)
from sequencer.stf.funds import Reader, Writes
from sequencer.stf.keys import markets_key, oracle_key
from sequencer.stf.margin import Markets, listed_market, read_markets, require_fresh
from sequencer.stf.types import ChainConfig, Funding, L1Context, Market, OracleUpdate


def _lower_median(values: list[int]) -> int:
    return sorted(values)[(len(values) - 1) // 2]


def plan_oracle_update(tree: Reader, tx: OracleUpdate, ctx: L1Context, config: ChainConfig) -> Writes:
    """OracleUpdate: new mark and index prices for one market (signatures always checked: the
    signers' membership is part of the rule)."""
    markets = read_markets(tree.get(markets_key()))
    m = tx.market
    market = listed_market(markets, m)
    committee_value = tree.get(oracle_key())
    if committee_value is None:
        raise InvalidOracleUpdate("no oracle committee is set")
    committee = decode_committee(committee_value)
    prices = tx.prices
    if len(prices) < committee.threshold:
        raise InvalidOracleUpdate(f"{len(prices)} prices, the threshold is {committee.threshold}")
    members = set(committee.members)
    signers: set[bytes] = set()
    for p in prices:
        if p.mark == 0 or p.index == 0:
            raise InvalidOracleUpdate("prices are positive")
        if p.timestamp > ctx.l2_time:
            raise InvalidOracleUpdate(f"price time {p.timestamp} is after the batch time {ctx.l2_time}")
        signer = recover_sig(price_digest(m, p.mark, p.index, p.timestamp, config), p.sig)
        if signer is None or signer not in members:
            raise InvalidOracleUpdate("a price is not signed by a committee member")
        if signer in signers:
            raise InvalidOracleUpdate("a member signed twice")
        signers.add(signer)
    mark = _lower_median([p.mark for p in prices])
    index = _lower_median([p.index for p in prices])
    t = _lower_median([p.timestamp for p in prices])
    if t <= market.oracle_time:
        raise InvalidOracleUpdate(f"price time {t} is not after the market's {market.oracle_time}")
    updated = _breaker(market, mark, t)
    updated = replace(
        updated,
        mark_price=mark,
        index_price=index,
        oracle_time=t,
        last_funding_time=updated.last_funding_time or t,
    )
    records = list(markets)
    records[m] = updated
    return {markets_key(): encode_markets(records)}


def _breaker(market: Market, mark: int, t: int) -> Market:
    """The circuit breaker's window and halt after a new mark at time `t`."""
    p = market.params
    if p.breaker_bps == 0:
        return market
    ref_price, ref_time = market.breaker_ref_price, market.breaker_ref_time
    if ref_time == 0 or t >= ref_time + p.breaker_window:
        ref_price = market.mark_price or mark
        ref_time = t
    halted_until = market.halted_until
    if abs(mark - ref_price) * BPS > p.breaker_bps * ref_price:
        halted_until = t + p.breaker_window
    return replace(market, breaker_ref_price=ref_price, breaker_ref_time=ref_time, halted_until=halted_until)


def check_funding_due(market_id: int, markets: Markets, now: int) -> None:
    """Raise unless a funding step of market `market_id` (listed) may settle at `now`: its price
    is fresh (`StaleOracle`), funding has started (a first price set `last_funding_time`) and a
    whole `funding_interval` has passed since `last_funding_time` (`FundingNotDue`)."""
    require_fresh(market_id, markets, now)
    market = markets[market_id]
    due = market.last_funding_time + market.params.funding_interval
    if market.last_funding_time == 0 or now < due:
        raise FundingNotDue(market_id, due, now)


def plan_funding(tree: Reader, tx: Funding, ctx: L1Context) -> Writes:
    """Funding: step the market's funding index by the clamped premium, once per interval passed
    since the market's `last_funding_time`, which the step names (`since`): a step of a period
    already settled (a replay) or not reached is invalid."""
    markets = read_markets(tree.get(markets_key()))
    m = tx.market
    market = listed_market(markets, m)
    if tx.since != market.last_funding_time:
        raise WrongFundingPeriod(m, market.last_funding_time, tx.since)
    p = market.params
    now = ctx.l2_time
    check_funding_due(m, markets, now)
    due = market.last_funding_time + p.funding_interval
    periods = (now - market.last_funding_time) // p.funding_interval
    cap = market.index_price * p.max_funding_bps // BPS
    premium = max(-cap, min(cap, market.mark_price - market.index_price))
    index = market.funding_index + premium * periods
    if not INT128_MIN <= index <= INT128_MAX:
        raise FundingNotDue(m, due, now)  # the index would leave its 128-bit field: never valid
    records = list(markets)
    records[m] = replace(
        market, funding_index=index, last_funding_time=market.last_funding_time + periods * p.funding_interval
    )
    return {markets_key(): encode_markets(records)}
