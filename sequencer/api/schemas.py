"""Request and response bodies of the sequencer API (kept apart from the `stf` types); the read
views' bodies are the node's own view models (`sequencer.views`). Integers travel as
`sequencer.wire` says: JSON integers or decimal strings in, decimal strings above 2^53 - 1 out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sequencer.stf.constants import MAX_TX_BYTES
from sequencer.stf.types import Transfer, Withdraw
from sequencer.wire import Uint8, Uint16, Uint64, Uint256

HexAddress = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
HexSignature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]
HexBytes = Annotated[
    str, StringConstraints(pattern=r"^0x([0-9a-fA-F]{2})*$", max_length=2 + 2 * MAX_TX_BYTES)
]
"""An encoded transaction: at most `MAX_TX_BYTES`."""
__all__ = ["HexAddress", "HexBytes", "HexSignature", "Uint8", "Uint16", "Uint64", "Uint256"]

MAX_TXS_PER_REQUEST = 1000
"""Most transactions in one `POST /v1/transactions/batch`."""


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

    raws: list[HexBytes] = Field(min_length=1, max_length=MAX_TXS_PER_REQUEST)


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
