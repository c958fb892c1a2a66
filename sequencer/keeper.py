"""Keeping the exchange safe: which funding steps are due, which accounts to liquidate (and by how
much), and whom to deleverage when the insurance fund cannot cover a bankrupt account.

These are the sequencer's and the liquidator bot's decisions, not protocol rules: every
transaction they lead to is checked again by the state machine (`sequencer.stf`), which owns the
rules. The conditions here are its own (`check_funding_due`, `liquidatable`,
`check_deleverageable`, `takes_over`) and the arithmetic only uses its risk functions
(`sequencer.stf.margin`).

The state holds no list of accounts (keys are hashes), so `RiskIndex` remembers the traders whose
positions transactions may have changed, from the transactions themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sequencer.stf.codec import read_acct
from sequencer.stf.constants import BPS
from sequencer.stf.errors import InvalidTransaction
from sequencer.stf.funds import Reader
from sequencer.stf.keys import account_key, markets_key
from sequencer.stf.liquidation import check_deleverageable, liquidatable, takes_over
from sequencer.stf.margin import Markets, equity, maintenance_margin, read_markets, settle, unrealized_pnl
from sequencer.stf.oracle import check_funding_due
from sequencer.stf.trading import insurance_balance
from sequencer.stf.transition import TRADE_TYPES, touched_accounts
from sequencer.stf.types import Acct, Deleverage, Funding, Tx

_TRADES = frozenset(TRADE_TYPES)


def position_traders(tx: Tx) -> tuple[bytes, ...]:
    """The accounts whose positions `tx` may change: the parties of a trade."""
    return touched_accounts(tx) if type(tx) in _TRADES else ()


class RiskIndex:
    """The traders that may hold positions (a superset: flat ones are dropped when seen flat)."""

    def __init__(self) -> None:
        self.traders: set[bytes] = set()

    def note(self, tx: Tx) -> None:
        """Remember the traders a transaction may have given positions."""
        self.traders.update(position_traders(tx))

    def holders(self, tree: Reader) -> list[tuple[bytes, Acct]]:
        """Every remembered trader that holds positions now, with its account (settled later by
        the callers); flat ones are forgotten."""
        out = []
        for trader in sorted(self.traders):
            a = read_acct(tree.get(account_key(trader)))
            if a.positions:
                out.append((trader, a))
            else:
                self.traders.discard(trader)
        return out


def due_funding(tree: Reader, now: int) -> list[Funding]:
    """Funding steps the state machine would accept at `now` (fresh price, interval passed), each
    naming the period it settles from (the market's `last_funding_time`): every step has its own
    bytes, so none is taken for one already acknowledged."""
    markets = read_markets(tree.get(markets_key()))
    out = []
    for m, market in enumerate(markets):
        try:
            check_funding_due(m, markets, now)
        except InvalidTransaction:
            continue
        out.append(Funding(m, market.last_funding_time))
    return out


@dataclass(frozen=True)
class Candidate:
    """An account below its maintenance margin and the liquidation that would help most."""

    account: bytes
    """The account."""
    market: int
    """The market of the position to liquidate."""
    size: int
    """Size to take over (a multiple of the lot, at most the position)."""
    shortfall: int
    """`maintenance margin - equity` (> 0)."""
    bankrupt: bool
    """Equity below zero: once the account has one position left, Insurance may not cover it."""


def liquidation_size(a: Acct, market_id: int, markets: Markets, shortfall: int) -> int:
    """The smallest lot multiple of the position in `market_id` whose liquidation (at the mark,
    paying the penalty) brings the account back to its maintenance margin; the whole position
    when even that does not."""
    market = markets[market_id]
    p = market.params
    held = abs(a.positions[market_id][0])
    freed_per_unit_bps = market.mark_price * (p.mmr_bps - p.liquidation_penalty_bps)
    if freed_per_unit_bps <= 0:
        return held
    units = -(-shortfall * BPS // freed_per_unit_bps)
    lots = -(-units // p.lot_size)
    return min(held, max(1, lots) * p.lot_size)


def liquidation_candidates(tree: Reader, index: RiskIndex, now: int) -> list[Candidate]:
    """Accounts the state machine would let anyone liquidate at `now` (every price of theirs
    fresh, equity below maintenance margin), worst first; for each, the position with the largest
    maintenance margin and the size that restores it."""
    markets = read_markets(tree.get(markets_key()))
    out = []
    for trader, a in index.holders(tree):
        settle(a, markets)
        if not liquidatable(a, markets, now):
            continue
        eq, mmr = equity(a, markets), maintenance_margin(a, markets)
        market_id = max(
            a.positions,
            key=lambda m: (abs(a.positions[m][0]) * markets[m].mark_price * markets[m].params.mmr_bps, -m),
        )
        out.append(
            Candidate(trader, market_id, liquidation_size(a, market_id, markets, mmr - eq), mmr - eq, eq < 0)
        )
    out.sort(key=lambda c: (-c.shortfall, c.account))
    return out


def deleverage_options(tree: Reader, index: RiskIndex, account: bytes, now: int) -> list[Deleverage]:
    """Auto-deleveragings of a bankrupt `account` whose one position Insurance cannot cover, one
    per opposite position large enough, best-ranked first: highest unrealized profit times
    leverage (ties by address). Empty if the account is not in that state. Each names the
    account's nonce, which it consumes (so a later deleverage of the same pair is another
    transaction). The state machine still decides (the counterparty must stay solvent): try
    them in order."""
    markets = read_markets(tree.get(markets_key()))
    a = read_acct(tree.get(account_key(account)))
    market_id = next(iter(a.positions), None)
    if market_id is None:
        return []
    settle(a, markets)
    try:
        check_deleverageable(account, a, market_id, markets, insurance_balance(tree), now)
    except InvalidTransaction:
        return []
    size = a.positions[market_id][0]
    ranked = []
    for trader, other in index.holders(tree):
        held = other.size(market_id)
        if trader == account or not takes_over(held, size):
            continue
        settle(other, markets)
        mark = markets[market_id].mark_price
        profit = unrealized_pnl(other.positions[market_id], mark)
        notional = abs(held) * mark
        score = profit * notional // max(equity(other, markets), 1)
        ranked.append((-score, trader))
    return [Deleverage(account, trader, market_id, a.nonce) for _, trader in sorted(ranked)]


def bankrupt_accounts(candidates: Iterable[Candidate]) -> list[bytes]:
    """The candidates with negative equity."""
    return [c.account for c in candidates if c.bankrupt]
