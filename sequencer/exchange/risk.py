"""An account's risk as the state machine sees it: equity, margins, margin ratio, and the mark
price at which each position would become liquidatable.

Everything is computed with the state machine's own functions (`sequencer.stf.margin`): funding
is settled as `settle` does, and the liquidation price is found by asking `below_maintenance` (the
margin condition of a liquidation) itself at trial marks (a bisection), never by a formula of our
own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sequencer.stf.codec import read_acct
from sequencer.stf.constants import BPS
from sequencer.stf.funds import Reader
from sequencer.stf.keys import account_key, markets_key
from sequencer.stf.margin import (
    Markets,
    below_maintenance,
    equity,
    initial_margin,
    maintenance_margin,
    read_markets,
    settle,
    unrealized_pnl,
)
from sequencer.stf.types import Acct

MAX_MARK = 2**64 - 1
"""Highest mark price (uint64)."""


@dataclass(frozen=True, slots=True)
class PositionRisk:
    """One open position."""

    market: int
    """Market id."""
    size: int
    """Signed size (> 0 long)."""
    open_notional: int
    """Signed sum paid for the open size."""
    mark_price: int
    """The market's mark."""
    unrealized_pnl: int
    """`size * mark - open_notional`."""
    liquidation_price: int | None
    """The mark at which the account becomes liquidatable (equity below maintenance margin),
    other marks unchanged: a long is liquidatable at or below it, a short at or above it. None
    when no mark in 1 .. 2^64 - 1 makes it liquidatable."""


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """An account's collateral, equity and margins, funding settled."""

    collateral: int
    """Collateral after settling funding."""
    equity: int
    """`collateral + Σ unrealized PnL`."""
    initial_margin: int
    """What new risk needs."""
    maintenance_margin: int
    """Below it the account can be liquidated."""
    margin_ratio_bps: int | None
    """`floor(equity * 10,000 / maintenance_margin)`: under 10,000 the account can be
    liquidated; None without positions."""
    positions: tuple[PositionRisk, ...]
    """Open positions by market."""


def account_risk(tree: Reader, address: bytes) -> AccountRisk:
    """The risk of `address` in the state `tree` (the chain's, or the mempool's view)."""
    markets = read_markets(tree.get(markets_key()))
    acct = read_acct(tree.get(account_key(address)))
    settle(acct, markets)
    eq = equity(acct, markets)
    mm = maintenance_margin(acct, markets)
    positions = tuple(
        PositionRisk(
            market=m,
            size=p[0],
            open_notional=p[1],
            mark_price=markets[m].mark_price,
            unrealized_pnl=unrealized_pnl(p, markets[m].mark_price),
            liquidation_price=liquidation_price(acct, markets, m),
        )
        for m, p in sorted(acct.positions.items())
    )
    return AccountRisk(
        collateral=acct.collateral,
        equity=eq,
        initial_margin=initial_margin(acct, markets),
        maintenance_margin=mm,
        margin_ratio_bps=None if not acct.positions else (eq * BPS // mm if mm > 0 else None),
        positions=positions,
    )


def _liquidatable_at(acct: Acct, markets: Markets, market_id: int, mark: int) -> bool:
    trial = (*markets[:market_id], replace(markets[market_id], mark_price=mark), *markets[market_id + 1 :])
    return below_maintenance(acct, trial)


def liquidation_price(acct: Acct, markets: Markets, market_id: int) -> int | None:
    """The mark of `market_id` at which `acct` (settled) turns liquidatable, other marks fixed.

    `equity - maintenance_margin` never decreases with the mark for a long (each unit of mark adds
    `size` to equity and at most `ceil(size * mmr_bps / BPS) ≤ size` to the margin) and never
    increases for a short, so the liquidatable marks are an interval from 1 up (long) or down
    from 2^64 - 1 (short), found by bisection.
    """
    size = acct.size(market_id)
    if size == 0:
        return None
    if size > 0:  # the highest liquidatable mark
        if not _liquidatable_at(acct, markets, market_id, 1):
            return None
        low, high = 1, MAX_MARK  # liquidatable at low; find the last such
        if _liquidatable_at(acct, markets, market_id, high):
            return high
        while high - low > 1:
            mid = (low + high) // 2
            if _liquidatable_at(acct, markets, market_id, mid):
                low = mid
            else:
                high = mid
        return low
    if not _liquidatable_at(acct, markets, market_id, MAX_MARK):
        return None
    low, high = 1, MAX_MARK  # liquidatable at high; find the first such
    if _liquidatable_at(acct, markets, market_id, low):
        return low
    while high - low > 1:
        mid = (low + high) // 2
        if _liquidatable_at(acct, markets, market_id, mid):
            high = mid
        else:
            low = mid
    return high
