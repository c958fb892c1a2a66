"""The state transition (protocol sections 3 and 4).

`plan_tx` decides what one transaction writes (or which rule it breaks) without touching the
state, dispatching to the rule modules (`funds`, `oracle`, `trading`, `liquidation`);
`apply_tx` / `apply_decoded` make the writes and report the post-state root, turning a rule break
into a no-op; `apply_batch` runs a batch; `check_batch` re-executes a batch against its header and
per-transaction roots and raises `InvalidBatch` at the first mismatch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sequencer.stf.batch import batch_roots
from sequencer.stf.codec import decode_tx, encode_tx, forced_inner
from sequencer.stf.constants import MAX_BATCH_TXS, MAX_TX_BYTES
from sequencer.stf.eip712 import bundle_digest, order_digest
from sequencer.stf.errors import DecodeError, InvalidBatch, InvalidTransaction
from sequencer.stf.forced import plan_forced_tx
from sequencer.stf.funds import plan_deposit, plan_l1_message, plan_transfer, plan_withdraw
from sequencer.stf.hashing import keccak
from sequencer.stf.keys import (
    account_key,
    global_key,
    insurance_key,
    markets_key,
    oracle_key,
    order_key,
    withdrawal_key,
)
from sequencer.stf.liquidation import plan_deleverage, plan_liquidate
from sequencer.stf.oracle import plan_funding, plan_oracle_update
from sequencer.stf.state import State, copy_state, get_next_deposit_index
from sequencer.stf.trading import plan_bundle_fill, plan_cancel, plan_fill
from sequencer.stf.types import (
    BatchHeader,
    BundleFill,
    Cancel,
    ChainConfig,
    Deleverage,
    Deposit,
    Fill,
    ForcedTx,
    Funding,
    L1Context,
    L1Message,
    Liquidate,
    OracleUpdate,
    Transfer,
    Tx,
    Withdraw,
)

_ZERO32 = bytes(32)

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
REASON_TIME_CONTEXT = "time_context"
"""The L1 context's `l2_time` is not the header's."""
REASON_TX_ROOT = "tx_root"
"""`tx_root` is not the root of the transactions."""
REASON_ROOTS_ROOT = "roots_root"
"""`roots_root` is not the root of the per-transaction roots."""
REASON_POST_ROOT = "post_root"
"""`post_root` is not the last per-transaction root."""
REASON_STATE_ROOT = "state_root"
"""A per-transaction root differs from re-execution (transaction fraud at `tx_index`)."""
REASON_QUEUE = "queue"
"""After the batch, `next_queue_index != queue_end` (queue fraud)."""


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


TRADE_TYPES: tuple[type, ...] = (Fill, BundleFill, Liquidate, Deleverage)
"""The transactions that can change positions (they trade); every account they touch is a party
to the trade."""


def touched_accounts(tx: Tx) -> tuple[bytes, ...]:
    """The addresses whose Account leaves a transaction touches, in witness order (the Account
    keys of `touched_keys`; an address may repeat). A ForcedTx touches those of its inner Transfer
    or Withdraw (none for an inner Cancel, or inner bytes that are none of the three)."""
    if type(tx) is Fill:
        return tx.maker.order.trader, tx.taker.order.trader
    if type(tx) is Transfer:
        return tx.sender, tx.to
    if type(tx) is Withdraw:
        return (tx.sender,)
    if type(tx) is Deposit:
        return (tx.to,)
    if type(tx) is BundleFill:
        return (tx.bundle.trader, *(signed.order.trader for signed in tx.makers))
    if type(tx) is Liquidate:
        return tx.liquidator, tx.account
    if type(tx) is Deleverage:
        return tx.account, tx.counterparty
    if type(tx) is ForcedTx:
        try:
            return touched_accounts(forced_inner(tx))
        except DecodeError:
            return ()
    if type(tx) is Cancel or type(tx) is OracleUpdate or type(tx) is Funding or type(tx) is L1Message:
        return ()
    raise TypeError(f"not a transaction: {type(tx).__name__}")


def touched_orders(tx: Tx, config: ChainConfig) -> tuple[bytes, ...]:
    """The digests of the orders (and bundle) whose Order leaves a transaction touches, in witness
    order (the Order keys of `touched_keys`): a Fill's maker then taker, a Cancel's order (also
    forced, inside a ForcedTx), a BundleFill's bundle then its makers."""
    if type(tx) is ForcedTx:
        try:
            return touched_orders(forced_inner(tx), config)
        except DecodeError:
            return ()
    if type(tx) is Fill:
        return order_digest(tx.maker.order, config), order_digest(tx.taker.order, config)
    if type(tx) is Cancel:
        return (order_digest(tx.order, config),)
    if type(tx) is BundleFill:
        return (
            bundle_digest(tx.bundle, config),
            *(order_digest(signed.order, config) for signed in tx.makers),
        )
    return ()


def touched_keys(tx: Tx, config: ChainConfig) -> tuple[bytes, ...]:
    """The state keys a transaction touches, in witness order, repeats removed (protocol section 3)."""
    if type(tx) is ForcedTx:
        keys: tuple[bytes, ...] = (global_key(),)
        try:
            keys += touched_keys(forced_inner(tx), config)
        except DecodeError:
            pass  # an inner transaction that cannot apply: only the queue position is touched
        return tuple(dict.fromkeys(keys))
    accounts = tuple(account_key(a) for a in touched_accounts(tx))
    orders = tuple(order_key(d) for d in touched_orders(tx, config))
    if type(tx) is Fill:
        keys = (*accounts, *orders, markets_key(), insurance_key())
    elif type(tx) is Transfer:
        keys = (*accounts, markets_key())
    elif type(tx) is Withdraw:
        keys = (*accounts, withdrawal_key(tx.sender, tx.nonce), markets_key())
    elif type(tx) is Deposit:
        keys = (global_key(), *accounts, markets_key())
    elif type(tx) is Cancel:
        keys = orders
    elif type(tx) is OracleUpdate:
        keys = (oracle_key(), markets_key())
    elif type(tx) is Funding:
        keys = (markets_key(),)
    elif type(tx) is Liquidate or type(tx) is Deleverage:
        keys = (*accounts, markets_key(), insurance_key())
    elif type(tx) is BundleFill:
        # the trader's account and the bundle's leaf, then each maker's account and order leaf
        keys = (accounts[0], orders[0], markets_key(), insurance_key())
        for pair in zip(accounts[1:], orders[1:], strict=True):
            keys += pair
    else:
        assert type(tx) is L1Message
        keys = (global_key(), markets_key(), oracle_key())
    return tuple(dict.fromkeys(keys))


def plan_tx(
    state: State, tx: Tx, ctx: L1Context, config: ChainConfig, *, signer_verified: bool = False
) -> dict[bytes, bytes]:
    """The writes of `tx` (key -> new value); raises the rule it breaks.

    Does not modify `state`. With `signer_verified=True` the traders' signatures are not checked
    (the caller already checked them, e.g. the sequencer at admission); an oracle update's
    committee signatures are always checked (who signed is part of the rule), and so is a forced
    transaction's inner signature (no sequencer admitted it).
    """
    tree = state.tree
    if type(tx) is Fill:
        return plan_fill(tree, tx, ctx, config, signer_verified)
    if type(tx) is Transfer:
        return plan_transfer(tree, tx, ctx, config, signer_verified)
    if type(tx) is Withdraw:
        return plan_withdraw(tree, tx, ctx, config, signer_verified)
    if type(tx) is Deposit:
        return plan_deposit(tree, tx, ctx)
    if type(tx) is Cancel:
        return plan_cancel(tree, tx, config, signer_verified)
    if type(tx) is OracleUpdate:
        return plan_oracle_update(tree, tx, ctx, config)
    if type(tx) is Funding:
        return plan_funding(tree, tx, ctx)
    if type(tx) is Liquidate:
        return plan_liquidate(tree, tx, ctx, config, signer_verified)
    if type(tx) is Deleverage:
        return plan_deleverage(tree, tx, ctx)
    if type(tx) is BundleFill:
        return plan_bundle_fill(tree, tx, ctx, config, signer_verified)
    if type(tx) is L1Message:
        return plan_l1_message(tree, tx, ctx)
    if type(tx) is ForcedTx:
        return plan_forced_tx(tree, tx, ctx, config)
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
    state: State,
    raw: bytes,
    ctx: L1Context,
    config: ChainConfig,
    *,
    signer_verified: bool = False,
    tx_hash: bytes | None = None,
) -> TxOutcome:
    """Apply an encoded transaction; undecodable bytes or a rule break are a no-op (never raised).
    `tx_hash` may be passed when the caller knows it (`keccak(raw)`)."""
    if tx_hash is None:
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
    presigned: Callable[[bytes], bool] | None = None,
) -> list[TxOutcome]:
    """Re-execute a batch on `state` and check it against its header and per-transaction roots.

    Raises `InvalidBatch(reason, tx_index)` at the first mismatch and then leaves `state`
    unchanged; on success advances `state` to the batch's post-state and returns the outcomes.
    A transaction whose hash `presigned` accepts is applied without recovering its signatures
    again (its signers as it names them): a set's member passes the transactions its log brought,
    whose signatures the leader checked when it admitted them.
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
    if ctx.l2_time != header.l2_time:
        raise InvalidBatch(REASON_TIME_CONTEXT)
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
        h = keccak(raw)
        verified = presigned is not None and presigned(h)
        outcome = apply_tx(work, raw, ctx, config, signer_verified=verified, tx_hash=h)
        if outcome.post_root != roots[i]:
            raise InvalidBatch(REASON_STATE_ROOT, i)
        outcomes.append(outcome)
    if get_next_deposit_index(work) != header.queue_end:
        raise InvalidBatch(REASON_QUEUE)
    state.tree = work.tree
    return outcomes
