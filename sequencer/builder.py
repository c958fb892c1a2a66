"""Batch building: deposits due from the L1 queue, then pending transactions, each with its root.

The builder works on a copy of the chain state; the chain itself only moves when the batch is
seen on L1 (`sequencer.chain`), so a posting that fails leaves nothing to undo.
"""

from __future__ import annotations

from dataclasses import dataclass

from sequencer.l1types import L1Deposit
from sequencer.mempool import PendingTx
from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.constants import MAX_BATCH_TXS
from sequencer.stf.hashing import keccak
from sequencer.stf.state import State, copy_state, get_next_deposit_index
from sequencer.stf.transition import apply_decoded
from sequencer.stf.types import ChainConfig, Deposit, L1Context


@dataclass(frozen=True)
class BuiltBatch:
    """A batch ready to append."""

    txs: list[bytes]
    roots: list[bytes]
    queue_end: int
    included: list[PendingTx]
    """Pending transactions it holds (deposits are not in the mempool)."""
    skipped: list[tuple[PendingTx, str]]
    """Pending transactions that no longer applied (with the reason); not in the batch."""
    post_state: State | None = None
    """The state after the batch, as the builder computed it (None if a root was corrupted)."""


def due_deposits(state: State, deposits: dict[int, L1Deposit], limit: int) -> list[Deposit]:
    """Deposits from the state's queue position on, as many as are known (contiguous) up to `limit`."""
    start = get_next_deposit_index(state)
    out: list[Deposit] = []
    i = start
    while i in deposits and len(out) < limit:
        d = deposits[i]
        out.append(Deposit(queue_index=i, to=d.to, amount=d.amount))
        i += 1
    return out


def build_batch(
    state: State,
    deposits: dict[int, L1Deposit],
    pending: list[PendingTx],
    config: ChainConfig,
    *,
    max_txs: int = MAX_BATCH_TXS,
    corrupt_root_at: int = -1,
) -> BuiltBatch | None:
    """Build the next batch on top of `state` (which is not modified); None if there is nothing to post.

    `corrupt_root_at` is fault injection for tests and the demo only: it replaces that
    transaction's committed post-root by a wrong one, as a lying sequencer would.
    """
    work = copy_state(state)
    deps = due_deposits(work, deposits, max_txs)
    queue_end = get_next_deposit_index(work) + len(deps)
    ctx = L1Context(
        queue_end=queue_end, deposit_hashes={d.queue_index: deposits[d.queue_index].hash for d in deps}
    )
    txs: list[bytes] = []
    roots: list[bytes] = []
    for dep in deps:
        outcome = apply_decoded(work, dep, ctx, config, signer_verified=True)
        if not outcome.applied:  # the L1 record disagrees with itself: never post it
            raise RuntimeError(f"deposit {dep.queue_index} does not apply: {outcome.error}")
        txs.append(encode_tx(dep))
        roots.append(outcome.post_root)
    included: list[PendingTx] = []
    skipped: list[tuple[PendingTx, str]] = []
    for ptx in pending:
        if len(txs) >= max_txs:
            break
        outcome = apply_decoded(work, ptx.tx, ctx, config, signer_verified=True)
        if not outcome.applied:
            skipped.append((ptx, f"{getattr(outcome.error, 'code', 'invalid')}: {outcome.error}"))
            continue
        txs.append(ptx.raw)
        roots.append(outcome.post_root)
        included.append(ptx)
    if not txs:
        return None
    honest = True
    if 0 <= corrupt_root_at < len(roots):
        roots[corrupt_root_at] = keccak(b"fault-injection" + roots[corrupt_root_at])
        honest = False
    return BuiltBatch(
        txs=txs,
        roots=roots,
        queue_end=queue_end,
        included=included,
        skipped=skipped,
        post_state=work if honest else None,
    )


def batch_tx_hashes(txs: list[bytes] | tuple[bytes, ...]) -> list[bytes]:
    """The hashes the API uses for a batch's transactions."""
    return [tx_hash(raw) for raw in txs]
