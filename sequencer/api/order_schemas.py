"""Request and response bodies of the exchange endpoints: orders, cancels, bundles, markets,
books, fills (kept apart from the `stf` types; `to_*` methods build those)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sequencer.api.schemas import HexAddress, HexSignature, ItemError, split_signature
from sequencer.exchange import FillRecord, OrderDetails
from sequencer.stf.constants import MAX_LEGS
from sequencer.stf.types import Bundle, Cancel, Leg, Market, Order, Signature, SignedOrder
from sequencer.wire import BigInt, Uint8, Uint16, Uint64

MAX_ORDERS_PER_REQUEST = 1000
"""Most orders in one `POST /v1/orders/batch`."""


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _signature(signature: str) -> Signature:
    return Signature(*split_signature(signature))


class OrderFields(BaseModel):
    """The EIP-712 `Order` message, field by field (protocol section 3)."""

    model_config = ConfigDict(extra="forbid")

    trader: HexAddress
    market: Uint16
    side: Uint8
    """0 buys, 1 sells."""
    price: Uint64
    """Limit price: collateral per size unit, a multiple of the market's tick."""
    size: Uint64
    """A multiple of the market's lot."""
    flags: Uint8 = 0
    """POST_ONLY 1, REDUCE_ONLY 2, IOC 4."""
    expiry: Uint64 = 0
    """Unix second from which the order is dead; 0 never."""
    salt: Uint64 = 0
    """Makes otherwise equal orders distinct."""

    def to_order(self) -> Order:
        """The state machine's order."""
        return Order(
            bytes.fromhex(self.trader[2:]),
            self.market,
            self.side,
            self.price,
            self.size,
            self.flags,
            self.expiry,
            self.salt,
        )


class OrderRequest(OrderFields):
    """A signed order: the `Order` fields and the trader's EIP-712 signature (`r || s || v`)."""

    signature: HexSignature

    def to_signed(self) -> SignedOrder:
        """The state machine's signed order."""
        return SignedOrder(self.to_order(), _signature(self.signature))


class OrderBatchRequest(BaseModel):
    """Up to 1,000 signed orders, placed in order with one durable commit."""

    model_config = ConfigDict(extra="forbid")

    orders: list[OrderRequest] = Field(min_length=1, max_length=MAX_ORDERS_PER_REQUEST)


class CancelRequest(BaseModel):
    """A signed cancel: the order's fields and the trader's EIP-712 `Cancel(Order order)`
    signature."""

    model_config = ConfigDict(extra="forbid")

    order: OrderFields
    signature: HexSignature

    def to_tx(self) -> Cancel:
        """The state machine's Cancel."""
        return Cancel(self.order.to_order(), _signature(self.signature))


class LegFields(BaseModel):
    """One leg of a bundle."""

    model_config = ConfigDict(extra="forbid")

    market: Uint16
    side: Uint8
    price: Uint64
    size: Uint64

    def to_leg(self) -> Leg:
        """The state machine's leg."""
        return Leg(self.market, self.side, self.price, self.size)


class BundleRequest(BaseModel):
    """A signed bundle (EIP-712 `Bundle`): every leg fills whole against one resting order, or
    none does."""

    model_config = ConfigDict(extra="forbid")

    trader: HexAddress
    legs: list[LegFields] = Field(min_length=1, max_length=MAX_LEGS)
    expiry: Uint64 = 0
    salt: Uint64 = 0
    signature: HexSignature

    def to_bundle(self) -> tuple[Bundle, Signature]:
        """The state machine's bundle and its signature."""
        bundle = Bundle(
            bytes.fromhex(self.trader[2:]), tuple(leg.to_leg() for leg in self.legs), self.expiry, self.salt
        )
        return bundle, _signature(self.signature)


class FillView(BaseModel):
    """A fill: a Fill transaction or one leg of a BundleFill."""

    tx_hash: str
    seq: int
    """The transaction's sequence number in the sequencer's log."""
    market: int
    price: Uint64
    """The maker's price."""
    size: Uint64
    taker_side: int
    maker: str
    taker: str
    maker_order: str
    taker_order: str
    status: str
    """The transaction's status: pending, batched, or dropped (see `GET /v1/transactions/{hash}`)."""

    @classmethod
    def of(cls, f: FillRecord) -> FillView:
        """The view of a fill record."""
        return cls(
            tx_hash=_hex(f.tx_hash),
            seq=f.seq,
            market=f.market,
            price=f.price,
            size=f.size,
            taker_side=f.taker_side,
            maker=_hex(f.maker),
            taker=_hex(f.taker),
            maker_order=_hex(f.maker_order),
            taker_order=_hex(f.taker_order),
            status=f.status,
        )


class OrderResult(BaseModel):
    """What placing an order did.

    `status`: resting, partially_filled (resting after fills), filled, cancelled (an IOC's
    remainder), refused (some fills, then the rest refused: `code`), or for an order placed
    before (`known`) where it stands now (also expired, rejected). `receipt` is one
    `OrderReceipt` signature over the order's digest and its fills' (hash, seq)
    (`sequencer.receipts.verify_order_receipt`); null only from a node without an L1 key, and
    inside a batch's answer, whose own receipt covers every item.
    """

    digest: str
    """The order's EIP-712 digest: its id."""
    status: str
    resting: Uint64
    """Size in the book."""
    fills: list[FillView]
    code: str | None = None
    message: str | None = None
    known: bool = False
    """The order had been placed before: this is where it stands, nothing was done again."""
    sequencer: str
    receipt: str | None = None


class OrderBatchItem(BaseModel):
    """One order's outcome in a batch request: a result, or the error that refused it."""

    result: OrderResult | None = None
    error: ItemError | None = None


class OrderBatchResult(BaseModel):
    """Per-order outcomes in request order; `receipt` is one `OrderReceipt` over every placed
    order's digest and every fill of every item, in order (null when every order was refused)."""

    sequencer: str
    results: list[OrderBatchItem]
    receipt: str | None


class CancelResult(BaseModel):
    """The Cancel transaction is in the log (`hash`, `seq`, `receipt` as for any transaction).

    `was_resting` is false when the order was not in this sequencer's books (never seen here,
    already filled or gone): the Cancel is admitted anyway, so the order can never fill."""

    hash: str
    seq: int
    order: str
    """The cancelled order's digest."""
    was_resting: bool
    removed: Uint64
    """Size taken out of the book."""
    sequencer: str
    receipt: str | None


class BundleResult(BaseModel):
    """The BundleFill transaction is in the log; one fill per leg."""

    digest: str
    hash: str
    seq: int
    fills: list[FillView]
    known: bool = False
    sequencer: str
    receipt: str | None


class OrderView(BaseModel):
    """An order (or bundle) this sequencer accepted."""

    digest: str
    kind: str
    """order or bundle."""
    trader: str
    market: int | None
    side: int | None
    price: Uint64 | None
    size: Uint64 | None
    flags: int | None
    expiry: Uint64
    salt: Uint64
    """With the other fields, what a Cancel of the order signs."""
    status: str
    """resting, partially_filled, filled, cancelled, expired, rejected, refused."""
    reason: str | None
    """`code: message` for a cancelled, rejected or refused order."""
    filled: Uint64
    """Size filled, counting fills not yet in an L1 batch."""
    filled_confirmed: Uint64
    """Size filled as of the L1 tip."""
    resting: Uint64
    fills: list[FillView]

    @classmethod
    def of(cls, d: OrderDetails) -> OrderView:
        """The view of an order's details."""
        return cls(
            digest=_hex(d.digest),
            kind=d.kind,
            trader=_hex(d.trader),
            market=d.market,
            side=d.side,
            price=d.price,
            size=d.size,
            flags=d.flags,
            expiry=d.expiry,
            salt=d.salt,
            status=str(d.status),
            reason=d.reason,
            filled=d.filled,
            filled_confirmed=d.filled_confirmed,
            resting=d.resting,
            fills=[FillView.of(f) for f in d.fills],
        )


class Level(BaseModel):
    """A price level: its price and the total size resting there."""

    price: Uint64
    size: BigInt
    """The sum of the sizes resting at the price."""


class MarketView(BaseModel):
    """A listed market: its parameters (set by L1 governance), its live state (oracle, funding,
    circuit breaker; as of the mempool), and the top of its book."""

    id: int
    tick_size: Uint64
    lot_size: Uint64
    max_position: Uint64
    imr_bps: int
    mmr_bps: int
    maker_fee_bps: int
    taker_fee_bps: int
    liquidation_penalty_bps: int
    breaker_bps: int
    max_funding_bps: int
    funding_interval: int
    breaker_window: int
    max_oracle_age: int
    mark_price: Uint64
    index_price: Uint64
    oracle_time: Uint64
    halted_until: Uint64
    funding_index: str
    last_funding_time: Uint64
    best_bid: Level | None
    best_ask: Level | None
    resting_orders: int

    @classmethod
    def of(
        cls, market_id: int, m: Market, bid: tuple[int, int] | None, ask: tuple[int, int] | None, n: int
    ) -> MarketView:
        """The view of a market record and its book's top."""
        p = m.params
        return cls(
            id=market_id,
            tick_size=p.tick_size,
            lot_size=p.lot_size,
            max_position=p.max_position,
            imr_bps=p.imr_bps,
            mmr_bps=p.mmr_bps,
            maker_fee_bps=p.maker_fee_bps,
            taker_fee_bps=p.taker_fee_bps,
            liquidation_penalty_bps=p.liquidation_penalty_bps,
            breaker_bps=p.breaker_bps,
            max_funding_bps=p.max_funding_bps,
            funding_interval=p.funding_interval,
            breaker_window=p.breaker_window,
            max_oracle_age=p.max_oracle_age,
            mark_price=m.mark_price,
            index_price=m.index_price,
            oracle_time=m.oracle_time,
            halted_until=m.halted_until,
            funding_index=str(m.funding_index),
            last_funding_time=m.last_funding_time,
            best_bid=None if bid is None else Level(price=bid[0], size=bid[1]),
            best_ask=None if ask is None else Level(price=ask[0], size=ask[1]),
            resting_orders=n,
        )


class BookView(BaseModel):
    """The `depth` best levels of each side, best first."""

    market: int
    bids: list[Level]
    asks: list[Level]


class FillsView(BaseModel):
    """An account's latest fills, newest first."""

    account: str
    fills: list[FillView]
