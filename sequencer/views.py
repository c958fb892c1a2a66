"""The node's read side: the views the API serves, built from the chain, the mempool and the books.

The view models are plain pydantic records (the API's response bodies are exactly these); the
`Views` object builds them, and answers the node's health.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from sequencer.builder import batch_tx_hashes
from sequencer.exchange import Exchange, FillRecord, OrderDetails, account_risk
from sequencer.keeper import liquidation_candidates
from sequencer.liveness import Liveness
from sequencer.matching import OrderBook
from sequencer.mempool import Mempool
from sequencer.stf.chain import Chain
from sequencer.stf.margin import Markets
from sequencer.stf.state import get_account, get_next_deposit_index, state_root
from sequencer.stf.types import ChainConfig
from sequencer.store import Store, StoredTx
from sequencer.wire import BigInt, Uint64


class PositionView(BaseModel):
    """An open position (as of the mempool), with the mark at which it becomes liquidatable."""

    market: int
    size: BigInt
    """Signed: > 0 long, < 0 short."""
    open_notional: str
    """Signed sum paid for the open size."""
    mark_price: Uint64
    unrealized_pnl: str
    """`size * mark - open_notional`."""
    liquidation_price: BigInt | None
    """Mark of this market at which the account falls below maintenance margin, the other marks
    unchanged (a long at or below it, a short at or above it); null if no mark does it."""


class OpenOrderView(BaseModel):
    """A resting order of the account."""

    digest: str
    market: int
    side: int
    price: Uint64
    resting: Uint64
    """Size still in the book."""
    flags: int
    expiry: Uint64


class AccountView(BaseModel):
    """An account as of the L1 tip and as of the tip plus the mempool, with its risk (as of the
    mempool: funding settled, the state machine's margin formulas) and its resting orders."""

    address: str
    collateral: str
    nonce: Uint64
    pending_collateral: str
    pending_nonce: Uint64
    equity: str = "0"
    """Collateral (funding settled) plus unrealized PnL."""
    initial_margin: str = "0"
    maintenance_margin: str = "0"
    margin_ratio_bps: BigInt | None = None
    """`floor(equity * 10,000 / maintenance_margin)`; liquidatable below 10,000; null without
    positions."""
    positions: list[PositionView] = Field(default_factory=list)
    open_orders: list[OpenOrderView] = Field(default_factory=list)


class BatchView(BaseModel):
    """A batch as posted on L1."""

    index: int
    prev_root: str
    post_root: str
    tx_root: str
    roots_root: str
    tx_count: int
    queue_start: int
    queue_end: int
    sequencer: str
    timestamp: int
    l1_tx_hash: str
    tx_hashes: list[str]


class RiskCandidate(BaseModel):
    """An account below its maintenance margin and the liquidation that would restore it."""

    account: str
    market: int
    """The position to liquidate (the one with the largest maintenance margin)."""
    size: BigInt
    """Size to take over: the smallest lot multiple that restores maintenance, at most all."""
    shortfall: str
    """Maintenance margin minus equity."""
    bankrupt: bool
    """Equity below zero: its last position may need auto-deleveraging (the sequencer's job)."""


class RiskView(BaseModel):
    """Accounts any liquidator may liquidate now (as of the mempool), worst first."""

    l2_time: int
    """The clock the check used."""
    candidates: list[RiskCandidate]


class StatusView(BaseModel):
    """The node at a glance."""

    sequencer: str
    chain_id: int
    rollup: str
    l1_batches: int
    state_root: str
    next_deposit_index: int
    pending: int
    halted_on_fraud: dict[str, int] | None
    l2_time: int
    """The clock a batch built now would have: what orders' expiries and oracle prices' times
    are checked against (an oracle signs no later than this)."""


class HealthView(BaseModel):
    """`/health`: 200 with `ok` true, 503 with `ok` false (`Views.health`)."""

    ok: bool
    synced: bool
    """Caught up with the L1."""
    loops: dict[str, bool]
    """Each driver loop: alive."""
    last_error: str | None
    critical: str | None
    """Why a loop stopped, or the batch on L1 this node cannot read."""


class Views:
    """Reads for the API, each as of the L1 tip or as of the mempool (it says which)."""

    def __init__(
        self,
        config: ChainConfig,
        chain: Chain,
        store: Store,
        mempool: Mempool,
        exchange: Exchange,
        liveness: Liveness,
        *,
        address: bytes,
        l2_time: Callable[[], int],
    ) -> None:
        self.config = config
        self.chain = chain
        self.store = store
        self.mempool = mempool
        self.exchange = exchange
        self.liveness = liveness
        self.address = address
        self.l2_time = l2_time
        """The clock a batch built now would have (`L2Clock.estimate`)."""

    def tx_status(self, h: bytes) -> StoredTx | None:
        """The log row of a transaction."""
        return self.store.get(h)

    def account_view(self, address: bytes) -> AccountView:
        """An account as of the L1 tip and as of the mempool, with its risk (as of the mempool,
        computed by the state machine's margin functions) and its resting orders."""
        confirmed = get_account(self.chain.state, address)
        pending = get_account(self.mempool.view, address)
        risk = account_risk(self.mempool.view.tree, address)
        return AccountView(
            address="0x" + address.hex(),
            collateral=str(confirmed.collateral),
            nonce=confirmed.nonce,
            pending_collateral=str(pending.collateral),
            pending_nonce=pending.nonce,
            equity=str(risk.equity),
            initial_margin=str(risk.initial_margin),
            maintenance_margin=str(risk.maintenance_margin),
            margin_ratio_bps=risk.margin_ratio_bps,
            positions=[
                PositionView(
                    market=p.market,
                    size=p.size,
                    open_notional=str(p.open_notional),
                    mark_price=p.mark_price,
                    unrealized_pnl=str(p.unrealized_pnl),
                    liquidation_price=p.liquidation_price,
                )
                for p in risk.positions
            ],
            open_orders=[
                OpenOrderView(
                    digest="0x" + o.order_id.hex(),
                    market=o.market,
                    side=int(o.side),
                    price=o.price,
                    resting=o.size,
                    flags=int(o.flags),
                    expiry=o.expiry,
                )
                for o in self.exchange.open_orders(address)
            ],
        )

    def batch_view(self, index: int) -> BatchView | None:
        """A batch on L1."""
        if index >= len(self.chain.batches):
            return None
        b = self.chain.batches[index]
        h = b.header
        return BatchView(
            index=h.index,
            prev_root="0x" + h.prev_root.hex(),
            post_root="0x" + h.post_root.hex(),
            tx_root="0x" + h.tx_root.hex(),
            roots_root="0x" + h.roots_root.hex(),
            tx_count=h.tx_count,
            queue_start=h.queue_start,
            queue_end=h.queue_end,
            sequencer="0x" + h.sequencer.hex(),
            timestamp=h.timestamp,
            l1_tx_hash="0x" + b.l1_tx_hash.hex(),
            tx_hashes=["0x" + x.hex() for x in batch_tx_hashes(b.txs)],
        )

    def status_view(self) -> StatusView:
        """The node at a glance."""
        fraud = self.chain.fraud
        return StatusView(
            sequencer="0x" + self.address.hex(),
            chain_id=self.config.chain_id,
            rollup="0x" + self.config.rollup.hex(),
            l1_batches=len(self.chain.batches),
            state_root="0x" + state_root(self.chain.state).hex(),
            next_deposit_index=get_next_deposit_index(self.chain.state),
            pending=len(self.mempool),
            halted_on_fraud=None if fraud is None else {"batch": fraud.batch_index, "tx": fraud.tx_index},
            l2_time=self.l2_time(),
        )

    def risk_view(self) -> RiskView:
        """Liquidation candidates as of the mempool's view and the batch clock."""
        now = self.l2_time()
        candidates = liquidation_candidates(self.mempool.view.tree, self.mempool.risk, now)
        return RiskView(
            l2_time=now,
            candidates=[
                RiskCandidate(
                    account="0x" + c.account.hex(),
                    market=c.market,
                    size=c.size,
                    shortfall=str(c.shortfall),
                    bankrupt=c.bankrupt,
                )
                for c in candidates
            ],
        )

    def order_details(self, digest: bytes) -> OrderDetails | None:
        """An order the exchange accepted (see `Exchange.order_details`)."""
        return self.exchange.order_details(digest)

    def fills_of(self, account: bytes, limit: int, before_seq: int | None) -> list[FillRecord]:
        """An account's latest fills, newest first."""
        return self.exchange.fills_of(account, limit, before_seq)

    def markets(self) -> Markets:
        """The listed markets, as of the mempool."""
        return self.exchange.markets()

    def book(self, market_id: int) -> OrderBook | None:
        """The order book of a listed market (None if not listed)."""
        return self.exchange.book(market_id)

    def health(self) -> dict[str, Any]:
        """The node's health (`Liveness.health`): `ok`, and the `reasons` when it is not; the
        bounds within which it acknowledges; `critical` says why a loop stopped, or names a batch
        on L1 this node cannot read (it then follows L1 but builds nothing until a revert removes
        that batch)."""
        return self.liveness.health()
