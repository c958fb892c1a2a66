"""Hypothesis strategies of random exchange states and transactions of every type.

A case is `(state, raw transaction, L1 context)`. States are shaped as an honest tree shapes them
(listed markets with valid parameters, positions only in listed markets, sorted, never of size 0,
open notional of the size's sign, an oracle committee of distinct members), with random balances,
prices, funding indexes, halts, order leaves and filler leaves. Each transaction strategy builds a
transaction that is coherent enough to apply often (the signers are keyed traders and members,
prices on the tick, sizes on the lot, crossing prices, funded accounts) and then, with some
probability, breaks one of its rules. Nothing here decides what a transaction does: the state
machine does, and the differential test compares the verifier with it.
"""

from __future__ import annotations

from dataclasses import replace

from exchange_fixtures import NOW, member_key, trader_key
from hypothesis import strategies as st
from stf_vectors import CONFIG

from sequencer.stf.codec import (
    deposit_hash,
    encode_message,
    encode_order_state,
    encode_tx,
    forced_hash,
    message_hash,
    read_acct,
)
from sequencer.stf.constants import (
    BPS,
    FLAG_IOC,
    FLAG_POST_ONLY,
    FLAG_REDUCE_ONLY,
    INT128_MAX,
    INT128_MIN,
    MAX_COMMITTEE,
    MAX_LEGS,
    MAX_POSITIONS,
    MAX_PRICE_SIGNATURES,
    SECP256K1_N,
    SIDE_BUY,
    SIDE_SELL,
)
from sequencer.stf.eip712 import (
    address_of,
    bundle_digest,
    order_digest,
    sign_bundle,
    sign_cancel,
    sign_liquidate,
    sign_order,
    sign_price,
    sign_transfer,
    sign_withdraw,
)
from sequencer.stf.hashing import keccak
from sequencer.stf.keys import account_key, markets_key, oracle_key, order_key
from sequencer.stf.margin import equity, maintenance_margin, read_markets, settle
from sequencer.stf.state import (
    State,
    get_account,
    get_markets,
    get_next_deposit_index,
    set_account,
    set_committee,
    set_insurance,
    set_markets,
    set_next_deposit_index,
)
from sequencer.stf.types import (
    Account,
    Bundle,
    BundleFill,
    Cancel,
    Committee,
    Deleverage,
    Deposit,
    Fill,
    ForcedTx,
    Funding,
    L1Context,
    L1Message,
    Leg,
    Market,
    MarketParams,
    OracleUpdate,
    Order,
    OrderState,
    Position,
    PriceEntry,
    SetCommittee,
    SetMarket,
    Signature,
    SignedOrder,
)

Case = tuple[State, bytes, L1Context]
"""A pre-state, an encoded transaction and its batch's L1 context."""

N_TRADERS = 6
TRADER_KEYS = [trader_key(i) for i in range(N_TRADERS)]
TRADERS = [address_of(k) for k in TRADER_KEYS]
KEYLESS = [keccak(b"exchange-keyless" + bytes([i]))[:20] for i in range(2)]
N_MEMBERS = 15
MEMBER_KEYS = [member_key(i) for i in range(N_MEMBERS)]
MEMBERS = [address_of(k) for k in MEMBER_KEYS]
STRANGER_KEY = keccak(b"exchange-stranger")
"""Signs prices without being a member."""

l2_times = st.one_of(st.just(NOW), st.integers(NOW - 100, NOW + 100))


# ---- markets ---------------------------------------------------------------------------


@st.composite
def market_params(draw: st.DrawFn) -> MarketParams:
    """Parameters a SetMarket accepts."""
    mmr = draw(st.integers(1, 2_000))
    taker = draw(st.integers(0, 1_000))
    return MarketParams(
        tick_size=draw(st.sampled_from([1, 5, 100])),
        lot_size=draw(st.sampled_from([1, 10, 1_000])),
        max_position=draw(st.one_of(st.just(10**6), st.integers(1, 10**9), st.just(2**64 - 1))),
        imr_bps=draw(st.integers(mmr, min(BPS, 4 * mmr))),
        mmr_bps=mmr,
        maker_fee_bps=draw(st.one_of(st.just(-taker), st.integers(-taker, 1_000))),
        taker_fee_bps=taker,
        liquidation_penalty_bps=draw(st.integers(0, mmr)),
        breaker_bps=draw(st.one_of(st.just(0), st.integers(1, BPS))),
        max_funding_bps=draw(st.integers(0, BPS)),
        funding_interval=draw(st.sampled_from([1, 60, 3_600])),
        breaker_window=draw(st.sampled_from([1, 60, 3_600])),
        max_oracle_age=draw(st.sampled_from([1, 60, 3_600, 2**32 - 1])),
    )


@st.composite
def markets(draw: st.DrawFn, count: int) -> list[Market]:
    """`count` listed markets: most priced and fresh at NOW, some stale, unpriced or halted."""
    out = []
    for _ in range(count):
        params = draw(market_params())
        if draw(st.integers(0, 7)) == 0:
            out.append(Market(params))  # never priced
            continue
        mark = draw(st.one_of(st.integers(1, 10**4), st.integers(1, 2**63)))
        index = max(1, mark + draw(st.integers(-mark // 5, mark // 5)))
        oracle_time = NOW - draw(st.one_of(st.integers(0, 70), st.integers(0, 10**5)))
        index_value = draw(
            st.one_of(
                st.integers(-(10**6), 10**6),
                st.integers(INT128_MIN, INT128_MIN + 10**9),
                st.integers(INT128_MAX - 10**9, INT128_MAX),
            )
        )
        out.append(
            Market(
                params,
                mark_price=mark,
                index_price=index,
                oracle_time=oracle_time,
                halted_until=draw(st.one_of(st.just(0), st.integers(NOW - 100, NOW + 100))),
                funding_index=index_value,
                last_funding_time=draw(st.one_of(st.just(0), st.integers(oracle_time - 10**4, oracle_time))),
                breaker_ref_time=draw(st.one_of(st.just(0), st.integers(NOW - 4_000, NOW))),
                breaker_ref_price=draw(st.one_of(st.just(0), st.integers(1, 2 * mark))),
            )
        )
    return out


def _price_near(draw: st.DrawFn, market: Market) -> int:
    """A positive price on the tick near the mark (or anywhere)."""
    tick = market.params.tick_size
    mark = market.mark_price or draw(st.integers(1, 10**4))
    around = draw(
        st.one_of(st.integers(max(1, mark * 9 // 10), mark * 11 // 10 + 1), st.integers(1, 2 * mark))
    )
    return max(1, around // tick) * tick


def _size_of(draw: st.DrawFn, market: Market, most: int = 50) -> int:
    """A positive size on the lot."""
    return draw(st.integers(1, most)) * market.params.lot_size


# ---- accounts and states ---------------------------------------------------------------


@st.composite
def positions(draw: st.DrawFn, listed: list[Market], count: int | None = None) -> tuple[Position, ...]:
    """Up to MAX_POSITIONS positions in distinct listed markets, sorted."""
    if not listed:
        return ()
    k = draw(st.integers(0, min(MAX_POSITIONS, len(listed)))) if count is None else count
    ids = sorted(draw(st.lists(st.integers(0, len(listed) - 1), min_size=k, max_size=k, unique=True)))
    out = []
    for m in ids:
        market = listed[m]
        size = _size_of(draw, market) * draw(st.sampled_from([1, -1]))
        notional = size * _price_near(draw, market)
        snapshot = market.funding_index - draw(st.one_of(st.just(0), st.integers(-1_000, 1_000)))
        snapshot = min(INT128_MAX, max(INT128_MIN, snapshot))
        out.append(Position(m, size, notional, snapshot))
    return tuple(out)


collaterals = st.one_of(
    st.integers(10**9, 10**15),
    st.integers(0, 10**5),
    st.integers(-(10**5), 10**5),
    st.integers(0, 2**100),
)


@st.composite
def accounts(draw: st.DrawFn, listed: list[Market], rich: bool = False) -> Account:
    """An account: collateral (rich: plenty), a small nonce, positions."""
    collateral = draw(st.integers(10**12, 10**15)) if rich else draw(collaterals)
    return Account(collateral, draw(st.integers(0, 2)), draw(positions(listed)))


@st.composite
def states(draw: st.DrawFn, min_markets: int = 1) -> State:
    """A random exchange state (see the module docstring)."""
    state = State()
    listed = draw(markets(draw(st.integers(min_markets, 16))))
    if listed:
        set_markets(state, listed)
    for address in TRADERS + KEYLESS:
        if draw(st.integers(0, 4)) > 0:
            set_account(state, address, draw(accounts(listed, rich=draw(st.booleans()))))
    if draw(st.integers(0, 5)) > 0:
        count = draw(st.integers(1, MAX_COMMITTEE))
        members = draw(st.lists(st.sampled_from(MEMBERS), min_size=count, max_size=count, unique=True))
        set_committee(
            state, Committee(draw(st.integers(1, min(count, MAX_PRICE_SIGNATURES))), tuple(members))
        )
    if draw(st.booleans()):
        set_insurance(state, draw(st.one_of(st.integers(0, 10**4), st.integers(0, 10**12))))
    set_next_deposit_index(state, draw(st.integers(0, 3)))
    for i in range(draw(st.integers(0, 30))):  # filler leaves deepen the tree
        set_account(state, keccak(b"filler" + i.to_bytes(2, "big"))[:20], Account(i + 1, i))
    return state


def _markets(state: State) -> tuple[Market, ...]:
    return get_markets(state)


def _ctx(draw: st.DrawFn, queue: dict[int, bytes] | None = None, queue_end: int = 0) -> L1Context:
    return L1Context(queue_end, queue or {}, draw(l2_times))


def _fund(draw: st.DrawFn, state: State, address: bytes) -> None:
    """Give `address` plenty of collateral (often: a trade then usually passes margin)."""
    a = get_account(state, address)
    if draw(st.integers(0, 3)) > 0:
        set_account(state, address, replace(a, collateral=draw(st.integers(10**12, 10**15))))


# ---- orders ----------------------------------------------------------------------------


def chance(draw: st.DrawFn, percent: int) -> bool:
    """True with about `percent` % probability (a middle band: Hypothesis favours the ends)."""
    return 30 <= draw(st.integers(0, 199)) < 30 + 2 * percent


def _sign(i: int, order: Order) -> SignedOrder:
    return sign_order(TRADER_KEYS[i], order, CONFIG)


def _break_sig(draw: st.DrawFn, signed: SignedOrder) -> SignedOrder:
    """The order with a signature that is not its trader's (malleated, garbage, of another
    order, or with the other recovery byte)."""
    how = draw(st.integers(0, 3))
    sig = signed.sig
    if how == 0:
        sig = Signature(sig.r, SECP256K1_N - sig.s, 55 - sig.v)
    elif how == 1:
        sig = Signature(1, 1, 27)
    elif how == 2:
        return SignedOrder(replace(signed.order, salt=signed.order.salt ^ 1), sig)
    else:
        sig = Signature(sig.r, sig.s, 55 - sig.v)
    return SignedOrder(signed.order, sig)


def _live_expiry(draw: st.DrawFn) -> int:
    return draw(st.sampled_from([0, 0, NOW + 101, 2**64 - 1]))


def _leaf(draw: st.DrawFn, state: State, digest: bytes, size: int, usable: bool) -> None:
    """Sometimes give an order a leaf; `usable`: partly filled, leaving room; else possibly
    cancelled or filled past room."""
    if not chance(draw, 30):
        return
    if usable:  # `size` is below 0 when the fill itself overfills (the lot and overfill flaws)
        filled = OrderState(draw(st.integers(0, max(size, 0) // 2)), False)
    else:
        filled = draw(st.sampled_from([OrderState(size, False), OrderState(0, True), OrderState(1, True)]))
    state.tree.set(order_key(digest), encode_order_state(filled))


# ---- transactions ----------------------------------------------------------------------


FILL_FLAWS = [
    "self_trade",
    "market",
    "side",
    "maker_ioc",
    "taker_post_only",
    "flags",
    "tick",
    "lot",
    "zero",
    "expired",
    "leaf",
    "overfill",
    "cross",
    "signature",
    "huge",
]


@st.composite
def fills(draw: st.DrawFn) -> Case:
    state = draw(states())
    listed = _markets(state)
    flaw = draw(st.sampled_from(FILL_FLAWS)) if chance(draw, 40) else "none"
    m = draw(st.integers(0, len(listed) - 1))
    market = listed[m]
    if market.oracle_time == 0 or chance(draw, 70):  # mostly a fresh price
        listed = list(listed)
        listed[m] = market = replace(
            market,
            mark_price=market.mark_price or 1_000,
            index_price=market.index_price or 1_000,
            oracle_time=NOW - 1,
            halted_until=0 if chance(draw, 80) else market.halted_until,
        )
        set_markets(state, listed)
    maker_i, taker_i = draw(st.lists(st.integers(0, N_TRADERS - 1), min_size=2, max_size=2, unique=True))
    if flaw == "self_trade":
        taker_i = maker_i
    for i in (maker_i, taker_i):
        _fund(draw, state, TRADERS[i])
    tick, lot = market.params.tick_size, market.params.lot_size
    maker_side = draw(st.sampled_from([SIDE_BUY, SIDE_SELL]))
    maker_price = _price_near(draw, market)
    size = _size_of(draw, market, 20)
    towards = 1 if maker_side == SIDE_SELL else -1
    taker_price = max(tick, maker_price + towards * draw(st.integers(0, 3)) * tick)
    reduce = draw(st.sampled_from([0, 0, 0, FLAG_REDUCE_ONLY]))
    maker = Order(
        TRADERS[maker_i],
        m,
        maker_side,
        maker_price,
        size * draw(st.integers(1, 3)),
        draw(st.sampled_from([0, 0, FLAG_POST_ONLY, reduce])),
        _live_expiry(draw),
        draw(st.integers(0, 2**64 - 1)),
    )
    taker = Order(
        TRADERS[taker_i],
        m,
        1 - maker_side,
        taker_price,
        size * draw(st.integers(1, 3)),
        draw(st.sampled_from([0, 0, FLAG_IOC, reduce])),
        _live_expiry(draw),
        draw(st.integers(0, 2**64 - 1)),
    )
    fill_size = size
    if flaw == "market":
        taker = replace(taker, market=draw(st.sampled_from([(m + 1) % len(listed), 40])))
        maker = replace(maker, market=taker.market) if chance(draw, 50) else maker
    elif flaw == "side":
        taker = replace(taker, side=draw(st.sampled_from([maker.side, 2, 255])))
    elif flaw == "maker_ioc":
        maker = replace(maker, flags=FLAG_IOC)
    elif flaw == "taker_post_only":
        taker = replace(taker, flags=FLAG_POST_ONLY)
    elif flaw == "flags":
        taker = replace(taker, flags=draw(st.sampled_from([8, 128, FLAG_POST_ONLY | FLAG_IOC])))
    elif flaw == "tick" and tick > 1:
        maker = replace(maker, price=maker.price + draw(st.integers(1, tick - 1)))
    elif flaw == "lot" and lot > 1:
        fill_size = size + draw(st.integers(1, lot - 1))
    elif flaw == "zero":
        fill_size = 0
    elif flaw == "expired":
        taker = replace(taker, expiry=draw(st.integers(NOW - 100, NOW + 100)))
    elif flaw == "overfill":
        fill_size = max(maker.size, taker.size) + lot
    elif flaw == "cross":
        taker = replace(taker, price=draw(st.integers(1, 2 * maker_price)))
    elif flaw == "huge":
        fill_size = draw(st.integers(1, 2**20)) * lot
        maker, taker = (
            replace(maker, size=max(maker.size, fill_size)),
            replace(taker, size=max(taker.size, fill_size)),
        )
    signed_maker, signed_taker = _sign(maker_i, maker), _sign(taker_i, taker)
    if flaw == "signature":
        if draw(st.booleans()):
            signed_maker = _break_sig(draw, signed_maker)
        else:
            signed_taker = _break_sig(draw, signed_taker)
    _leaf(draw, state, order_digest(signed_maker.order, CONFIG), maker.size - fill_size, flaw != "leaf")
    _leaf(draw, state, order_digest(signed_taker.order, CONFIG), taker.size - fill_size, flaw != "leaf")
    return state, encode_tx(Fill(signed_maker, signed_taker, fill_size)), _ctx(draw)


BUNDLE_FLAWS = [
    "same_market",
    "self_trade",
    "leg_tick",
    "leg_side",
    "cross",
    "signature",
    "maker_signature",
    "expired",
    "replayed",
    "maker_ioc",
    "unlisted",
]


@st.composite
def bundle_fills(draw: st.DrawFn) -> Case:
    state = draw(states())
    listed = list(_markets(state))
    flaw = draw(st.sampled_from(BUNDLE_FLAWS)) if chance(draw, 40) else "none"
    trader_i = draw(st.integers(0, N_TRADERS - 1))
    _fund(draw, state, TRADERS[trader_i])
    count = draw(st.integers(1, min(MAX_LEGS, len(listed))))
    ids = draw(st.lists(st.integers(0, len(listed) - 1), min_size=count, max_size=count, unique=True))
    if flaw == "same_market" and count > 1:
        ids[1] = ids[0]
    elif flaw == "unlisted":
        ids[-1] = 40
    others = [i for i in range(N_TRADERS) if i != trader_i]
    legs, makers = [], []
    for k, m in enumerate(ids):
        if m >= len(listed):
            legs.append(Leg(m, SIDE_BUY, 1, 1))
            makers.append(_sign(others[0], Order(TRADERS[others[0]], m, SIDE_SELL, 1, 1, 0, 0, 0)))
            continue
        if listed[m].oracle_time == 0 or chance(draw, 70):
            listed[m] = replace(
                listed[m],
                mark_price=listed[m].mark_price or 1_000,
                index_price=listed[m].index_price or 1_000,
                oracle_time=NOW - 1,
                halted_until=0,
            )
        market = listed[m]
        maker_i = trader_i if flaw == "self_trade" and k == 0 else draw(st.sampled_from(others))
        _fund(draw, state, TRADERS[maker_i])
        side = draw(st.sampled_from([SIDE_BUY, SIDE_SELL]))
        price = _price_near(draw, market)
        size = _size_of(draw, market, 20)
        tick = market.params.tick_size
        leg_price = max(tick, price + (1 if side == SIDE_BUY else -1) * draw(st.integers(0, 2)) * tick)
        legs.append(Leg(m, side, leg_price, size))
        flags = draw(st.sampled_from([0, 0, 0, FLAG_REDUCE_ONLY, FLAG_POST_ONLY]))
        if flaw == "maker_ioc" and k == 0:
            flags = FLAG_IOC
        maker = Order(
            TRADERS[maker_i],
            m,
            1 - side,
            price,
            size * draw(st.integers(1, 2)),
            flags,
            _live_expiry(draw),
            draw(st.integers(0, 2**64 - 1)),
        )
        signed = _sign(maker_i, maker)
        if flaw == "maker_signature" and k == 0:
            signed = _break_sig(draw, signed)
        _leaf(draw, state, order_digest(signed.order, CONFIG), maker.size - size, True)
        makers.append(signed)
    set_markets(state, listed)
    if flaw == "leg_tick":
        legs[0] = replace(legs[0], price=legs[0].price + 1, size=legs[0].size + draw(st.integers(0, 3)))
    elif flaw == "leg_side":
        legs[0] = replace(legs[0], side=draw(st.sampled_from([2, makers[0].order.side])))
    elif flaw == "cross":
        legs[0] = replace(legs[0], price=draw(st.integers(1, 2 * max(1, makers[0].order.price))))
    expiry = draw(st.integers(NOW - 100, NOW + 100)) if flaw == "expired" else _live_expiry(draw)
    bundle = Bundle(TRADERS[trader_i], tuple(legs), expiry, draw(st.integers(0, 2**64 - 1)))
    sig = sign_bundle(TRADER_KEYS[trader_i], bundle, CONFIG)
    if flaw == "signature":
        sig = Signature(sig.r, sig.s, 55 - sig.v)
    if flaw == "replayed":
        filled = draw(st.sampled_from([OrderState(1), OrderState(0, True)]))
        state.tree.set(order_key(bundle_digest(bundle, CONFIG)), encode_order_state(filled))
    return state, encode_tx(BundleFill(bundle, sig, tuple(makers))), _ctx(draw)


@st.composite
def cancels(draw: st.DrawFn) -> Case:
    state = draw(states())
    i = draw(st.integers(0, N_TRADERS - 1))
    order = Order(
        TRADERS[i],
        draw(st.integers(0, 20)),
        draw(st.integers(0, 2)),
        draw(st.integers(0, 2**64 - 1)),
        draw(st.integers(0, 2**64 - 1)),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 2**64 - 1)),
        draw(st.integers(0, 2**64 - 1)),
    )
    signer = (i + 1) % N_TRADERS if chance(draw, 20) else i
    sig = sign_cancel(TRADER_KEYS[signer], order, CONFIG)
    if chance(draw, 10):
        sig = Signature(sig.r, SECP256K1_N - sig.s, 55 - sig.v)
    _leaf(draw, state, order_digest(order, CONFIG), draw(st.integers(0, 2**64 - 1)), chance(draw, 50))
    return state, encode_tx(Cancel(order, sig)), _ctx(draw)


ORACLE_FLAWS = [
    "unlisted",
    "no_committee",
    "below_threshold",
    "stranger",
    "twice",
    "zero",
    "future",
    "old",
    "tampered",
]


@st.composite
def oracle_updates(draw: st.DrawFn) -> Case:
    state = draw(states())
    listed = _markets(state)
    flaw = draw(st.sampled_from(ORACLE_FLAWS)) if chance(draw, 40) else "none"
    m = 40 if flaw == "unlisted" else draw(st.integers(0, len(listed) - 1))
    ctx = _ctx(draw)
    size = draw(st.integers(1, MAX_COMMITTEE))
    committee = draw(st.lists(st.integers(0, N_MEMBERS - 1), min_size=size, max_size=size, unique=True))
    threshold = draw(st.integers(1, min(size, MAX_PRICE_SIGNATURES)))
    if flaw == "no_committee":
        state = _without_committee(state)
    else:
        set_committee(state, Committee(threshold, tuple(MEMBERS[j] for j in committee)))
    count = draw(st.integers(threshold, min(size, MAX_PRICE_SIGNATURES)))
    if flaw == "below_threshold" and threshold > 1:
        count = threshold - 1
    signers = draw(st.permutations(committee))[:count]
    base = draw(st.one_of(st.integers(1, 10**4), st.integers(1, 2**62)))
    # Newer than the market's last update (which is at most NOW - 0): mostly at the batch time.
    newest = ctx.l2_time
    prices = []
    for j in signers:
        mark = max(1, base + draw(st.integers(-base // 4, base // 4)))
        index = max(1, base + draw(st.integers(-base // 4, base // 4)))
        at = newest - draw(st.sampled_from([0, 0, 1, 5]))
        prices.append(PriceEntry(mark, index, at, sign_price(MEMBER_KEYS[j], m, mark, index, at, CONFIG)))
    if flaw == "stranger":
        p = prices[0]
        prices[0] = replace(p, sig=sign_price(STRANGER_KEY, m, p.mark, p.index, p.timestamp, CONFIG))
    elif flaw == "twice" and len(prices) > 1:
        prices[1] = prices[0]
    elif flaw in ("zero", "future", "old"):
        j, p = signers[0], prices[0]
        mark, at = p.mark, p.timestamp
        if flaw == "zero":
            mark = 0
        elif flaw == "future":
            at = ctx.l2_time + 1
        else:
            at = 0
        prices = [
            PriceEntry(mark, p.index, at, sign_price(MEMBER_KEYS[j], m, mark, p.index, at, CONFIG))
        ] * len(prices)
    elif flaw == "tampered":
        prices[0] = replace(prices[0], mark=prices[0].mark + 1)
    return state, encode_tx(OracleUpdate(m, tuple(prices))), ctx


def _without_committee(state: State) -> State:
    """A copy of `state` without an Oracle leaf (leaves are never deleted: rebuild the tree)."""
    out = State()
    skip = oracle_key()
    for key, value in state.tree.items():
        if key != skip:
            out.tree.set(key, value)
    return out


@st.composite
def fundings(draw: st.DrawFn) -> Case:
    state = draw(states())
    listed = list(_markets(state))
    m = 40 if chance(draw, 10) else draw(st.integers(0, len(listed) - 1))
    ctx = _ctx(draw)
    if m < len(listed) and chance(draw, 70):  # a due step on a fresh price, often several periods
        market = listed[m]
        interval = market.params.funding_interval
        back = draw(st.integers(1, 20)) * interval + draw(st.integers(0, interval - 1))
        listed[m] = replace(
            market,
            mark_price=market.mark_price or 1_000,
            index_price=market.index_price or 1_000,
            oracle_time=ctx.l2_time,
            last_funding_time=max(1, ctx.l2_time - back),
        )
        set_markets(state, listed)
    # the period it settles from: the market's (a replayed or a future one sometimes)
    since = listed[m].last_funding_time if m < len(listed) else draw(st.integers(0, NOW))
    if chance(draw, 15):
        since = max(0, since + draw(st.sampled_from([-1, 1, -60, 60, -(2**20)])))
    return state, encode_tx(Funding(m, since)), ctx


@st.composite
def liquidations(draw: st.DrawFn) -> Case:
    state = draw(states())
    listed = list(_markets(state))
    liquidator_i, account_i = draw(
        st.lists(st.integers(0, N_TRADERS - 1), min_size=2, max_size=2, unique=True)
    )
    if chance(draw, 8):
        account_i = liquidator_i
    _fund(draw, state, TRADERS[liquidator_i])
    account = get_account(state, TRADERS[account_i])
    if not account.positions or chance(draw, 30):
        account = replace(
            account, positions=draw(positions(listed, count=draw(st.integers(1, min(8, len(listed))))))
        )
    target = draw(st.sampled_from(account.positions))
    m = target.market
    if chance(draw, 80):  # every price fresh
        for p in account.positions:
            mk = listed[p.market]
            listed[p.market] = replace(
                mk,
                mark_price=mk.mark_price or 1_000,
                index_price=mk.index_price or 1_000,
                oracle_time=NOW - 1,
            )
        set_markets(state, listed)
    if chance(draw, 70):  # under water: equity a little below maintenance (or below zero)
        probe = replace(account, collateral=0)
        set_account(state, TRADERS[account_i], probe)
        a = read_acct(state.tree.get(account_key(TRADERS[account_i])))
        marks = read_markets(state.tree.get(markets_key()))
        settle(a, marks)
        shortfall = maintenance_margin(a, marks) - equity(a, marks)
        account = replace(account, collateral=shortfall - draw(st.integers(1, 10**6)))
    set_account(state, TRADERS[account_i], account)
    lot = listed[m].params.lot_size
    size = draw(st.integers(1, max(1, abs(target.size) // lot))) * lot
    if chance(draw, 10):
        size += draw(st.integers(1, lot))
    nonce = get_account(state, TRADERS[liquidator_i]).nonce + chance(draw, 8)
    if chance(draw, 10):
        m, size = 40, lot
    tx = sign_liquidate(TRADER_KEYS[liquidator_i], TRADERS[account_i], m, size, nonce, CONFIG)
    if chance(draw, 8):
        tx = replace(tx, size=tx.size + lot)
    return state, encode_tx(tx), _ctx(draw)


@st.composite
def deleverages(draw: st.DrawFn) -> Case:
    state = draw(states())
    listed = list(_markets(state))
    account_i, counterparty_i = draw(
        st.lists(st.integers(0, N_TRADERS - 1), min_size=2, max_size=2, unique=True)
    )
    if chance(draw, 8):
        counterparty_i = account_i
    m = draw(st.integers(0, len(listed) - 1))
    if chance(draw, 80):
        mk = listed[m]
        listed[m] = replace(
            mk, mark_price=mk.mark_price or 1_000, index_price=mk.index_price or 1_000, oracle_time=NOW - 1
        )
        set_markets(state, listed)
    market = listed[m]
    if chance(draw, 85):
        # A bankrupt account holding only market m, against an opposite position.
        size = _size_of(draw, market) * draw(st.sampled_from([1, -1]))
        entry = _price_near(draw, market)
        loss = draw(st.integers(1, 10**6))
        collateral = -(size * market.mark_price - size * entry) - loss
        snapshot = market.funding_index - draw(st.sampled_from([0, 0, 1, -3]))
        snapshot = min(INT128_MAX, max(INT128_MIN, snapshot))
        nonce = draw(st.sampled_from([0, 0, 1, 7, 2**64 - 1]))
        set_account(
            state,
            TRADERS[account_i],
            Account(collateral, nonce, (Position(m, size, size * entry, snapshot),)),
        )
        other = get_account(state, TRADERS[counterparty_i])
        cp_size = size if chance(draw, 10) else -size * draw(st.integers(1, 3))
        kept = tuple(p for p in other.positions if p.market != m)
        new = Position(m, cp_size, cp_size * _price_near(draw, market), market.funding_index)
        held = tuple(sorted((*kept[: MAX_POSITIONS - 1], new), key=lambda p: p.market))
        set_account(state, TRADERS[counterparty_i], Account(draw(collaterals), 0, held))
        if chance(draw, 60):
            set_insurance(state, draw(st.integers(0, loss + 10)))
    if chance(draw, 8):
        m = 40
    # the account's nonce, which the deleverage consumes (a replayed or a future one sometimes)
    nonce = get_account(state, TRADERS[account_i]).nonce
    if chance(draw, 10):
        nonce = nonce - 1 if nonce else nonce + 1
    return state, encode_tx(Deleverage(TRADERS[account_i], TRADERS[counterparty_i], m, nonce)), _ctx(draw)


@st.composite
def margined_transfers(draw: st.DrawFn) -> Case:
    """A Transfer or Withdraw from (or a Transfer to) an account with positions."""
    state = draw(states())
    listed = list(_markets(state))
    i, j = draw(st.lists(st.integers(0, N_TRADERS - 1), min_size=2, max_size=2, unique=True))
    sender = get_account(state, TRADERS[i])
    if not sender.positions:
        sender = replace(
            sender, positions=draw(positions(listed, count=draw(st.integers(1, min(8, len(listed))))))
        )
    if chance(draw, 70):
        for p in sender.positions:
            mk = listed[p.market]
            listed[p.market] = replace(
                mk,
                mark_price=mk.mark_price or 1_000,
                index_price=mk.index_price or 1_000,
                oracle_time=NOW - 1,
            )
        set_markets(state, listed)
    collateral = draw(st.integers(1, 10**12))
    set_account(state, TRADERS[i], replace(sender, collateral=collateral))
    amount = draw(st.one_of(st.integers(1, collateral), st.integers(1, 10**6)))
    nonce = sender.nonce
    if draw(st.booleans()):
        tx = sign_transfer(TRADER_KEYS[i], TRADERS[j], amount, nonce, CONFIG)
    else:
        to = bytes(20) if chance(draw, 10) else TRADERS[j]
        tx = sign_withdraw(TRADER_KEYS[i], to, amount, nonce, CONFIG)
    return state, encode_tx(tx), _ctx(draw)


@st.composite
def margined_deposits(draw: st.DrawFn) -> Case:
    """A Deposit to an account with positions (settled first)."""
    state = draw(states())
    i = draw(st.integers(0, N_TRADERS - 1))
    listed = _markets(state)
    account = get_account(state, TRADERS[i])
    if not account.positions:
        set_account(state, TRADERS[i], replace(account, positions=draw(positions(listed, count=1))))
    index = get_next_deposit_index(state)
    amount = draw(st.integers(0, 2**100))
    queue = {index: deposit_hash(index, TRADERS[i], amount + chance(draw, 15))}
    queue_end = index + (0 if chance(draw, 15) else draw(st.integers(1, 2)))
    return state, encode_tx(Deposit(index, TRADERS[i], amount)), L1Context(queue_end, queue, draw(l2_times))


MARKET_FLAWS = ["id", "zero", "margins", "penalty", "fees", "caps", "taker"]
ZERO_FIELDS = [
    "tick_size",
    "lot_size",
    "max_position",
    "funding_interval",
    "breaker_window",
    "max_oracle_age",
]


@st.composite
def messages(draw: st.DrawFn) -> Case:
    """An L1Message: SetMarket and SetCommittee payloads, valid or not, and garbage."""
    state = draw(states(min_markets=0))
    n = len(_markets(state))
    kind = draw(st.sampled_from(["market", "market", "committee", "committee", "garbage"]))
    flaw = draw(st.sampled_from(MARKET_FLAWS)) if chance(draw, 40) else "none"
    if kind == "market":
        params = draw(market_params())
        m = draw(st.integers(0, min(n, 15)))
        if flaw == "id":
            m = draw(st.sampled_from([n + 1, 16, 2**16 - 1]))
        elif flaw == "zero":
            params = replace(params, **{draw(st.sampled_from(ZERO_FIELDS)): 0})
        elif flaw == "margins":
            params = replace(
                params,
                mmr_bps=draw(st.sampled_from([0, params.imr_bps + 1])),
                imr_bps=min(params.imr_bps, BPS),
            )
        elif flaw == "penalty":
            params = replace(params, liquidation_penalty_bps=params.mmr_bps + 1)
        elif flaw == "fees":
            params = replace(
                params, maker_fee_bps=draw(st.sampled_from([-params.taker_fee_bps - 1, 1_001, -(2**15)]))
            )
        elif flaw == "taker":
            params = replace(params, taker_fee_bps=draw(st.sampled_from([-1, 1_001, 2**15 - 1])))
        elif flaw == "caps":
            field = draw(st.sampled_from(["breaker_bps", "max_funding_bps", "imr_bps"]))
            params = replace(params, **{field: draw(st.sampled_from([BPS + 1, 2**16 - 1]))})
        payload = encode_message(SetMarket(m, params))
    elif kind == "committee":
        count = draw(st.integers(1, MAX_COMMITTEE))
        members = draw(st.lists(st.sampled_from(MEMBERS), min_size=count, max_size=count, unique=True))
        threshold = draw(st.integers(1, min(count, MAX_PRICE_SIGNATURES)))
        if flaw != "none":
            how = draw(st.integers(0, 4))
            if how == 0:
                threshold = draw(st.sampled_from([0, count + 1, 12]))
            elif how == 1:
                members = [*members, members[0]]
            elif how == 2:
                members = [*members[:-1], bytes(20)]
            elif how == 3:
                members = members + MEMBERS[:2]  # 16 or 17 members, or a repeat
            else:
                members = []
        payload = encode_message(SetCommittee(Committee(threshold, tuple(members))))
    else:
        payload = bytes([draw(st.integers(0, 3))]) + draw(st.binary(min_size=0, max_size=80))
    index = get_next_deposit_index(state)
    queue = {index: message_hash(index, payload + (b"\x00" if chance(draw, 10) else b""))}
    queue_end = index + (0 if chance(draw, 10) else draw(st.integers(1, 2)))
    return state, encode_tx(L1Message(index, payload)), L1Context(queue_end, queue, draw(l2_times))


FORCED_INNER_KINDS = [
    "signed",
    "signed",
    "unmargined",
    "unmargined",
    "cancel",
    "cancel",
    "resigned",
    "flipped",
    "other_type",
    "nested",
    "garbage",
]


@st.composite
def forced_txs(draw: st.DrawFn) -> Case:
    """A ForcedTx whose inner bytes are a Transfer or Withdraw from an account with positions
    (valid or breaking a rule), a Cancel (as `cancels` draws it: by the order's trader or not, of
    an order cancelled or not), one with a bad signature, another type's bytes, a nested ForcedTx
    or garbage; its queue entry matching or not, inside the batch or not."""
    kind = draw(st.sampled_from(FORCED_INNER_KINDS))
    state, inner, c = draw(cancels() if kind == "cancel" else margined_transfers())
    index = get_next_deposit_index(state)
    if kind == "unmargined":  # the sender holds no position: the inner transaction mostly applies
        i = TRADERS.index(inner[1:21])
        sender = get_account(state, TRADERS[i])
        set_account(state, TRADERS[i], Account(draw(st.integers(1, 10**12)), sender.nonce))
        amount = draw(st.integers(1, 10**12))
        sign = sign_transfer if inner[0] == 2 else sign_withdraw
        inner = encode_tx(sign(TRADER_KEYS[i], inner[21:41], amount, sender.nonce, CONFIG))
    elif kind == "resigned":
        inner = inner[:81] + draw(st.binary(min_size=65, max_size=65))
    elif kind == "flipped":  # a Transfer's signature on a Withdraw and vice versa
        inner = bytes([5 - inner[0]]) + inner[1:]
    elif kind == "other_type":
        inner = bytes([draw(st.sampled_from([1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]))]) + inner[1:]
    elif kind == "nested":
        inner = encode_tx(ForcedTx(index, inner))
    elif kind == "garbage":
        inner = draw(st.binary(min_size=1, max_size=200))
    queue = {index: forced_hash(index, inner + (b"\x00" if chance(draw, 10) else b""))}
    queue_end = index + (0 if chance(draw, 10) else draw(st.integers(1, 2)))
    return state, encode_tx(ForcedTx(index, inner)), L1Context(queue_end, queue, c.l2_time)


@st.composite
def garbled(draw: st.DrawFn, kind: int, length: int) -> Case:
    """Random bytes of a type's exact length (they decode; signatures fail), or off by one."""
    state = draw(states())
    body = bytearray(draw(st.binary(min_size=length - 1, max_size=length - 1)))
    if kind == 5:
        body[2] = (length - 4) // 89  # the price count that matches the length
    elif kind == 11:
        body[36] = (length - 103) // 140  # the leg count that matches the length
    cut = draw(st.sampled_from([0, 0, 0, -1, 1]))
    raw = bytes([kind]) + (bytes(body[:cut]) if cut < 0 else bytes(body) + bytes(cut))
    return state, raw, _ctx(draw)


SCENARIOS: dict[str, st.SearchStrategy[Case]] = {
    "fill": fills(),
    "bundle_fill": bundle_fills(),
    "cancel": cancels(),
    "oracle_update": oracle_updates(),
    "funding": fundings(),
    "liquidate": liquidations(),
    "deleverage": deleverages(),
    "transfer_or_withdraw_with_positions": margined_transfers(),
    "deposit_with_positions": margined_deposits(),
    "l1message": messages(),
    "forced": forced_txs(),
    "garbled_forced": garbled(12, 155),
    "garbled_fill": garbled(7, 251),
    "garbled_liquidate": garbled(9, 124),
    "garbled_deleverage": garbled(10, 51),
    "garbled_cancel": garbled(8, 122),
    "garbled_oracle_update": garbled(5, 4 + 89 * 2),
    "garbled_bundle_fill": garbled(11, 103 + 140 * 2),
    "garbled_funding": garbled(6, 11),
}
"""Every transaction type's strategy, by name."""
