"""Rules of trading (protocol section 3, "Trading"): fills, cancels, bundles.

The order book is the sequencer's business; what is checked here is each fill: both orders
signed and live, the prices cross at the maker's price, sizes within both orders' remainders,
fees charged, and both accounts above initial margin after the fill (or the fill only reduces
risk without losing more than the margin it frees).
"""

from __future__ import annotations

from sequencer.stf.codec import read_acct, write_acct
from sequencer.stf.constants import (
    FLAG_IOC,
    FLAG_POST_ONLY,
    FLAG_REDUCE_ONLY,
    KNOWN_FLAGS,
    SIDE_BUY,
    SIDE_SELL,
)
from sequencer.stf.eip712 import bundle_digest, cancel_digest, order_digest, recover_sig
from sequencer.stf.errors import (
    BadSignature,
    InvalidOrder,
    MarketHalted,
    OrderCancelled,
    OrderExpired,
    Overfill,
    PriceOffTick,
    ReduceOnly,
    SelfTrade,
    SizeOffLot,
)
from sequencer.stf.funds import Reader, Writes
from sequencer.stf.keys import account_key, insurance_key, markets_key, order_key
from sequencer.stf.margin import (
    Markets,
    check_max_position,
    check_risk,
    equity,
    fee,
    halted,
    increases,
    listed_market,
    maintenance_margin,
    read_markets,
    settle,
    trade,
)
from sequencer.stf.types import Acct, BundleFill, Cancel, ChainConfig, Fill, L1Context, Leg, Market, Order

_from_bytes = int.from_bytes
_ONE = (1).to_bytes(32, "big")
_ZERO = bytes(32)


def check_side(side: int) -> None:
    """Raise `InvalidOrder` unless `side` is buy (0) or sell (1)."""
    if side != SIDE_BUY and side != SIDE_SELL:
        raise InvalidOrder(f"side {side} is neither buy (0) nor sell (1)")


def check_flags(flags: int) -> None:
    """Raise `InvalidOrder` for an unknown flag, or POST_ONLY with IOC (they exclude each other)."""
    if flags & ~KNOWN_FLAGS or (flags & FLAG_POST_ONLY and flags & FLAG_IOC):
        raise InvalidOrder(f"flags 0x{flags:02x}")


def check_price(price: int, tick_size: int) -> None:
    """Raise `PriceOffTick` unless `price` is a positive multiple of the market's tick."""
    if price == 0 or price % tick_size:
        raise PriceOffTick(price, tick_size)


def check_size(size: int, lot_size: int) -> None:
    """Raise `SizeOffLot` unless `size` is a positive multiple of the market's lot."""
    if size == 0 or size % lot_size:
        raise SizeOffLot(size, lot_size)


def expired(expiry: int, now: int) -> bool:
    """Whether an order or bundle with this `expiry` is dead at `now`: `expiry != 0 and
    now >= expiry` (it is live strictly before its expiry second; 0 never expires)."""
    return expiry != 0 and now >= expiry


def check_unexpired(expiry: int, now: int) -> None:
    """Raise `OrderExpired` if an order or bundle with this `expiry` is dead at `now` (`expired`)."""
    if expired(expiry, now):
        raise OrderExpired(expiry, now)


def check_order(order: Order, market: Market, now: int) -> None:
    """Side, flags, tick, lot and liveness of one order at time `now` (raises the rule it breaks).

    Public so that the sequencer admits orders with the very checks a Fill runs (and its order
    book checks its own records with the same `check_*` functions, one by one)."""
    check_side(order.side)
    check_flags(order.flags)
    p = market.params
    check_price(order.price, p.tick_size)
    check_size(order.size, p.lot_size)
    check_unexpired(order.expiry, now)


def leg_market(leg: Leg, markets: Markets) -> Market:
    """The market of a bundle's leg, after checking that it is listed and the side is buy or sell.

    Public so that the sequencer looks for a leg's maker only where a BundleFill could fill it."""
    market = listed_market(markets, leg.market)
    check_side(leg.side)
    return market


def order_room(tree: Reader, key: bytes, digest: bytes, order_size: int, size: int) -> int:
    """The order's filled size, after checking it is not cancelled and has room for `size`.

    `key` is `order_key(digest)`. Public so that the sequencer reads an order's leaf by the
    rule a Fill applies."""
    value = tree.get(key)
    if value is None:
        filled = 0
    else:
        if value[63]:
            raise OrderCancelled(digest)
        filled = _from_bytes(value[:32], "big")
    if filled + size > order_size:
        raise Overfill(digest, order_size, filled, size)
    return filled


def insurance_balance(tree: Reader) -> int:
    """The Insurance fund's balance (0 if never written)."""
    value = tree.get(insurance_key())
    return 0 if value is None else _from_bytes(value, "big")


class TradeSide:
    """One account of a trade: its record (settled on creation), its equity and maintenance
    margin before the trade, and the size it held in each market it traded."""

    __slots__ = ("acct", "address", "equity_before", "mmr_before", "sizes_before")

    def __init__(self, address: bytes, acct: Acct, markets: Markets) -> None:
        self.address = address
        self.acct = acct
        settle(acct, markets)
        self.equity_before = equity(acct, markets)
        self.mmr_before = maintenance_margin(acct, markets)
        self.sizes_before: dict[int, int] = {}

    def trade(self, market_id: int, delta: int, price: int, markets: Markets) -> None:
        """Trade, remembering the size held before the first trade in this market."""
        if market_id not in self.sizes_before:
            self.sizes_before[market_id] = self.acct.size(market_id)
        trade(self.acct, self.address, market_id, delta, price, markets)

    def finish(self, markets: Markets, now: int, reduce_only: set[int], *, check_halt: bool = True) -> None:
        """Position limits, reduce-only, halts (unless `check_halt` is False: liquidations) and
        margin for every market this side traded."""
        increased = []
        for m, before in self.sizes_before.items():
            after = self.acct.size(m)
            market = markets[m]
            if increases(before, after):
                if m in reduce_only:
                    raise ReduceOnly(self.address, m)
                check_max_position(self.address, m, before, after, market)
                if check_halt and halted(market, now):
                    raise MarketHalted(m, market.halted_until)
                increased.append(m)
        check_risk(self.address, self.equity_before, self.mmr_before, self.acct, markets, increased, now)


def plan_fill(tree: Reader, tx: Fill, ctx: L1Context, config: ChainConfig, verified: bool) -> Writes:
    """Fill: the maker's resting order trades with the taker's arriving order at the maker's price."""
    maker, taker = tx.maker.order, tx.taker.order
    if maker.trader == taker.trader:
        raise SelfTrade(maker.trader)
    maker_digest = order_digest(maker, config)
    taker_digest = order_digest(taker, config)
    if not verified:
        if recover_sig(maker_digest, tx.maker.sig) != maker.trader:
            raise BadSignature(maker.trader)
        if recover_sig(taker_digest, tx.taker.sig) != taker.trader:
            raise BadSignature(taker.trader)
    markets = read_markets(tree.get(markets_key()))
    m = maker.market
    if taker.market != m:
        raise InvalidOrder("the orders are for different markets")
    market = listed_market(markets, m)
    now = ctx.l2_time
    check_order(maker, market, now)
    check_order(taker, market, now)
    if maker.side == taker.side:
        raise InvalidOrder("both orders are on one side")
    if maker.flags & FLAG_IOC:
        raise InvalidOrder("an IOC order never rests, so it is never the maker")
    if taker.flags & FLAG_POST_ONLY:
        raise InvalidOrder("a post-only order is never the taker")
    size = tx.size
    check_size(size, market.params.lot_size)
    maker_key, taker_key = order_key(maker_digest), order_key(taker_digest)
    maker_filled = order_room(tree, maker_key, maker_digest, maker.size, size)
    taker_filled = order_room(tree, taker_key, taker_digest, taker.size, size)
    if taker.price < maker.price if taker.side == SIDE_BUY else taker.price > maker.price:
        raise InvalidOrder("the prices do not cross")
    price = maker.price

    maker_acct_key, taker_acct_key = account_key(maker.trader), account_key(taker.trader)
    maker_side = TradeSide(maker.trader, read_acct(tree.get(maker_acct_key)), markets)
    taker_side = TradeSide(taker.trader, read_acct(tree.get(taker_acct_key)), markets)
    delta = size if taker.side == SIDE_BUY else -size
    taker_side.trade(m, delta, price, markets)
    maker_side.trade(m, -delta, price, markets)
    notional = size * price
    maker_fee = fee(notional, market.params.maker_fee_bps)
    taker_fee = fee(notional, market.params.taker_fee_bps)
    maker_side.acct.collateral -= maker_fee
    taker_side.acct.collateral -= taker_fee
    maker_side.finish(markets, now, {m} if maker.flags & FLAG_REDUCE_ONLY else set())
    taker_side.finish(markets, now, {m} if taker.flags & FLAG_REDUCE_ONLY else set())

    writes: Writes = {
        maker_acct_key: write_acct(maker_side.acct),
        taker_acct_key: write_acct(taker_side.acct),
        maker_key: (maker_filled + size).to_bytes(32, "big") + _ZERO,
        taker_key: (taker_filled + size).to_bytes(32, "big") + _ZERO,
    }
    if maker_fee + taker_fee:
        writes[insurance_key()] = (insurance_balance(tree) + maker_fee + taker_fee).to_bytes(32, "big")
    return writes


def plan_cancel(tree: Reader, tx: Cancel, config: ChainConfig, verified: bool) -> Writes:
    """Cancel: the order's trader marks it cancelled (it can then never fill)."""
    order = tx.order
    if not verified and recover_sig(cancel_digest(order, config), tx.sig) != order.trader:
        raise BadSignature(order.trader)
    digest = order_digest(order, config)
    key = order_key(digest)
    value = tree.get(key)
    if value is not None and value[63]:
        raise OrderCancelled(digest)
    filled = b"" if value is None else value[:32]
    return {key: (filled or _ZERO) + _ONE}


def plan_bundle_fill(
    tree: Reader, tx: BundleFill, ctx: L1Context, config: ChainConfig, verified: bool
) -> Writes:
    """BundleFill: every leg of the trader's bundle fills in full against its maker order, or none."""
    bundle = tx.bundle
    trader = bundle.trader
    digest = bundle_digest(bundle, config)
    if not verified and recover_sig(digest, tx.sig) != trader:
        raise BadSignature(trader)
    now = ctx.l2_time
    check_unexpired(bundle.expiry, now)
    bundle_key = order_key(digest)
    value = tree.get(bundle_key)
    if value is not None:
        if value[63]:
            raise OrderCancelled(digest)
        if _from_bytes(value[:32], "big"):
            raise Overfill(digest, 1, 1, 1)
    markets = read_markets(tree.get(markets_key()))
    legs = bundle.legs
    if len({leg.market for leg in legs}) != len(legs):
        raise InvalidOrder("the legs of a bundle are in distinct markets")
    maker_digests = []
    for leg, signed in zip(legs, tx.makers, strict=True):
        market = leg_market(leg, markets)
        check_price(leg.price, market.params.tick_size)
        check_size(leg.size, market.params.lot_size)
        maker = signed.order
        maker_digest = order_digest(maker, config)
        if not verified and recover_sig(maker_digest, signed.sig) != maker.trader:
            raise BadSignature(maker.trader)
        if maker.trader == trader:
            raise SelfTrade(trader)
        if maker.market != leg.market:
            raise InvalidOrder("a maker order is for another market than its leg")
        check_order(maker, market, now)
        if maker.side == leg.side:
            raise InvalidOrder("a maker order is on its leg's side")
        if maker.flags & FLAG_IOC:
            raise InvalidOrder("an IOC order never rests, so it is never the maker")
        if leg.price < maker.price if leg.side == SIDE_BUY else leg.price > maker.price:
            raise InvalidOrder("the prices do not cross")
        maker_digests.append(maker_digest)

    trader_key = account_key(trader)
    sides: dict[bytes, TradeSide] = {trader: TradeSide(trader, read_acct(tree.get(trader_key)), markets)}
    reduce_only: dict[bytes, set[int]] = {trader: set()}
    writes: Writes = {}
    fees = 0
    for leg, signed, maker_digest in zip(legs, tx.makers, maker_digests, strict=True):
        maker = signed.order
        key = order_key(maker_digest)
        filled = order_room(tree, key, maker_digest, maker.size, leg.size)
        if maker.trader not in sides:
            sides[maker.trader] = TradeSide(
                maker.trader, read_acct(tree.get(account_key(maker.trader))), markets
            )
            reduce_only[maker.trader] = set()
        if maker.flags & FLAG_REDUCE_ONLY:
            reduce_only[maker.trader].add(leg.market)
        params = markets[leg.market].params
        delta = leg.size if leg.side == SIDE_BUY else -leg.size
        price = maker.price
        sides[trader].trade(leg.market, delta, price, markets)
        sides[maker.trader].trade(leg.market, -delta, price, markets)
        notional = leg.size * price
        maker_fee = fee(notional, params.maker_fee_bps)
        taker_fee = fee(notional, params.taker_fee_bps)
        sides[maker.trader].acct.collateral -= maker_fee
        sides[trader].acct.collateral -= taker_fee
        fees += maker_fee + taker_fee
        writes[key] = (filled + leg.size).to_bytes(32, "big") + _ZERO
    for address, side in sides.items():
        side.finish(markets, now, reduce_only[address])

    out: Writes = {trader_key: write_acct(sides[trader].acct), bundle_key: _ONE + _ZERO}
    if fees:
        out[insurance_key()] = (insurance_balance(tree) + fees).to_bytes(32, "big")
    for signed, maker_digest in zip(tx.makers, maker_digests, strict=True):
        out[account_key(signed.order.trader)] = write_acct(sides[signed.order.trader].acct)
        out[order_key(maker_digest)] = writes[order_key(maker_digest)]
    return out
