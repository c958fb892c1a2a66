"""Exchange fixtures shared by the state-machine, property and differential tests.

Two markets with small round numbers so that every expected value in a vector can be worked out
by hand, a 3-of-5 oracle committee, and helpers that sign orders, cancels, prices, liquidations
and bundles for the keyed traders.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stf_vectors import CONFIG

from sequencer.stf.codec import (
    encode_account,
    encode_committee,
    encode_markets,
    encode_order_state,
    encode_word,
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
)
from sequencer.stf.hashing import keccak
from sequencer.stf.keys import account_key, insurance_key, markets_key, oracle_key, order_key
from sequencer.stf.types import (
    Account,
    Bundle,
    BundleFill,
    Cancel,
    Committee,
    L1Context,
    Leg,
    Liquidate,
    Market,
    MarketParams,
    Order,
    OrderState,
    Position,
    PriceEntry,
    SignedOrder,
)

NOW = 1_700_000_000
"""The batches' `l2_time` in the vectors."""

ETH, BTC = 0, 1
"""Market ids."""

ETH_PARAMS = MarketParams(
    tick_size=1,
    lot_size=10,
    max_position=1_000_000,
    imr_bps=1000,
    mmr_bps=500,
    maker_fee_bps=-10,
    taker_fee_bps=20,
    liquidation_penalty_bps=100,
    breaker_bps=1500,
    max_funding_bps=50,
    funding_interval=60,
    breaker_window=60,
    max_oracle_age=60,
)
"""ETH: tick 1, lot 10, 10% / 5% margins, maker rebate 0.1%, taker 0.2%, breaker 15% in 60 s."""

BTC_PARAMS = MarketParams(
    tick_size=5,
    lot_size=1,
    max_position=1000,
    imr_bps=2000,
    mmr_bps=1000,
    maker_fee_bps=0,
    taker_fee_bps=10,
    liquidation_penalty_bps=200,
    breaker_bps=0,
    max_funding_bps=100,
    funding_interval=60,
    breaker_window=60,
    max_oracle_age=60,
)
"""BTC: tick 5, lot 1, 20% / 10% margins, no maker fee, taker 0.1%, no breaker."""


def trader_key(i: int) -> bytes:
    """Private key of trader `i`."""
    return keccak(b"exchange-trader" + bytes([i]))


def member_key(i: int) -> bytes:
    """Private key of committee member `i`."""
    return keccak(b"exchange-oracle" + bytes([i]))


TRADERS = [address_of(trader_key(i)) for i in range(8)]
MEMBERS = [address_of(member_key(i)) for i in range(5)]
COMMITTEE = Committee(3, tuple(MEMBERS))


def market(params: MarketParams, mark: int, **fields: int) -> Market:
    """A listed market with a fresh price (`oracle_time = NOW - 10`) unless told otherwise."""
    values = {"mark_price": mark, "index_price": mark, "oracle_time": NOW - 10, "last_funding_time": NOW - 10}
    values.update(fields)
    return Market(params, **values)


MARKETS = [market(ETH_PARAMS, 100), market(BTC_PARAMS, 5000)]
"""ETH at 100, BTC at 5000, both fresh."""


def markets_with(i: int, **fields: Any) -> list[Market]:
    """MARKETS with market `i`'s fields replaced."""
    out = list(MARKETS)
    out[i] = replace(out[i], **fields)
    return out


def acct(
    collateral: int, nonce: int = 0, *positions: tuple[int, int, int] | tuple[int, int, int, int]
) -> bytes:
    """An Account value; positions as (market, size, open_notional[, funding_snapshot])."""
    held = tuple(Position(p[0], p[1], p[2], p[3] if len(p) > 3 else 0) for p in positions)  # type: ignore[misc]
    return encode_account(Account(collateral, nonce, held))


def leaves(
    accounts: dict[bytes, bytes],
    *,
    markets: list[Market] | None = None,
    insurance: int | None = None,
    committee: Committee | None = COMMITTEE,
    orders: dict[bytes, OrderState] | None = None,
) -> dict[bytes, bytes]:
    """The leaves of an exchange state: markets, committee, insurance, accounts, orders."""
    listed = MARKETS if markets is None else markets
    out: dict[bytes, bytes] = {markets_key(): encode_markets(listed)} if listed else {}
    if committee is not None:
        out[oracle_key()] = encode_committee(committee)
    if insurance is not None:
        out[insurance_key()] = encode_word(insurance)
    for address, value in accounts.items():
        out[account_key(address)] = value
    for digest, state in (orders or {}).items():
        out[order_key(digest)] = encode_order_state(state)
    return out


def ctx(now: int = NOW) -> L1Context:
    """A batch context with no queue entries."""
    return L1Context(0, {}, now)


def order(i: int, market_id: int, side: int, price: int, size: int, **fields: int) -> SignedOrder:
    """Trader `i`'s order, signed."""
    o = Order(
        TRADERS[i],
        market_id,
        side,
        price,
        size,
        fields.get("flags", 0),
        fields.get("expiry", 0),
        fields.get("salt", 0),
    )
    return sign_order(trader_key(i), o, CONFIG)


def digest(signed: SignedOrder) -> bytes:
    """The order's EIP-712 digest (names its Order leaf)."""
    return order_digest(signed.order, CONFIG)


def cancel(i: int, signed: SignedOrder) -> Cancel:
    """Trader `i` cancels `signed`."""
    return Cancel(signed.order, sign_cancel(trader_key(i), signed.order, CONFIG))


def price(member: int, market_id: int, mark: int, index: int, timestamp: int) -> PriceEntry:
    """Member `member`'s signed price."""
    return PriceEntry(
        mark, index, timestamp, sign_price(member_key(member), market_id, mark, index, timestamp, CONFIG)
    )


def liquidate(i: int, account: bytes, market_id: int, size: int, nonce: int = 0) -> Liquidate:
    """Trader `i` liquidates `size` of `account`'s position."""
    return sign_liquidate(trader_key(i), account, market_id, size, nonce, CONFIG)


def bundle_fill(
    i: int, legs: list[Leg], makers: list[SignedOrder], expiry: int = 0, salt: int = 0
) -> BundleFill:
    """Trader `i`'s bundle against `makers`, signed."""
    bundle = Bundle(TRADERS[i], tuple(legs), expiry, salt)
    return BundleFill(bundle, sign_bundle(trader_key(i), bundle, CONFIG), tuple(makers))


def bundle_key(b: BundleFill) -> bytes:
    """The bundle's Order leaf key."""
    return order_key(bundle_digest(b.bundle, CONFIG))
