"""The state transition (protocol sections 3 and 4).

`plan_tx` decides what one transaction writes (or which rule it breaks) without touching the
state; `apply_tx` / `apply_decoded` make the writes and report the post-state root, turning a
rule break into a no-op; `apply_batch` runs a batch; `check_batch` re-executes a batch against
its header and per-transaction roots and raises `InvalidBatch` at the first mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sequencer.stf.batch import batch_roots
from sequencer.stf.codec import decode_tx, deposit_hash, encode_tx
from sequencer.stf.constants import MAX_BATCH_TXS, MAX_TOTAL_DEPOSITS, MAX_TX_BYTES
from sequencer.stf.eip712 import recover_signer
from sequencer.stf.errors import (
    BadDeposit,
    BadNonce,
    BadSignature,
    DecodeError,
    InsufficientBalance,
    InvalidAmount,
    InvalidBatch,
    InvalidRecipient,
    InvalidTransaction,
    SelfTransfer,
    WithdrawalExists,
)
from sequencer.stf.hashing import keccak
from sequencer.stf.keys import account_key, global_key, withdrawal_key
from sequencer.stf.state import State, copy_state, get_next_deposit_index
from sequencer.stf.types import BatchHeader, ChainConfig, Deposit, L1Context, Transfer, Tx, Withdraw

_from_bytes = int.from_bytes
_ZERO12 = bytes(12)
_ZERO32 = bytes(32)
_ZERO_ADDRESS = bytes(20)

# Reasons of InvalidBatch (what mismatched).
REASON_TX_COUNT = "tx_count"
"""`tx_count` is not the number of transactions, or outside 1..MAX_BATCH_TXS."""
REASON_ROOTS_COUNT = "roots_count"
"""The number of per-transaction roots is not the number of transactions."""
REASON_TX_TOO_LARGE = "tx_too_large"
"""A transaction is longer than MAX_TX_BYTES."""
REASON_PREV_ROOT = "prev_root"
"""`prev_root` is not the state root the batch starts from."""
REASON_QUEUE_CONTEXT = "queue_context"
"""The L1 context's `queue_end` is not the header's."""
REASON_TX_ROOT = "tx_root"
"""`tx_root` is not the root of the transactions."""
REASON_ROOTS_ROOT = "roots_root"
"""`roots_root` is not the root of the per-transaction roots."""
REASON_POST_ROOT = "post_root"
"""`post_root` is not the last per-transaction root."""
REASON_STATE_ROOT = "state_root"
"""A per-transaction root differs from re-execution (transaction fraud at `tx_index`)."""
REASON_QUEUE = "queue"
"""After the batch, `next_deposit_index != queue_end` (queue fraud)."""


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """What applying one transaction did."""

    tx_hash: bytes
    """keccak of the encoded transaction."""
    applied: bool
    """True if the transaction took effect; False if it was a no-op."""
    error: InvalidTransaction | None
    """The rule it broke (None when applied)."""
    post_root: bytes
    """State root after the transaction (the pre-state root for a no-op)."""


def touched_keys(tx: Tx) -> tuple[bytes, ...]:
    """The state keys a transaction touches, in witness order (protocol section 3)."""
    if type(tx) is Transfer:
        return account_key(tx.sender), account_key(tx.to)
    if type(tx) is Withdraw:
        return account_key(tx.sender), withdrawal_key(tx.sender, tx.nonce)
    if type(tx) is Deposit:
        return global_key(), account_key(tx.to)
    raise TypeError(f"not a transaction: {type(tx).__name__}")


def _account(value: bytes | None) -> tuple[int, int]:
    """(collateral, nonce) of an Account leaf value (absent = (0, 0))."""
    if value is None:
        return 0, 0
    return _from_bytes(value[:32], "big"), _from_bytes(value[32:], "big")


def _account_value(collateral: int, nonce: int) -> bytes:
    return collateral.to_bytes(32, "big") + nonce.to_bytes(32, "big")


def _debit(state: State, tx: Transfer | Withdraw) -> tuple[bytes, int, int]:
    """The rules a Transfer and a Withdraw share on the sender's side (amount, nonce, balance);
    returns the sender's key, collateral and nonce."""
    amount = tx.amount
    if amount == 0 or amount > MAX_TOTAL_DEPOSITS:
        raise InvalidAmount(amount)
    from_key = account_key(tx.sender)
    collateral, nonce = _account(state.tree.get(from_key))
    if tx.nonce != nonce:
        raise BadNonce(tx.sender, nonce, tx.nonce)
    if amount > collateral:
        raise InsufficientBalance(tx.sender, amount, collateral)
    return from_key, collateral, nonce


def plan_tx(
    state: State, tx: Tx, ctx: L1Context, config: ChainConfig, *, signer_verified: bool = False
) -> dict[bytes, bytes]:
    """The writes of `tx` (key -> new value, in touched-key order); raises the rule it breaks.

    Does not modify `state`. With `signer_verified=True` the signature is not checked (the
    caller already checked it, e.g. the sequencer at admission).
    """
    tree = state.tree
    if type(tx) is Transfer:
        sender, amount = tx.sender, tx.amount
        if not signer_verified and recover_signer(tx, config) != sender:
            raise BadSignature(sender)
        if sender == tx.to:
            raise SelfTransfer(sender)
        from_key, collateral, nonce = _debit(state, tx)
        to_key = account_key(tx.to)
        to_collateral, to_nonce = _account(tree.get(to_key))
        return {
            from_key: _account_value(collateral - amount, nonce + 1),
            to_key: _account_value(to_collateral + amount, to_nonce),
        }
    if type(tx) is Withdraw:
        sender, amount = tx.sender, tx.amount
        if not signer_verified and recover_signer(tx, config) != sender:
            raise BadSignature(sender)
        if tx.to == _ZERO_ADDRESS:
            raise InvalidRecipient(sender)
        from_key, collateral, nonce = _debit(state, tx)
        w_key = withdrawal_key(sender, tx.nonce)
        if tree.get(w_key) is not None:
            raise WithdrawalExists(sender, tx.nonce)
        return {
            from_key: _account_value(collateral - amount, nonce + 1),
            w_key: _ZERO12 + tx.to + amount.to_bytes(32, "big"),
        }
    if type(tx) is Deposit:
        g_key = global_key()
        g_value = tree.get(g_key)
        next_index = 0 if g_value is None else _from_bytes(g_value, "big")
        index = tx.queue_index
        if index != next_index:
            raise BadDeposit(index, f"next deposit index is {next_index}")
        if index >= ctx.queue_end:
            raise BadDeposit(index, f"not before the batch's queue_end {ctx.queue_end}")
        expected = ctx.deposit_hashes.get(index)
        if expected is None or expected != deposit_hash(index, tx.to, tx.amount):
            raise BadDeposit(index, "does not match the L1 deposit")
        to_key = account_key(tx.to)
        to_collateral, to_nonce = _account(tree.get(to_key))
        return {
            g_key: (next_index + 1).to_bytes(32, "big"),
            to_key: _account_value(to_collateral + tx.amount, to_nonce),
        }
    raise DecodeError(f"not a transaction: {type(tx).__name__}")


def apply_decoded(
    state: State,
    tx: Tx,
    ctx: L1Context,
    config: ChainConfig,
    *,
    signer_verified: bool = False,
    tx_hash: bytes | None = None,
) -> TxOutcome:
    """Apply a decoded transaction: make its writes, or nothing if it breaks a rule.

    `tx_hash` may be passed when the caller knows it (it is keccak of `encode_tx(tx)`). Never
    raises for a rule break: the outcome carries the error.
    """
    tree = state.tree
    try:
        if tx_hash is None:
            tx_hash = keccak(encode_tx(tx))
        writes = plan_tx(state, tx, ctx, config, signer_verified=signer_verified)
    except InvalidTransaction as exc:
        return TxOutcome(_ZERO32 if tx_hash is None else tx_hash, False, exc, tree.root)
    for key, value in writes.items():
        tree.set(key, value)
    return TxOutcome(tx_hash, True, None, tree.root)


def apply_tx(
    state: State, raw: bytes, ctx: L1Context, config: ChainConfig, *, signer_verified: bool = False
) -> TxOutcome:
    """Apply an encoded transaction; undecodable bytes or a rule break are a no-op (never raised)."""
    tx_hash = keccak(raw)
    try:
        tx = decode_tx(raw)
    except DecodeError as exc:
        return TxOutcome(tx_hash, False, exc, state.tree.root)
    return apply_decoded(state, tx, ctx, config, signer_verified=signer_verified, tx_hash=tx_hash)


def apply_batch(state: State, txs: Sequence[bytes], ctx: L1Context, config: ChainConfig) -> list[bytes]:
    """Apply every transaction in order (signatures checked); the per-transaction post roots."""
    return [apply_tx(state, raw, ctx, config).post_root for raw in txs]


def check_batch(
    state: State,
    header: BatchHeader,
    txs: Sequence[bytes],
    roots: Sequence[bytes],
    ctx: L1Context,
    config: ChainConfig,
) -> list[TxOutcome]:
    """Re-execute a batch on `state` and check it against its header and per-transaction roots.

    Raises `InvalidBatch(reason, tx_index)` at the first mismatch and then leaves `state`
    unchanged; on success advances `state` to the batch's post-state and returns the outcomes.
    """
    n = len(txs)
    if header.tx_count != n or not 1 <= n <= MAX_BATCH_TXS:
        raise InvalidBatch(REASON_TX_COUNT)
    if len(roots) != n:
        raise InvalidBatch(REASON_ROOTS_COUNT)
    for i, raw in enumerate(txs):
        if len(raw) > MAX_TX_BYTES:
            raise InvalidBatch(REASON_TX_TOO_LARGE, i)
    if header.prev_root != state.tree.root:
        raise InvalidBatch(REASON_PREV_ROOT)
    if ctx.queue_end != header.queue_end:
        raise InvalidBatch(REASON_QUEUE_CONTEXT)
    tx_root, roots_root = batch_roots(txs, roots)
    if header.tx_root != tx_root:
        raise InvalidBatch(REASON_TX_ROOT)
    if header.roots_root != roots_root:
        raise InvalidBatch(REASON_ROOTS_ROOT)
    if header.post_root != roots[-1]:
        raise InvalidBatch(REASON_POST_ROOT)

    work = copy_state(state)
    outcomes: list[TxOutcome] = []
    for i, raw in enumerate(txs):
        outcome = apply_tx(work, raw, ctx, config)
        if outcome.post_root != roots[i]:
            raise InvalidBatch(REASON_STATE_ROOT, i)
        outcomes.append(outcome)
    if get_next_deposit_index(work) != header.queue_end:
        raise InvalidBatch(REASON_QUEUE)
    state.tree = work.tree
    return outcomes
