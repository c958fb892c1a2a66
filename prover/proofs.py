"""Fraud-proof building: from a batch found wrong to the arguments of one L1 transaction.

The proof of a wrong transaction `i` of batch `b` (docs/protocol.md section 5) holds the batch
header, transaction `i` with its inclusion proof, the committed roots of `i-1` (the pre-state; the
batch's `prev_root` for `i = 0`) and of `i` with their inclusion proofs, and the witnesses of
every leaf transaction `i` touches, taken from the honestly derived pre-state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prover.witness import build_tx_witnesses
from sequencer.stf.batch import merkle_proof, root_leaf, tx_leaf
from sequencer.stf.chain import Chain, Fraud
from sequencer.stf.errors import RollupError
from sequencer.stf.keys import global_key
from sequencer.stf.l1types import L1Batch
from sequencer.stf.smt import Witness
from sequencer.stf.state import State, copy_state
from sequencer.stf.transition import REASON_QUEUE, apply_tx
from sequencer.stf.types import BatchHeader, ChainConfig, L1Context


@dataclass(frozen=True)
class TxFraudProof:
    """Arguments of `Rollup.prove_tx_fraud`."""

    header: BatchHeader
    tx_index: int
    tx: bytes
    tx_proof: list[bytes]
    pre_root: bytes
    pre_proof: list[bytes]
    post_root: bytes
    post_proof: list[bytes]
    witnesses: list[Witness]


@dataclass(frozen=True)
class QueueFraudProof:
    """Arguments of `Rollup.prove_queue_fraud`: the Global leaf under the batch's post root."""

    header: BatchHeader
    witness: Witness


FraudProof = TxFraudProof | QueueFraudProof


def build_tx_fraud_proof(chain: Chain, batch: L1Batch, pre_batch: State, tx_index: int) -> TxFraudProof:
    """Witnesses for transaction `tx_index` of `batch`, given the state before the batch."""
    return tx_fraud_proof(
        chain.config, batch.header, batch.txs, batch.roots, pre_batch, chain.context(batch), tx_index
    )


def tx_fraud_proof(
    config: ChainConfig,
    header: BatchHeader,
    txs: Sequence[bytes],
    roots: Sequence[bytes],
    pre_batch: State,
    ctx: L1Context,
    tx_index: int,
) -> TxFraudProof:
    """The proof of transaction `tx_index` of a batch (its header, data and claimed roots).

    The witnesses come from the honest state before the batch, advanced through the batch's
    earlier transactions; the claimed roots come from the batch as committed.
    """
    state = copy_state(pre_batch)
    for raw in txs[:tx_index]:
        apply_tx(state, raw, ctx, config)
    raw = txs[tx_index]
    witnesses, _ = build_tx_witnesses(state, raw, ctx, config)
    tx_leaves = [tx_leaf(t) for t in txs]
    root_leaves = [root_leaf(r) for r in roots]
    if tx_index == 0:
        pre_root, pre_proof = header.prev_root, []
    else:
        pre_root, pre_proof = roots[tx_index - 1], merkle_proof(root_leaves, tx_index - 1)
    return TxFraudProof(
        header=header,
        tx_index=tx_index,
        tx=raw,
        tx_proof=merkle_proof(tx_leaves, tx_index),
        pre_root=pre_root,
        pre_proof=pre_proof,
        post_root=roots[tx_index],
        post_proof=merkle_proof(root_leaves, tx_index),
        witnesses=witnesses,
    )


def build_queue_fraud_proof(chain: Chain, batch: L1Batch, pre_batch: State) -> QueueFraudProof:
    """The Global leaf after the batch (whose root equals the claimed post root)."""
    state = copy_state(pre_batch)
    ctx = chain.context(batch)
    for raw in batch.txs:
        apply_tx(state, raw, ctx, chain.config)
    return QueueFraudProof(header=batch.header, witness=state.tree.witness(global_key()))


def build_fraud_proof(chain: Chain, fraud: Fraud) -> FraudProof:
    """The proof for the first wrong commitment the chain found."""
    batch = chain.batches[fraud.batch_index]
    pre = chain.pre_state_of(fraud.batch_index)
    if fraud.tx_index < 0:
        if fraud.reason != REASON_QUEUE:  # the Rollup computes every other commitment itself
            raise RollupError(f"batch {fraud.batch_index}: {fraud.reason} mismatch has no L1 proof")
        return build_queue_fraud_proof(chain, batch, pre)
    return build_tx_fraud_proof(chain, batch, pre, fraud.tx_index)
