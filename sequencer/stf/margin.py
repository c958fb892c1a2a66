"""Cross-margin risk math (protocol section 3, "Common rules").

Accounts are worked on as `Acct`, a small mutable record (collateral, nonce, positions by market)
read from and written back to the Account leaf (`codec.read_acct`, `codec.write_acct`); markets as
the decoded Markets leaf (a tuple of `Market`, decoded once per distinct leaf value). Every
function here is integer-only and follows the protocol's formulas literally: divisions only ever
take a non-negative dividend.

The margin of open orders (`order_margin`, `check_open_order`, `adds_exposure`) is the sequencer's
rule for the orders it rests, which are not state; it is built from the same pieces as the rules
of a transaction (`position_margin`, `equity`, `exceeds_max_position`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from sequencer.stf.codec import decode_markets
from sequencer.stf.codec import read_acct as read_acct  # its old home, for callers not moved yet
from sequencer.stf.constants import BPS, MAX_POSITIONS, SIDE_BUY
from sequencer.stf.errors import (
    InsufficientMargin,
    InsufficientOrderMargin,
    OpenPositionLimit,
    PositionLimit,
    StaleOracle,
    UnknownMarket,
)
from sequencer.stf.types import Acct, Market

Markets = tuple[Market, ...]
"""The decoded Markets leaf: record `i` is market `i`."""


@lru_cache(maxsize=16)
def read_markets(value: bytes | None) -> Markets:
    """The Markets leaf value (None = no market) decoded; cached, since most transactions only
    read it."""
    return () if value is None else decode_markets(value)


def listed_market(markets: Markets, market_id: int) -> Market:
    """The record of market `market_id`; raises `UnknownMarket` if it is not listed."""
    if market_id >= len(markets):
        raise UnknownMarket(market_id)
    return markets[market_id]


def settle(a: Acct, markets: Markets) -> None:
    """Settle funding: `collateral -= size * (funding_index - snapshot)` for every position."""
    for m, p in a.positions.items():
        index = markets[m].funding_index
        if p[2] != index:
            a.collateral -= p[0] * (index - p[2])
            p[2] = index


def unrealized_pnl(position: list[int], mark: int) -> int:
    """`size * mark - open_notional` of a position `[size, open_notional, funding_snapshot]`."""
    return position[0] * mark - position[1]


def equity(a: Acct, markets: Markets) -> int:
    """`collateral + sum(unrealized_pnl)` over the positions at their markets' marks."""
    total = a.collateral
    for m, p in a.positions.items():
        total += p[0] * markets[m].mark_price - p[1]  # `unrealized_pnl`, inlined: the fill path
    return total


def position_margin(size: int, market: Market, bps: int) -> int:
    """`ceil(|size| * mark * bps / BPS)`: the margin of a position of `size` at the market's mark."""
    return (abs(size) * market.mark_price * bps + BPS - 1) // BPS


def initial_margin(a: Acct, markets: Markets) -> int:
    """`sum(ceil(|size| * mark * imr_bps / BPS))`."""
    total = 0
    for m, p in a.positions.items():
        market = markets[m]
        total += position_margin(p[0], market, market.params.imr_bps)
    return total


def maintenance_margin(a: Acct, markets: Markets) -> int:
    """`sum(ceil(|size| * mark * mmr_bps / BPS))`."""
    total = 0
    for m, p in a.positions.items():
        market = markets[m]
        total += position_margin(p[0], market, market.params.mmr_bps)
    return total


def below_maintenance(a: Acct, markets: Markets) -> bool:
    """Whether the account (funding settled) is below its maintenance margin: `equity <
    maintenance_margin`, the margin condition of a liquidation (`liquidation.check_liquidatable`)."""
    return equity(a, markets) < maintenance_margin(a, markets)


def fresh(market: Market, now: int) -> bool:
    """The market has a price no older than its staleness limit."""
    return market.oracle_time > 0 and now <= market.oracle_time + market.params.max_oracle_age


def halted(market: Market, now: int) -> bool:
    """The circuit breaker halts risk-increasing trades."""
    return now < market.halted_until


def require_fresh(market_id: int, markets: Markets, now: int) -> None:
    """Raise `StaleOracle` unless `market_id`'s price is fresh."""
    market = markets[market_id]
    if not fresh(market, now):
        raise StaleOracle(market_id, market.oracle_time, now)


def require_all_fresh(a: Acct, markets: Markets, now: int) -> None:
    """Raise `StaleOracle` unless every market of the account's positions has a fresh price."""
    for m in a.positions:
        require_fresh(m, markets, now)


def increases(before: int, after: int) -> bool:
    """A size change that adds risk: `|after| > |before|`, or a flip to the other side."""
    return abs(after) > abs(before) or (after != 0 and before != 0 and (after > 0) != (before > 0))


def reducing_size(held: int, side: int) -> int:
    """The most an order of `side` (buy 0, sell 1) may trade against a position of signed size
    `held` without increasing or flipping it (`increases`): a short's size for a buy, a long's
    for a sell, else 0."""
    return max(-held, 0) if side == SIDE_BUY else max(held, 0)


def fee(notional: int, bps: int) -> int:
    """A fee on a non-negative notional: charges round up, rebates (negative bps) down."""
    if bps >= 0:
        return (notional * bps + BPS - 1) // BPS
    return -((notional * -bps) // BPS)


def trade(a: Acct, owner: bytes, market_id: int, delta: int, price: int, markets: Markets) -> None:
    """The account buys `delta > 0` (sells `delta < 0`) at `price`, realizing PnL on the part that
    closes; raises `PositionLimit` past MAX_POSITIONS. Funding must be settled first."""
    positions = a.positions
    p = positions.get(market_id)
    if p is None:
        if len(positions) >= MAX_POSITIONS:
            raise PositionLimit(owner, market_id, f"more than {MAX_POSITIONS} positions")
        positions[market_id] = [delta, delta * price, markets[market_id].funding_index]
        return
    s, n = p[0], p[1]
    if (delta > 0) == (s > 0):
        p[0] = s + delta
        p[1] = n + delta * price
        return
    c = min(abs(delta), abs(s))
    removed = (abs(n) * c // abs(s)) * (1 if n > 0 else -1 if n < 0 else 0)
    a.collateral += (c if s > 0 else -c) * price - removed
    if abs(delta) > abs(s):
        s_new = delta + s
        p[0] = s_new
        p[1] = s_new * price
        p[2] = markets[market_id].funding_index
    elif abs(delta) == abs(s):
        del positions[market_id]
    else:
        p[0] = s + delta
        p[1] = n - removed


def exceeds_max_position(before: int, after: int, market: Market) -> bool:
    """Whether a size change from `before` to `after` grows `|size|` past the market's
    `max_position` (one that does not grow it never does, whatever its size)."""
    return abs(after) > abs(before) and abs(after) > market.params.max_position


def check_max_position(owner: bytes, market_id: int, before: int, after: int, market: Market) -> None:
    """A trade that grows `|size|` must end within the market's `max_position`."""
    if exceeds_max_position(before, after, market):
        raise PositionLimit(owner, market_id, f"|size| {abs(after)} above {market.params.max_position}")


def check_risk(
    owner: bytes,
    equity_before: int,
    mmr_before: int,
    a: Acct,
    markets: Markets,
    increased: list[int],
    now: int,
) -> None:
    """`risk_ok` of the protocol, for an account after its trades (and fees): raises the rule it
    breaks. `increased` lists the markets where its position grew or flipped; `equity_before` and
    `mmr_before` are of the account after settlement, before the trades."""
    for m in increased:
        require_fresh(m, markets, now)
    eq = equity(a, markets)
    imr = initial_margin(a, markets)
    if eq >= imr:
        return
    if increased:
        raise InsufficientMargin(owner, imr, eq)
    if eq < 0 or eq - maintenance_margin(a, markets) < equity_before - mmr_before:
        raise InsufficientMargin(owner, imr, eq)


# ---- open orders (the sequencer's admission rule) ---------------------------------------


class OpenOrders(NamedTuple):
    """An account's resting orders in one market, as the margin of open orders reads them (a
    tuple: one is made per order admitted)."""

    buy: int
    """Their total size on the buy side."""
    sell: int
    """Their total size on the sell side."""
    loss: int
    """What they would lose against the mark if each filled at its price (`order_loss`, summed)."""


NO_ORDERS = OpenOrders(0, 0, 0)
"""No open order in a market."""


def order_loss(side: int, price: int, size: int, mark: int) -> int:
    """What an order of `size` would lose against `mark` if it filled at `price`: a buy above the
    mark, a sell below it; 0 for the others (a gain is not counted)."""
    loss = (price - mark) * size if side == SIDE_BUY else (mark - price) * size
    return loss if loss > 0 else 0


def open_exposure(held: int, orders: OpenOrders) -> int:
    """The largest `|size|` the orders could leave from the position `held`: every buy filled, or
    every sell (the worst side)."""
    return max(abs(held + orders.buy), abs(held - orders.sell))


def market_order_margin(held: int, market: Market, orders: OpenOrders) -> int:
    """`order_margin` in one market: the initial margin of the worst side's position at the mark,
    plus what the orders would lose against the mark."""
    return position_margin(open_exposure(held, orders), market, market.params.imr_bps) + orders.loss


def order_margin(a: Acct, markets: Markets, orders: Mapping[int, OpenOrders]) -> int:
    """Initial margin over positions plus open orders (`orders` by market): `market_order_margin`
    in each market with orders, `initial_margin` in the others.

    Filling an open order, at its price or a better one, never lowers `equity - order_margin` but
    by its fee: its size was counted in the worst side, and the loss it realizes in `loss`."""
    total = 0
    for m, p in a.positions.items():
        if m not in orders:
            market = markets[m]
            total += position_margin(p[0], market, market.params.imr_bps)
    for m, o in orders.items():
        total += market_order_margin(a.size(m), markets[m], o)
    return total


def adds_exposure(held: int, orders: OpenOrders, side: int, price: int, mark: int) -> bool:
    """Whether a resting order on `side` at `price`, among an account's `orders` in its market
    where it holds `held`, is part of what its order margin there counts beyond the position: its
    side, every order of it filled, would leave a larger `|size|` than `held`, or it would lose
    against `mark`. Once no order adds exposure, `market_order_margin` is the position's initial
    margin; cancelling orders never makes one add exposure."""
    if side == SIDE_BUY:
        return abs(held + orders.buy) > abs(held) or price > mark
    return abs(held - orders.sell) > abs(held) or price < mark


def check_open_order(
    owner: bytes,
    a: Acct,
    markets: Markets,
    orders: Mapping[int, OpenOrders],
    market_id: int,
    side: int,
    price: int,
    size: int,
    now: int,
) -> None:
    """Whether `owner`'s account `a` (funding settled) may add `size` at `price` on `side` in
    `market_id` to its open `orders`, as an order that may rest: raises the rule it breaks.

    Its position plus its open orders on that side, this one with them, must stay within the
    market's `max_position` (`OpenPositionLimit`), unless they shrink; the market must have a
    price (`StaleOracle`); and its equity must cover `order_margin` with the order
    (`InsufficientOrderMargin`), unless the order does not raise it."""
    market = listed_market(markets, market_id)
    buy, sell, _ = orders.get(market_id, NO_ORDERS)
    held = a.size(market_id)
    if side == SIDE_BUY:
        before, other = held + buy, held - sell
        after = before + size
    else:
        before, other = held - sell, held + buy
        after = before - size
    if exceeds_max_position(before, after, market):
        raise OpenPositionLimit(owner, market_id, abs(after), market.params.max_position)
    if market.oracle_time == 0 and abs(after) > abs(before):
        raise StaleOracle(market_id, 0, now)
    # what the order adds to `market_order_margin`: the worst side may grow, and its loss counts
    imr_bps = market.params.imr_bps
    extra = (
        position_margin(max(abs(after), abs(other)), market, imr_bps)
        - position_margin(max(abs(before), abs(other)), market, imr_bps)
        + order_loss(side, price, size, market.mark_price)
    )
    if extra <= 0:
        return
    required = order_margin(a, markets, orders) + extra
    eq = equity(a, markets)
    if eq < required:
        raise InsufficientOrderMargin(owner, market_id, required, eq)
