"""Resting orders stay backed by margin after they rest: the sequencer's rule over open orders
(`orders.check_backed`) kept while the account and the prices move.

An account is covered while its equity covers its order margin (`stf.margin.order_margin`: its
positions plus its counted orders, each market's worse side as if filled, and their losses
against the marks), both as of the mempool's view, funding settled.

- A signed Transfer or Withdraw that would leave its sender with counted orders uncovered is
  refused (`check_covered`: `insufficient_order_margin`, changing nothing).
- What cannot be refused (a forced Transfer or Withdraw from the L1 queue, a new mark, a funding
  step, a market's new parameters, a fill or liquidation sent as a transaction, an L1 revert) is
  followed by `cover`: an uncovered account has its orders that add exposure
  (`stf.margin.adds_exposure`) cancelled, newest first, until it is covered or none is left
  (reason `margin` on the feed, status `cancelled`). A moved market costs one look at each
  account with counted orders (`Exposure`), and a check of those with orders or a position in
  it; accounts without resting orders are never read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sequencer.exchange.orders import settled_account
from sequencer.exchange.requests import Run
from sequencer.matching import RemoveReason
from sequencer.stf.codec import read_acct
from sequencer.stf.constants import FLAG_REDUCE_ONLY
from sequencer.stf.errors import OpenOrdersUncovered, TransferUncoversOrders
from sequencer.stf.keys import account_key
from sequencer.stf.margin import Markets, adds_exposure, equity, order_margin
from sequencer.stf.transition import touched_accounts
from sequencer.stf.types import Transfer, Tx, Withdraw

if TYPE_CHECKING:
    from sequencer.exchange.engine import Exchange


def shortfall(ex: Exchange, trader: bytes, markets: Markets) -> tuple[int, int] | None:
    """(order margin, equity) of `trader` when its equity does not cover its order margin; None
    when it does (or it has no counted order)."""
    if not ex.exposure.counts(trader):
        return None
    a = settled_account(ex, trader, markets)
    required = order_margin(a, markets, ex.exposure.of(trader, markets))
    eq = equity(a, markets)
    return None if eq >= required else (required, eq)


def check_covered(ex: Exchange, tx: Tx) -> None:
    """After a staged Transfer or Withdraw: raise `TransferUncoversOrders` if its sender's open
    orders are no longer covered (the caller unstages it)."""
    if type(tx) is Transfer or type(tx) is Withdraw:
        short = shortfall(ex, tx.sender, ex.markets())
        if short is not None:
            raise TransferUncoversOrders(tx.sender, *short)


def cover(ex: Exchange, traders: Iterable[bytes], run: Run, markets: Markets) -> None:
    """Cancel the orders that add exposure of each uncovered account among `traders`, newest
    first, until it is covered (or none is left)."""
    for trader in traders:
        short = shortfall(ex, trader, markets)
        if short is None:
            continue
        a = settled_account(ex, trader, markets)
        eq = short[1]
        for o in reversed(ex.open_orders(trader)):
            if ex.resting[o.order_id].signed.order.flags & FLAG_REDUCE_ONLY:
                continue
            orders = ex.exposure.of(trader, markets)
            m = o.market
            if not adds_exposure(a.size(m), orders[m], int(o.side), o.price, markets[m].mark_price):
                continue
            run.rejected[o.order_id] = OpenOrdersUncovered(trader, *short)
            ex.left_book(ex.books[m].remove(o.order_id, RemoveReason.MARGIN), run)
            required = order_margin(a, markets, ex.exposure.of(trader, markets))
            if eq >= required:
                break
            short = (required, eq)


def moved(before: Markets, after: Markets) -> list[int]:
    """The markets (listed in `before`) whose mark, funding index or parameters differ in `after`."""
    if after is before:
        return []
    return [
        m
        for m, (old, new) in enumerate(zip(before, after, strict=False))
        if (old.mark_price, old.funding_index, old.params) != (new.mark_price, new.funding_index, new.params)
    ]


def moved_traders(ex: Exchange, markets: list[int]) -> list[bytes]:
    """The accounts with counted orders that `markets` moving can uncover: those with orders in
    one of them, and those holding a position in one of them (read from the view, or from the
    account kept for admission while its leaf is the same)."""
    out = []
    tree = ex.mempool.view.tree
    ids = set(markets)
    for trader in ex.exposure.traders():
        if not ids.isdisjoint(ex.exposure.markets_of(trader)):
            out.append(trader)
            continue
        value = tree.get(account_key(trader))
        kept = ex.settled.get(trader)
        positions = kept[2].positions if kept is not None and kept[0] is value else read_acct(value).positions
        if not ids.isdisjoint(positions):
            out.append(trader)
    return out


def cover_moved(ex: Exchange, run: Run, txs: Iterable[Tx] = ()) -> None:
    """Cover the accounts that `txs` touch and those that the markets moved since the last
    pass (`Exchange.covered_markets`) can uncover."""
    markets = ex.markets()
    traders = {a for tx in txs for a in touched_accounts(tx) if ex.exposure.counts(a)}
    changed = moved(ex.covered_markets, markets)
    if changed:
        traders.update(moved_traders(ex, changed))
    ex.covered_markets = markets
    if traders:
        cover(ex, sorted(traders), run, markets)
