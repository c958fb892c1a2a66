"""State-machine test vectors (consensus-specs style): `pre` leaves, one encoded `tx`, `post` leaves.

Each vector says which error code the transaction must be refused with (None = it applies). A
refused transaction is a no-op: `post == pre`. The same vectors can feed the differential test
against the Vyper FraudVerifier (build `pre` into a tree, take witnesses with
`prover.witness.build_tx_witnesses`, and compare roots).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sequencer.stf.codec import (
    deposit_hash,
    encode_account,
    encode_global,
    encode_order_state,
    encode_tx,
    encode_withdrawal_value,
    forced_hash,
    message_hash,
)
from sequencer.stf.constants import EMPTY, LEAF_TAG, MAX_TOTAL_DEPOSITS, SECP256K1_N
from sequencer.stf.eip712 import address_of, order_digest, sign_cancel, sign_transfer, sign_withdraw
from sequencer.stf.hashing import keccak
from sequencer.stf.keys import account_key, global_key, order_key, withdrawal_key
from sequencer.stf.state import State
from sequencer.stf.types import (
    Account,
    Cancel,
    ChainConfig,
    Deposit,
    ForcedTx,
    Funding,
    L1Context,
    Order,
    OrderState,
)

CONFIG = ChainConfig(chain_id=31337, rollup=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
"""The chain config every vector is signed for."""

ALICE_KEY = (0xA11CE).to_bytes(32, "big")
BOB_KEY = (0xB0B).to_bytes(32, "big")
CAROL_KEY = (0xCA401).to_bytes(32, "big")
ALICE, BOB, CAROL = address_of(ALICE_KEY), address_of(BOB_KEY), address_of(CAROL_KEY)
L1_RECIPIENT = b"\x1e" * 20


@dataclass(frozen=True)
class Vector:
    """One transaction on one pre-state, and what it must do."""

    name: str
    """Unique name."""
    pre: dict[bytes, bytes]
    """State leaves before (key -> value)."""
    tx: bytes
    """The encoded transaction."""
    ctx: L1Context
    """The L1 context of the batch."""
    error: str | None
    """Expected error code, or None if the transaction applies."""
    post: dict[bytes, bytes] = field(default_factory=dict)
    """State leaves after (equal to `pre` when `error` is set)."""


def acct(collateral: int, nonce: int) -> bytes:
    """An Account leaf value."""
    return encode_account(Account(collateral, nonce))


def state_of(leaves: dict[bytes, bytes]) -> State:
    """A state holding exactly `leaves`."""
    state = State()
    for key, value in leaves.items():
        state.tree.set(key, value)
    return state


BASE: dict[bytes, bytes] = {
    global_key(): encode_global(2),
    account_key(ALICE): acct(1000, 3),
    account_key(BOB): acct(50, 0),
}
"""Two deposits consumed; Alice has 1000 at nonce 3, Bob 50 at nonce 0."""


def _deposit_ctx(index: int, to: bytes, amount: int, queue_end: int | None = None) -> L1Context:
    return L1Context(index + 1 if queue_end is None else queue_end, {index: deposit_hash(index, to, amount)})


def build_vectors() -> list[Vector]:
    """All vectors (deterministic)."""
    vectors: list[Vector] = []
    no_l1 = L1Context(0, {})

    def ok(name: str, pre: dict[bytes, bytes], tx: bytes, ctx: L1Context, writes: dict[bytes, bytes]) -> None:
        vectors.append(Vector(name, pre, tx, ctx, None, {**pre, **writes}))

    def bad(name: str, pre: dict[bytes, bytes], tx: bytes, ctx: L1Context, code: str) -> None:
        vectors.append(Vector(name, pre, tx, ctx, code, dict(pre)))

    # Deposits
    dep = encode_tx(Deposit(2, CAROL, 500))
    ok(
        "deposit__new_account",
        BASE,
        dep,
        _deposit_ctx(2, CAROL, 500),
        {global_key(): encode_global(3), account_key(CAROL): acct(500, 0)},
    )
    ok(
        "deposit__existing_account",
        BASE,
        encode_tx(Deposit(2, BOB, 7)),
        _deposit_ctx(2, BOB, 7, 9),
        {global_key(): encode_global(3), account_key(BOB): acct(57, 0)},
    )
    ok(
        "deposit__genesis",
        {},
        encode_tx(Deposit(0, ALICE, 1)),
        _deposit_ctx(0, ALICE, 1),
        {global_key(): encode_global(1), account_key(ALICE): acct(1, 0)},
    )
    ok(
        "deposit__zero_amount_still_writes",
        BASE,
        encode_tx(Deposit(2, CAROL, 0)),
        _deposit_ctx(2, CAROL, 0),
        {global_key(): encode_global(3), account_key(CAROL): acct(0, 0)},
    )
    bad(
        "deposit__stale_index",
        BASE,
        encode_tx(Deposit(1, CAROL, 5)),
        _deposit_ctx(1, CAROL, 5, 3),
        "bad_deposit",
    )
    bad(
        "deposit__future_index",
        BASE,
        encode_tx(Deposit(3, CAROL, 5)),
        _deposit_ctx(3, CAROL, 5),
        "bad_deposit",
    )
    bad("deposit__at_queue_end", BASE, dep, _deposit_ctx(2, CAROL, 500, 2), "bad_deposit")
    bad("deposit__hash_mismatch", BASE, dep, _deposit_ctx(2, CAROL, 501), "bad_deposit")
    bad("deposit__hash_unknown", BASE, dep, L1Context(3, {}), "bad_deposit")

    # Transfers
    def transfer(key: bytes, to: bytes, amount: int, nonce: int, config: ChainConfig = CONFIG) -> bytes:
        return encode_tx(sign_transfer(key, to, amount, nonce, config))

    ok(
        "transfer__to_new_account",
        BASE,
        transfer(ALICE_KEY, CAROL, 100, 3),
        no_l1,
        {account_key(ALICE): acct(900, 4), account_key(CAROL): acct(100, 0)},
    )
    ok(
        "transfer__to_existing_account",
        BASE,
        transfer(ALICE_KEY, BOB, 1, 3),
        no_l1,
        {account_key(ALICE): acct(999, 4), account_key(BOB): acct(51, 0)},
    )
    ok(
        "transfer__whole_balance",
        BASE,
        transfer(BOB_KEY, ALICE, 50, 0),
        no_l1,
        {account_key(BOB): acct(0, 1), account_key(ALICE): acct(1050, 3)},
    )
    forged = sign_transfer(BOB_KEY, CAROL, 100, 3, CONFIG)
    bad("transfer__signed_by_other", BASE, encode_tx(replace(forged, sender=ALICE)), no_l1, "bad_signature")
    good = sign_transfer(ALICE_KEY, CAROL, 100, 3, CONFIG)
    bad(
        "transfer__high_s",
        BASE,
        encode_tx(replace(good, s=SECP256K1_N - good.s, v=55 - good.v)),
        no_l1,
        "bad_signature",
    )
    bad("transfer__bad_v", BASE, encode_tx(replace(good, v=good.v - 27)), no_l1, "bad_signature")
    bad("transfer__zero_r", BASE, encode_tx(replace(good, r=0)), no_l1, "bad_signature")
    bad(
        "transfer__other_chain",
        BASE,
        transfer(ALICE_KEY, CAROL, 100, 3, ChainConfig(1, CONFIG.rollup)),
        no_l1,
        "bad_signature",
    )
    bad("transfer__self", BASE, transfer(ALICE_KEY, ALICE, 100, 3), no_l1, "self_transfer")
    bad("transfer__zero_amount", BASE, transfer(ALICE_KEY, BOB, 0, 3), no_l1, "invalid_amount")
    bad(
        "transfer__amount_above_cap",
        BASE,
        transfer(ALICE_KEY, BOB, MAX_TOTAL_DEPOSITS + 1, 3),
        no_l1,
        "invalid_amount",
    )
    bad("transfer__stale_nonce", BASE, transfer(ALICE_KEY, BOB, 1, 2), no_l1, "bad_nonce")
    bad("transfer__future_nonce", BASE, transfer(ALICE_KEY, BOB, 1, 4), no_l1, "bad_nonce")
    bad("transfer__insufficient", BASE, transfer(ALICE_KEY, BOB, 1001, 3), no_l1, "insufficient_balance")
    bad("transfer__from_absent", BASE, transfer(CAROL_KEY, BOB, 1, 0), no_l1, "insufficient_balance")

    # Withdrawals
    def withdraw(key: bytes, to: bytes, amount: int, nonce: int) -> bytes:
        return encode_tx(sign_withdraw(key, to, amount, nonce, CONFIG))

    ok(
        "withdraw__part",
        BASE,
        withdraw(ALICE_KEY, L1_RECIPIENT, 300, 3),
        no_l1,
        {
            account_key(ALICE): acct(700, 4),
            withdrawal_key(ALICE, 3): encode_withdrawal_value(L1_RECIPIENT, 300),
        },
    )
    ok(
        "withdraw__whole_balance_to_own_address",
        BASE,
        withdraw(BOB_KEY, BOB, 50, 0),
        no_l1,
        {account_key(BOB): acct(0, 1), withdrawal_key(BOB, 0): encode_withdrawal_value(BOB, 50)},
    )
    taken = {**BASE, withdrawal_key(ALICE, 3): encode_withdrawal_value(BOB, 1)}
    bad("withdraw__exists", taken, withdraw(ALICE_KEY, L1_RECIPIENT, 300, 3), no_l1, "withdrawal_exists")
    bad("withdraw__zero_amount", BASE, withdraw(ALICE_KEY, L1_RECIPIENT, 0, 3), no_l1, "invalid_amount")
    bad("withdraw__zero_recipient", BASE, withdraw(ALICE_KEY, bytes(20), 300, 3), no_l1, "invalid_recipient")
    bad(
        "withdraw__insufficient",
        BASE,
        withdraw(ALICE_KEY, L1_RECIPIENT, 1001, 3),
        no_l1,
        "insufficient_balance",
    )
    bad("withdraw__stale_nonce", BASE, withdraw(ALICE_KEY, L1_RECIPIENT, 1, 2), no_l1, "bad_nonce")
    w = sign_withdraw(ALICE_KEY, L1_RECIPIENT, 300, 3, CONFIG)
    bad("withdraw__recipient_changed", BASE, encode_tx(replace(w, to=BOB)), no_l1, "bad_signature")

    # Forced transactions (a signed Transfer, Withdraw or Cancel through the L1 queue, entry 2 of BASE)
    def forced(inner: bytes, index: int = 2) -> tuple[bytes, L1Context]:
        return encode_tx(ForcedTx(index, inner)), L1Context(index + 1, {index: forced_hash(index, inner)})

    consumed = {global_key(): encode_global(3)}
    raw, ctx = forced(withdraw(ALICE_KEY, L1_RECIPIENT, 300, 3))
    ok(
        "forced__withdraw_applies",
        BASE,
        raw,
        ctx,
        {
            **consumed,
            account_key(ALICE): acct(700, 4),
            withdrawal_key(ALICE, 3): encode_withdrawal_value(L1_RECIPIENT, 300),
        },
    )
    raw, ctx = forced(transfer(ALICE_KEY, CAROL, 100, 3))
    ok(
        "forced__transfer_applies",
        BASE,
        raw,
        ctx,
        {**consumed, account_key(ALICE): acct(900, 4), account_key(CAROL): acct(100, 0)},
    )
    refused = {
        "inner_bad_signature": encode_tx(replace(w, to=BOB)),
        "inner_signed_by_other": encode_tx(replace(forged, sender=ALICE)),
        "inner_replayed_nonce": withdraw(ALICE_KEY, L1_RECIPIENT, 300, 2),
        "inner_future_nonce": transfer(ALICE_KEY, BOB, 1, 4),
        "inner_insufficient": withdraw(ALICE_KEY, L1_RECIPIENT, 1001, 3),
        "inner_self_transfer": transfer(ALICE_KEY, ALICE, 100, 3),
        "inner_zero_recipient": withdraw(ALICE_KEY, bytes(20), 300, 3),
        "inner_undecodable": b"\x03" + bytes(40),
        "inner_truncated": withdraw(ALICE_KEY, L1_RECIPIENT, 300, 3)[:-1],
        "inner_one_byte": b"\x02",
        "inner_unknown_type": b"\xee" + withdraw(ALICE_KEY, L1_RECIPIENT, 300, 3)[1:],
        "inner_deposit": encode_tx(Deposit(2, ALICE, 5)),
        "inner_funding": encode_tx(Funding(0, 0)),
        "inner_nested_forced": encode_tx(ForcedTx(2, withdraw(ALICE_KEY, L1_RECIPIENT, 300, 3))),
    }
    for name, inner in refused.items():
        raw, ctx = forced(inner)
        ok(f"forced__{name}__only_consumed", BASE, raw, ctx, consumed)
    raw, ctx = forced(withdraw(ALICE_KEY, L1_RECIPIENT, 300, 3))
    ok("forced__inner_withdrawal_exists__only_consumed", taken, raw, ctx, consumed)
    inner = withdraw(ALICE_KEY, L1_RECIPIENT, 300, 3)
    bad(
        "forced__wrong_queue_hash",
        BASE,
        raw,
        L1Context(3, {2: forced_hash(2, inner[:-1] + b"\x00")}),
        "bad_deposit",
    )
    bad("forced__message_hash", BASE, raw, L1Context(3, {2: message_hash(2, inner)}), "bad_deposit")
    bad(
        "forced__stale_index",
        BASE,
        forced(inner, 1)[0],
        L1Context(3, {1: forced_hash(1, inner)}),
        "bad_deposit",
    )
    bad("forced__at_queue_end", BASE, raw, L1Context(2, {2: forced_hash(2, inner)}), "bad_deposit")
    bad("malformed__forced_empty_inner", BASE, b"\x0c" + (2).to_bytes(8, "big"), ctx, "malformed")

    # Forced cancels: Alice's order (resting with some sequencer, or never seen) cancelled through
    # the L1 queue; the Order leaf keeps its filled size and can never fill again.
    ask = Order(ALICE, 0, 1, 3_000, 1_000, 0, 0, 7)
    ask_key = order_key(order_digest(ask, CONFIG))
    cancel_ask = encode_tx(Cancel(ask, sign_cancel(ALICE_KEY, ask, CONFIG)))
    raw, ctx = forced(cancel_ask)
    ok(
        "forced__cancel_applies",
        BASE,
        raw,
        ctx,
        {**consumed, ask_key: encode_order_state(OrderState(0, True))},
    )
    part_filled = {**BASE, ask_key: encode_order_state(OrderState(300, False))}
    ok(
        "forced__cancel_keeps_filled",
        part_filled,
        raw,
        ctx,
        {**consumed, ask_key: encode_order_state(OrderState(300, True))},
    )
    cancelled = {**BASE, ask_key: encode_order_state(OrderState(300, True))}
    ok("forced__inner_cancel_already_cancelled__only_consumed", cancelled, raw, ctx, consumed)
    raw, ctx = forced(encode_tx(Cancel(ask, sign_cancel(BOB_KEY, ask, CONFIG))))
    ok("forced__inner_cancel_signed_by_other__only_consumed", part_filled, raw, ctx, consumed)
    raw, ctx = forced(cancel_ask[:-1])
    ok("forced__inner_cancel_truncated__only_consumed", part_filled, raw, ctx, consumed)

    # Bytes that do not decode
    bad("malformed__empty", BASE, b"", no_l1, "malformed")
    bad("malformed__unknown_type", BASE, b"\x09" + good_bytes(good)[1:], no_l1, "malformed")
    bad("malformed__truncated", BASE, good_bytes(good)[:-1], no_l1, "malformed")
    bad("malformed__trailing_byte", BASE, good_bytes(good) + b"\x00", no_l1, "malformed")
    bad("malformed__deposit_length", BASE, dep[:-1], _deposit_ctx(2, CAROL, 500), "malformed")
    return vectors


def good_bytes(tx: object) -> bytes:
    """Encoding helper for vectors built from a decoded transaction."""
    return encode_tx(tx)  # type: ignore[arg-type]


def ref_root(items: dict[bytes, bytes]) -> bytes:
    """The protocol's definition, written the slow and obvious way."""

    def bit(key: bytes, q: int) -> int:
        return (key[q // 8] >> (7 - q % 8)) & 1

    def h(keys: list[bytes], depth: int) -> bytes:
        if not keys:
            return EMPTY
        if len(keys) == 1:
            return keccak(LEAF_TAG + keys[0] + keccak(items[keys[0]]))
        left = [k for k in keys if bit(k, depth) == 0]
        right = [k for k in keys if bit(k, depth) == 1]
        return keccak(h(left, depth + 1) + h(right, depth + 1))

    return h(sorted(items), 0)


VECTORS = build_vectors()
"""All vectors, built once."""
