"""Request and response bodies of the sequencer API (kept apart from the `stf` types)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sequencer.stf.types import Transfer, Withdraw

HexAddress = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
HexSignature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]
HexBytes = Annotated[str, StringConstraints(pattern=r"^0x([0-9a-fA-F]{2})*$", max_length=2 + 2 * 4096)]
Uint256 = Annotated[int, Field(ge=0, lt=2**256)]
Uint64 = Annotated[int, Field(ge=0, lt=2**64)]


def split_signature(signature: str) -> tuple[int, int, int]:
    """Split a 65-byte `r || s || v` hex signature (as wallets produce it) into integers."""
    sig = bytes.fromhex(signature[2:])
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]


class _SignedBody(BaseModel):
    """Fields shared by transfers and withdrawals: the EIP-712 message plus its signature."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    sender: HexAddress = Field(alias="from")
    to: HexAddress
    amount: Uint256
    nonce: Uint64
    signature: HexSignature

    def _fields(self) -> tuple[bytes, bytes, int, int, int, int, int]:
        """(sender, to, amount, nonce, r, s, v) in the state machine's field order."""
        r, s, v = split_signature(self.signature)
        return bytes.fromhex(self.sender[2:]), bytes.fromhex(self.to[2:]), self.amount, self.nonce, r, s, v


class TransferRequest(_SignedBody):
    """A signed transfer of collateral between two rollup accounts."""

    def to_tx(self) -> Transfer:
        """The state-machine transaction this body describes."""
        return Transfer(*self._fields())


class WithdrawRequest(_SignedBody):
    """A signed withdrawal of collateral to an L1 address (claimable once its batch is final)."""

    def to_tx(self) -> Withdraw:
        """The state-machine transaction this body describes."""
        return Withdraw(*self._fields())


class RawTxRequest(BaseModel):
    """An already encoded transaction (protocol section 3)."""

    model_config = ConfigDict(extra="forbid")

    raw: HexBytes


class RawBatchRequest(BaseModel):
    """Several encoded transactions, admitted in order with one durable commit."""

    model_config = ConfigDict(extra="forbid")

    raws: list[HexBytes] = Field(min_length=1, max_length=1000)


class ItemError(BaseModel):
    """Why one item of a batch request was refused."""

    code: str
    message: str


class BatchItem(BaseModel):
    """One item's outcome: an acknowledgement, or an error (the others are unaffected)."""

    hash: str | None = None
    seq: int | None = None
    error: ItemError | None = None


class BatchAccepted(BaseModel):
    """Per-item outcomes, in request order.

    `receipt` is one EIP-712 signature over every acknowledged (hash, seq), in order
    (`sequencer.receipts.verify_batch_receipt`).
    """

    sequencer: str
    results: list[BatchItem]
    receipt: str | None


class Accepted(BaseModel):
    """The acknowledgement: the transaction is in the durable log.

    `receipt` is the sequencer's EIP-712 signature over (hash, seq, sequencer): evidence against
    it should no L1 batch ever hold the transaction (`sequencer.receipts.verify_receipt`).
    """

    hash: str
    seq: int
    status: Literal["pending"] = "pending"
    sequencer: str
    receipt: str | None


class TxStatus(BaseModel):
    """Where an acknowledged transaction is."""

    hash: str
    seq: int
    status: str
    batch_index: int | None
    reason: str | None = None


class PositionView(BaseModel):
    """An open position (as of the mempool), with the mark at which it becomes liquidatable."""

    market: int
    size: int
    """Signed: > 0 long, < 0 short."""
    open_notional: str
    """Signed sum paid for the open size."""
    mark_price: int
    unrealized_pnl: str
    """`size * mark - open_notional`."""
    liquidation_price: int | None
    """Mark of this market at which the account falls below maintenance margin, the other marks
    unchanged (a long at or below it, a short at or above it); null if no mark does it."""


class OpenOrderView(BaseModel):
    """A resting order of the account."""

    digest: str
    market: int
    side: int
    price: int
    resting: int
    """Size still in the book."""
    flags: int
    expiry: int


class AccountView(BaseModel):
    """An account as of the L1 tip and as of the tip plus the mempool, with its risk (as of the
    mempool: funding settled, the state machine's margin formulas) and its resting orders."""

    address: str
    collateral: str
    nonce: int
    pending_collateral: str
    pending_nonce: int
    equity: str = "0"
    """Collateral (funding settled) plus unrealized PnL."""
    initial_margin: str = "0"
    maintenance_margin: str = "0"
    margin_ratio_bps: int | None = None
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
    size: int
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


class ErrorBody(BaseModel):
    """`{"error": {"code": ..., "message": ...}}`."""

    error: dict[str, str]
