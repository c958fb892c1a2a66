"""`/v1/transfers`, `/v1/withdrawals`, `/v1/transactions`: signed transactions in, acknowledgements
out, and where an acknowledged transaction is."""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from sequencer.api import paths
from sequencer.api.answers import accepted, json_answer, submit_raw, submit_raw_batch
from sequencer.api.deps import NodeDep
from sequencer.api.schemas import (
    Accepted,
    BatchAccepted,
    RawBatchRequest,
    RawTxRequest,
    TransferRequest,
    TxStatus,
    WithdrawRequest,
)
from sequencer.errors import NotFound

router = APIRouter(prefix="/v1", tags=["transactions"])


@router.post("/transfers", response_model=Accepted)
async def post_transfer(body: TransferRequest, n: NodeDep) -> Accepted:
    """Submit an EIP-712 signed transfer."""
    return accepted(n, *await n.admit_tx(body.to_tx()))


@router.post("/withdrawals", response_model=Accepted)
async def post_withdrawal(body: WithdrawRequest, n: NodeDep) -> Accepted:
    """Submit an EIP-712 signed withdrawal to L1."""
    return accepted(n, *await n.admit_tx(body.to_tx()))


@router.post("/transactions", response_model=Accepted)
async def post_raw(body: RawTxRequest, n: NodeDep) -> Response:
    """Submit an encoded transaction (protocol section 3)."""
    return json_answer(await submit_raw(n, body))


@router.post("/transactions/batch", response_model=BatchAccepted)
async def post_raw_batch(body: RawBatchRequest, n: NodeDep) -> Response:
    """Submit up to 1,000 encoded transactions at once (one durable commit for all; a body of up
    to 2 MiB).

    Items are admitted in order, each against the view that includes the ones before it;
    each gets its own acknowledgement or error. HTTP 200 even if some items are refused.
    """
    return json_answer(await submit_raw_batch(n, body))


@router.get("/transactions/{tx_hash:hash32}", response_model=TxStatus)
async def get_tx(tx_hash: Annotated[str, Path(pattern=f"^{paths.Hash32.regex}$")], n: NodeDep) -> TxStatus:
    """Where an acknowledged transaction is: pending, batched (with its batch) or dropped."""
    row = n.tx_status(bytes.fromhex(tx_hash[2:]))
    if row is None:
        raise NotFound(f"no transaction {tx_hash}")
    return TxStatus(
        hash=tx_hash.lower(),
        seq=row.seq,
        status=row.status,
        batch_index=row.batch_index,
        reason=row.reason,
    )
