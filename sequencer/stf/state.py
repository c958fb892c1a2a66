"""The rollup state: a plain dataclass holding the sparse Merkle tree, and free functions on it.

Genesis is the empty tree, whose root is `EMPTY`. Absent leaves read as their defaults (protocol
section 2): account (0, 0, no position), `next_queue_index` 0, no withdrawal, no market, order
(0 filled, not cancelled), insurance 0, no committee.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sequencer.stf.codec import (
    decode_account,
    decode_committee,
    decode_global,
    decode_markets,
    decode_order_state,
    decode_withdrawal_value,
    decode_word,
    encode_account,
    encode_committee,
    encode_global,
    encode_markets,
    encode_withdrawal_value,
    encode_word,
)
from sequencer.stf.keys import (
    account_key,
    global_key,
    insurance_key,
    markets_key,
    oracle_key,
    order_key,
    withdrawal_key,
)
from sequencer.stf.smt import SparseMerkleTree
from sequencer.stf.types import EMPTY_ACCOUNT, Account, Committee, Market, OrderState


@dataclass
class State:
    """The whole rollup state."""

    tree: SparseMerkleTree = field(default_factory=SparseMerkleTree)
    """All leaves (Global, Account, Withdrawal), committed by `tree.root`."""


def get_account(state: State, address: bytes) -> Account:
    """The account of `address` (collateral 0, nonce 0 if never written)."""
    value = state.tree.get(account_key(address))
    return EMPTY_ACCOUNT if value is None else decode_account(value)


def set_account(state: State, address: bytes, account: Account) -> None:
    """Write the account of `address`."""
    state.tree.set(account_key(address), encode_account(account))


def get_next_deposit_index(state: State) -> int:
    """The next L1 queue index the state will consume (deposits, messages, forced transactions)."""
    value = state.tree.get(global_key())
    return 0 if value is None else decode_global(value)


def set_next_deposit_index(state: State, index: int) -> None:
    """Write the Global leaf."""
    state.tree.set(global_key(), encode_global(index))


def get_withdrawal(state: State, account: bytes, nonce: int) -> tuple[bytes, int] | None:
    """`(l1_recipient, amount)` of withdrawal `(account, nonce)`, or None if there is none."""
    value = state.tree.get(withdrawal_key(account, nonce))
    return None if value is None else decode_withdrawal_value(value)


def set_withdrawal(state: State, account: bytes, nonce: int, l1_recipient: bytes, amount: int) -> None:
    """Write withdrawal `(account, nonce)`."""
    state.tree.set(withdrawal_key(account, nonce), encode_withdrawal_value(l1_recipient, amount))


def get_markets(state: State) -> tuple[Market, ...]:
    """Every listed market, by id."""
    value = state.tree.get(markets_key())
    return () if value is None else decode_markets(value)


def set_markets(state: State, markets: tuple[Market, ...] | list[Market]) -> None:
    """Write the Markets leaf (tests and genesis tooling; transactions change it by the rules)."""
    state.tree.set(markets_key(), encode_markets(markets))


def get_order_state(state: State, digest: bytes) -> OrderState:
    """Fill state of the order (or bundle) with EIP-712 digest `digest`."""
    value = state.tree.get(order_key(digest))
    return OrderState() if value is None else decode_order_state(value)


def get_insurance(state: State) -> int:
    """The Insurance fund's balance."""
    value = state.tree.get(insurance_key())
    return 0 if value is None else decode_word(value)


def set_insurance(state: State, balance: int) -> None:
    """Write the Insurance leaf."""
    state.tree.set(insurance_key(), encode_word(balance))


def get_committee(state: State) -> Committee | None:
    """The oracle committee, None if none is set."""
    value = state.tree.get(oracle_key())
    return None if value is None else decode_committee(value)


def set_committee(state: State, committee: Committee) -> None:
    """Write the Oracle leaf."""
    state.tree.set(oracle_key(), encode_committee(committee))


def state_root(state: State) -> bytes:
    """The state root."""
    return state.tree.root


def copy_state(state: State) -> State:
    """An independent copy (O(1): the tree is copy-on-write)."""
    return State(state.tree.copy())


def genesis_state() -> State:
    """The state at genesis: the empty tree (root `EMPTY`)."""
    return State()
