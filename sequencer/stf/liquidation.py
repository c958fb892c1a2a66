"""Rules of liquidation and auto-deleveraging (protocol section 3, "Risk").

A liquidator takes over part of an under-margined account's position at the mark; the account
pays a penalty into the Insurance fund, which also pays any debt left when the account's last
position closes. When the fund cannot, the bankrupt account's last position is closed against one
opposite position at the bankruptcy price (auto-deleveraging), so no collateral stays negative.
"""

from __future__ import annotations

from sequencer.stf.constants import BPS
from sequencer.stf.eip712 import liquidate_digest, recover_sig
from sequencer.stf.errors import BadNonce, BadSignature, NotLiquidatable, SelfTrade, SizeOffLot, UnknownMarket
from sequencer.stf.funds import Reader, Writes
from sequencer.stf.keys import account_key, insurance_key, markets_key
from sequencer.stf.margin import (
    equity,
    maintenance_margin,
    read_acct,
    read_markets,
    require_all_fresh,
    require_fresh,
    settle,
    trade,
    write_acct,
)
from sequencer.stf.trading import TradeSide, insurance_balance
from sequencer.stf.types import ChainConfig, Deleverage, L1Context, Liquidate


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
    if m >= len(markets):
        raise UnknownMarket(m)
    market = markets[m]
    size = tx.size
    if size == 0 or size % market.params.lot_size:
        raise SizeOffLot(size, market.params.lot_size)
    account_key_ = account_key(tx.account)
    account = read_acct(tree.get(account_key_))
    settle(account, markets)
    s = account.size(m)
    if s == 0 or size > abs(s):
        raise NotLiquidatable(tx.account, f"holds {abs(s)} in market {m}, less than {size}")
    now = ctx.l2_time
    require_all_fresh(account, markets, now)
    eq, mmr = equity(account, markets), maintenance_margin(account, markets)
    if eq >= mmr:
        raise NotLiquidatable(tx.account, f"equity {eq} is at or above the maintenance margin {mmr}")
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
    if m >= len(markets):
        raise UnknownMarket(m)
    account_key_, counterparty_key = account_key(tx.account), account_key(tx.counterparty)
    account = read_acct(tree.get(account_key_))
    if tx.nonce != account.nonce:
        raise BadNonce(tx.account, account.nonce, tx.nonce)
    counterparty = read_acct(tree.get(counterparty_key))
    settle(account, markets)
    settle(counterparty, markets)
    require_fresh(m, markets, ctx.l2_time)
    if list(account.positions) != [m]:
        raise NotLiquidatable(tx.account, f"its only position must be in market {m}")
    s, notional = account.positions[m][0], account.positions[m][1]
    eq = equity(account, markets)
    if eq >= 0:
        raise NotLiquidatable(tx.account, f"equity {eq} is not negative")
    insurance = insurance_balance(tree)
    if insurance >= -eq:
        raise NotLiquidatable(tx.account, f"the insurance fund {insurance} covers {-eq}: liquidate")
    sc = counterparty.size(m)
    if sc == 0 or (sc > 0) == (s > 0) or abs(sc) < abs(s):
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
