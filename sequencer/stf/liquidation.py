"""Rules of liquidation and auto-deleveraging (protocol section 3, "Risk").

A liquidator takes over part of an under-margined account's position at the mark; the account
pays a penalty into the Insurance fund, which also pays any debt left when the account's last
position closes. When the fund cannot, the bankrupt account's last position is closed against one
opposite position at the bankruptcy price (auto-deleveraging), so no collateral stays negative.
"""

from __future__ import annotations

from sequencer.stf.codec import read_acct, write_acct
from sequencer.stf.constants import BPS
from sequencer.stf.eip712 import liquidate_digest, recover_sig
from sequencer.stf.errors import BadNonce, BadSignature, NotLiquidatable, SelfTrade
from sequencer.stf.funds import Reader, Writes
from sequencer.stf.keys import account_key, insurance_key, markets_key
from sequencer.stf.margin import (
    Markets,
    below_maintenance,
    equity,
    fresh,
    listed_market,
    maintenance_margin,
    read_markets,
    require_all_fresh,
    require_fresh,
    settle,
    trade,
)
from sequencer.stf.trading import TradeSide, check_size, insurance_balance
from sequencer.stf.types import Acct, ChainConfig, Deleverage, L1Context, Liquidate


def liquidatable(a: Acct, markets: Markets, now: int) -> bool:
    """Whether anyone may liquidate the account `a` (funding settled) at `now`: every market it
    holds a position in has a fresh price, and its equity is below its maintenance margin."""
    return all(fresh(markets[m], now) for m in a.positions) and below_maintenance(a, markets)


def check_liquidatable(address: bytes, a: Acct, markets: Markets, now: int) -> None:
    """Raise unless `liquidatable(a, markets, now)`, with the half that fails: a stale price
    (`StaleOracle`) or equity at or above the maintenance margin (`NotLiquidatable`)."""
    if not liquidatable(a, markets, now):
        require_all_fresh(a, markets, now)
        eq, mmr = equity(a, markets), maintenance_margin(a, markets)
        raise NotLiquidatable(address, f"equity {eq} is at or above the maintenance margin {mmr}")


def check_deleverageable(
    address: bytes, a: Acct, market_id: int, markets: Markets, insurance: int, now: int
) -> None:
    """Raise unless the account `a` of `address` (funding settled) may be auto-deleveraged in
    `market_id` at `now` when the Insurance fund holds `insurance`: the market's price is fresh
    (`StaleOracle`), its only position is in that market, its equity is negative and the fund
    cannot cover it (`NotLiquidatable`)."""
    require_fresh(market_id, markets, now)
    if list(a.positions) != [market_id]:
        raise NotLiquidatable(address, f"its only position must be in market {market_id}")
    eq = equity(a, markets)
    if eq >= 0:
        raise NotLiquidatable(address, f"equity {eq} is not negative")
    if insurance >= -eq:
        raise NotLiquidatable(address, f"the insurance fund {insurance} covers {-eq}: liquidate")


def takes_over(held: int, size: int) -> bool:
    """Whether a position of signed size `held` can be a deleverage's counterparty for a bankrupt
    position of signed size `size`: it is on the other side and at least as large."""
    return held != 0 and (held > 0) != (size > 0) and abs(held) >= abs(size)


def plan_liquidate(
    tree: Reader, tx: Liquidate, ctx: L1Context, config: ChainConfig, verified: bool
) -> Writes:
    """Liquidate: the signer takes `size` of the account's position in the market at the mark."""
    if not verified and recover_sig(liquidate_digest(tx, config), tx.sig) != tx.liquidator:
        raise BadSignature(tx.liquidator)
    liquidator_key = account_key(tx.liquidator)
    liquidator = read_acct(tree.get(liquidator_key))
    if tx.nonce != liquidator.nonce:
        raise BadNonce(tx.liquidator, liquidator.nonce, tx.nonce)
    if tx.liquidator == tx.account:
        raise SelfTrade(tx.account)
    markets = read_markets(tree.get(markets_key()))
    m = tx.market
    market = listed_market(markets, m)
    size = tx.size
    check_size(size, market.params.lot_size)
    account_key_ = account_key(tx.account)
    account = read_acct(tree.get(account_key_))
    settle(account, markets)
    s = account.size(m)
    if s == 0 or size > abs(s):
        raise NotLiquidatable(tx.account, f"holds {abs(s)} in market {m}, less than {size}")
    now = ctx.l2_time
    check_liquidatable(tx.account, account, markets, now)
    mark = market.mark_price
    direction = 1 if s > 0 else -1
    trade(account, tx.account, m, -direction * size, mark, markets)
    penalty = (size * mark * market.params.liquidation_penalty_bps + BPS - 1) // BPS
    account.collateral -= penalty
    insurance = insurance_balance(tree) + penalty

    side = TradeSide(tx.liquidator, liquidator, markets)
    side.trade(m, direction * size, mark, markets)
    side.finish(markets, now, set(), check_halt=False)  # a circuit breaker never stops a liquidation

    if not account.positions and account.collateral < 0:
        debt = -account.collateral
        if insurance < debt:
            raise NotLiquidatable(
                tx.account, f"debt {debt} is above the insurance fund {insurance}: deleverage"
            )
        insurance -= debt
        account.collateral = 0
    liquidator.nonce += 1
    return {
        liquidator_key: write_acct(liquidator),
        account_key_: write_acct(account),
        insurance_key(): insurance.to_bytes(32, "big"),
    }


def plan_deleverage(tree: Reader, tx: Deleverage, ctx: L1Context) -> Writes:
    """Deleverage: close a bankrupt account's last position against an opposite one at the
    bankruptcy price, after the Insurance fund gave all it has. It names and consumes the
    account's nonce, so each deleverage of an account is a distinct transaction."""
    if tx.account == tx.counterparty:
        raise SelfTrade(tx.account)
    markets = read_markets(tree.get(markets_key()))
    m = tx.market
    listed_market(markets, m)
    account_key_, counterparty_key = account_key(tx.account), account_key(tx.counterparty)
    account = read_acct(tree.get(account_key_))
    if tx.nonce != account.nonce:
        raise BadNonce(tx.account, account.nonce, tx.nonce)
    counterparty = read_acct(tree.get(counterparty_key))
    settle(account, markets)
    settle(counterparty, markets)
    insurance = insurance_balance(tree)
    check_deleverageable(tx.account, account, m, markets, insurance, ctx.l2_time)
    s, notional = account.positions[m][0], account.positions[m][1]
    if not takes_over(counterparty.size(m), s):
        raise NotLiquidatable(tx.counterparty, f"holds no opposite position of {abs(s)} in market {m}")
    collateral = account.collateral + insurance
    if s > 0:
        price = (notional - collateral + s - 1) // s
    else:
        if collateral - notional < 0:
            raise NotLiquidatable(tx.account, "no bankruptcy price at or above zero")
        price = (collateral - notional) // -s
    account.collateral = collateral
    trade(account, tx.account, m, -s, price, markets)
    trade(counterparty, tx.counterparty, m, s, price, markets)
    if equity(counterparty, markets) < 0:
        raise NotLiquidatable(tx.counterparty, "cannot absorb the loss")
    account.nonce += 1
    writes: Writes = {account_key_: write_acct(account), counterparty_key: write_acct(counterparty)}
    if insurance:
        writes[insurance_key()] = bytes(32)
    return writes
