"""Rules of money in and out and of the L1 queue (protocol section 3, "Transfers and the L1 queue").

Each `plan_*` reads the state through `tree.get`, raises the `InvalidTransaction` the
transaction breaks, or returns its writes (key -> new value). Nothing here writes the state.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from sequencer.stf.codec import (
    decode_message,
    deposit_hash,
    encode_committee,
    encode_markets,
    message_hash,
    read_acct,
    write_acct,
)
from sequencer.stf.constants import (
    BPS,
    MAX_COMMITTEE,
    MAX_FEE_BPS,
    MAX_MARKETS,
    MAX_PRICE_SIGNATURES,
    MAX_TOTAL_DEPOSITS,
)
from sequencer.stf.eip712 import recover_signer
from sequencer.stf.errors import (
    BadDeposit,
    BadNonce,
    BadSignature,
    DecodeError,
    InsufficientBalance,
    InsufficientMargin,
    InvalidAmount,
    InvalidMessage,
    InvalidRecipient,
    SelfTransfer,
    WithdrawalExists,
)
from sequencer.stf.keys import account_key, global_key, markets_key, oracle_key, withdrawal_key
from sequencer.stf.margin import (
    Markets,
    equity,
    initial_margin,
    read_markets,
    require_all_fresh,
    settle,
)
from sequencer.stf.types import (
    Acct,
    ChainConfig,
    Deposit,
    L1Context,
    L1Message,
    Market,
    MarketParams,
    SetCommittee,
    SetMarket,
    Transfer,
    Withdraw,
)

_from_bytes = int.from_bytes
_ZERO12 = bytes(12)
_ZERO_ADDRESS = bytes(20)


class Reader(Protocol):
    """Read access to state leaves (the tree, or the sequencer's overlay view)."""

    def get(self, key: bytes) -> bytes | None:
        """The value of `key`, None if absent."""
        ...


Writes = dict[bytes, bytes]
"""Key -> new value, in touched-key order."""


def _next_queue_index(tree: Reader) -> int:
    value = tree.get(global_key())
    return 0 if value is None else _from_bytes(value, "big")


def consume_queue(tree: Reader, index: int, expected_hash: bytes, ctx: L1Context) -> bytes:
    """Check queue entry `index` is the next one, inside the batch, and what L1 queued (raises
    `BadDeposit` otherwise); returns the new Global value."""
    next_index = _next_queue_index(tree)
    if index != next_index:
        raise BadDeposit(index, f"next queue index is {next_index}")
    if index >= ctx.queue_end:
        raise BadDeposit(index, f"not before the batch's queue_end {ctx.queue_end}")
    if ctx.queue_hashes.get(index) != expected_hash:
        raise BadDeposit(index, "does not match the L1 queue entry")
    return (next_index + 1).to_bytes(32, "big")


def plan_deposit(tree: Reader, tx: Deposit, ctx: L1Context) -> Writes:
    """Deposit: credit `to` with a deposit from the L1 queue."""
    g_value = consume_queue(tree, tx.queue_index, deposit_hash(tx.queue_index, tx.to, tx.amount), ctx)
    to_key = account_key(tx.to)
    to = read_acct(tree.get(to_key))
    if to.positions:
        settle(to, read_markets(tree.get(markets_key())))
    to.collateral += tx.amount
    return {global_key(): g_value, to_key: write_acct(to)}


def _debit(tree: Reader, tx: Transfer | Withdraw, ctx: L1Context) -> tuple[bytes, Acct, Markets]:
    """The sender's side of a Transfer or Withdraw: amount, nonce, balance, margin; returns the
    sender's key, its record after the debit, and the markets."""
    amount = tx.amount
    if amount == 0 or amount > MAX_TOTAL_DEPOSITS:
        raise InvalidAmount(amount)
    from_key = account_key(tx.sender)
    a = read_acct(tree.get(from_key))
    if tx.nonce != a.nonce:
        raise BadNonce(tx.sender, a.nonce, tx.nonce)
    markets: Markets = ()
    if a.positions:
        markets = read_markets(tree.get(markets_key()))
        settle(a, markets)
    if amount > a.collateral:
        raise InsufficientBalance(tx.sender, amount, max(a.collateral, 0))
    a.collateral -= amount
    a.nonce += 1
    if a.positions:
        require_all_fresh(a, markets, ctx.l2_time)
        eq, imr = equity(a, markets), initial_margin(a, markets)
        if eq < imr:
            raise InsufficientMargin(tx.sender, imr, eq)
    return from_key, a, markets


def plan_transfer(tree: Reader, tx: Transfer, ctx: L1Context, config: ChainConfig, verified: bool) -> Writes:
    """Transfer: move collateral between two accounts."""
    if not verified and recover_signer(tx, config) != tx.sender:
        raise BadSignature(tx.sender)
    if tx.sender == tx.to:
        raise SelfTransfer(tx.sender)
    from_key, a, markets = _debit(tree, tx, ctx)
    to_key = account_key(tx.to)
    to = read_acct(tree.get(to_key))
    if to.positions:
        settle(to, markets or read_markets(tree.get(markets_key())))
    to.collateral += tx.amount
    return {from_key: write_acct(a), to_key: write_acct(to)}


def plan_withdraw(tree: Reader, tx: Withdraw, ctx: L1Context, config: ChainConfig, verified: bool) -> Writes:
    """Withdraw: move collateral out to an L1 address, through a Withdrawal leaf."""
    if not verified and recover_signer(tx, config) != tx.sender:
        raise BadSignature(tx.sender)
    if tx.to == _ZERO_ADDRESS:
        raise InvalidRecipient(tx.sender)
    w_key = withdrawal_key(tx.sender, tx.nonce)
    from_key, a, _ = _debit(tree, tx, ctx)
    if tree.get(w_key) is not None:
        raise WithdrawalExists(tx.sender, tx.nonce)
    return {from_key: write_acct(a), w_key: _ZERO12 + tx.to + tx.amount.to_bytes(32, "big")}


# ---- governance messages ---------------------------------------------------------------


def _check_params(p: MarketParams) -> None:
    """The SetMarket parameter rules (protocol section 3, L1Message)."""
    if (
        min(p.tick_size, p.lot_size, p.max_position, p.funding_interval, p.breaker_window, p.max_oracle_age)
        <= 0
    ):
        raise InvalidMessage(
            "tick, lot, max position, funding interval, breaker window and oracle age are > 0"
        )
    if not 0 < p.mmr_bps <= p.imr_bps <= BPS:
        raise InvalidMessage("need 0 < mmr_bps <= imr_bps <= 10000")
    if p.liquidation_penalty_bps > p.mmr_bps:
        raise InvalidMessage("the liquidation penalty is at most the maintenance margin")
    if not 0 <= p.taker_fee_bps <= MAX_FEE_BPS or not -p.taker_fee_bps <= p.maker_fee_bps <= MAX_FEE_BPS:
        raise InvalidMessage("fees: 0 <= taker <= 1000 and -taker <= maker <= 1000")
    if p.breaker_bps > BPS or p.max_funding_bps > BPS:
        raise InvalidMessage("breaker and funding caps are at most 10000 bps")


def governance_writes(tree: Reader, payload: bytes) -> Writes:
    """The writes of a valid governance payload; raises `InvalidMessage` for an invalid one."""
    try:
        message = decode_message(payload)
    except DecodeError as exc:
        raise InvalidMessage(str(exc)) from exc
    if type(message) is SetMarket:
        markets = read_markets(tree.get(markets_key()))
        m = message.market
        if m > len(markets) or m >= MAX_MARKETS:
            raise InvalidMessage(f"market {m}: the next new market is {len(markets)}")
        _check_params(message.params)
        records: list[Market] = list(markets)
        if m == len(markets):
            records.append(Market(message.params))
        else:
            records[m] = replace(records[m], params=message.params)
        return {markets_key(): encode_markets(records)}
    assert type(message) is SetCommittee
    c = message.committee
    count = len(c.members)
    if not 1 <= c.threshold <= count <= MAX_COMMITTEE or c.threshold > MAX_PRICE_SIGNATURES:
        raise InvalidMessage("need 1 <= threshold <= members <= 15 and threshold <= 11")
    if _ZERO_ADDRESS in c.members or len(set(c.members)) != count:
        raise InvalidMessage("members are distinct and non-zero")
    return {oracle_key(): encode_committee(c)}


def plan_l1_message(tree: Reader, tx: L1Message, ctx: L1Context) -> Writes:
    """L1Message: consume a governance message; apply it if its payload is valid."""
    g_value = consume_queue(tree, tx.queue_index, message_hash(tx.queue_index, tx.payload), ctx)
    writes: Writes = {global_key(): g_value}
    try:
        writes.update(governance_writes(tree, tx.payload))
    except InvalidMessage:
        pass  # an invalid payload is consumed and changes nothing else
    return writes
