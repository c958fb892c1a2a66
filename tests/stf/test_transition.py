"""The state transition: vectors (pre, tx, post), typed errors, batches, and a model-based property."""

from __future__ import annotations

from dataclasses import replace

import pytest
from exchange_vectors import EXCHANGE_VECTORS
from hypothesis import given, settings
from hypothesis import strategies as st
from stf_vectors import (
    ALICE,
    ALICE_KEY,
    BASE,
    BOB,
    BOB_KEY,
    CAROL,
    CAROL_KEY,
    CONFIG,
    VECTORS,
    Vector,
    ref_root,
    state_of,
)

from prover.witness import build_tx_witnesses
from sequencer.stf.batch import batch_roots
from sequencer.stf.codec import decode_tx, deposit_hash, encode_tx
from sequencer.stf.constants import EMPTY
from sequencer.stf.eip712 import sign_transfer, sign_withdraw
from sequencer.stf.errors import (
    BadDeposit,
    BadNonce,
    BadSignature,
    DecodeError,
    InsufficientBalance,
    InvalidAmount,
    InvalidBatch,
    InvalidTransaction,
    RollupError,
    SelfTransfer,
    WithdrawalExists,
)
from sequencer.stf.hashing import keccak
from sequencer.stf.keys import account_key, global_key, markets_key, withdrawal_key
from sequencer.stf.smt import check_witness, write_witness
from sequencer.stf.state import (
    State,
    copy_state,
    genesis_state,
    get_account,
    get_next_deposit_index,
    get_withdrawal,
    state_root,
)
from sequencer.stf.transition import (
    REASON_POST_ROOT,
    REASON_PREV_ROOT,
    REASON_QUEUE,
    REASON_QUEUE_CONTEXT,
    REASON_ROOTS_COUNT,
    REASON_ROOTS_ROOT,
    REASON_STATE_ROOT,
    REASON_TX_COUNT,
    REASON_TX_ROOT,
    REASON_TX_TOO_LARGE,
    apply_batch,
    apply_decoded,
    apply_tx,
    check_batch,
    plan_tx,
    touched_keys,
)
from sequencer.stf.types import Account, BatchHeader, Deposit, L1Context, Transfer, Withdraw


def test_vectors__names_unique_and_every_error_code_covered() -> None:
    assert len({v.name for v in VECTORS}) == len(VECTORS)
    codes = {v.error for v in VECTORS}
    assert codes >= {
        None,
        "malformed",
        "bad_signature",
        "bad_nonce",
        "insufficient_balance",
        "invalid_amount",
        "self_transfer",
        "bad_deposit",
        "withdrawal_exists",
    }


def check_sequential_witnesses(pre: State, raw: bytes, v: Vector, post_root: bytes) -> None:
    """The prover's witnesses check one after the other and end at the post root."""
    state = copy_state(pre)
    witnesses, root = build_tx_witnesses(state, raw, v.ctx, CONFIG)
    assert root == post_root == state_root(state)
    running = state_root(pre)
    try:
        keys = touched_keys(decode_tx(raw), CONFIG)
    except DecodeError:
        assert witnesses == []
        return
    assert [w.key for w in witnesses] == list(keys)
    for w in witnesses:
        assert check_witness(w, running)
        assert w.value == (pre.tree.get(w.key) or b"")  # witness j shows the value before the tx
        new = v.post.get(w.key)
        if v.error is None and new is not None and new != (w.value or None):  # written iff changed
            running = write_witness(w, new)
    assert running == post_root


ALL_VECTORS = VECTORS + EXCHANGE_VECTORS


def test_exchange_vectors__names_unique_and_every_error_code_covered() -> None:
    assert len({v.name for v in ALL_VECTORS}) == len(ALL_VECTORS)
    assert {v.error for v in EXCHANGE_VECTORS} >= {
        None,
        "bad_signature",
        "bad_nonce",
        "bad_deposit",
        "insufficient_margin",
        "unknown_market",
        "price_off_tick",
        "size_off_lot",
        "order_expired",
        "order_cancelled",
        "overfill",
        "self_trade",
        "stale_oracle",
        "market_halted",
        "reduce_only",
        "position_limit",
        "not_liquidatable",
        "invalid_order",
        "invalid_oracle_update",
        "funding_not_due",
    }


@pytest.mark.parametrize("v", ALL_VECTORS, ids=[v.name for v in ALL_VECTORS])
def test_vector(v: Vector) -> None:
    pre = state_of(v.pre)
    assert state_root(pre) == ref_root(v.pre)
    state = copy_state(pre)
    outcome = apply_tx(state, v.tx, v.ctx, CONFIG)
    assert outcome.tx_hash == keccak(v.tx)
    assert outcome.applied == (v.error is None)
    assert (None if outcome.error is None else outcome.error.code) == v.error
    assert dict(state.tree.items()) == v.post
    assert outcome.post_root == state_root(state) == ref_root(v.post)
    if v.error is not None:
        assert outcome.post_root == state_root(pre)
    check_sequential_witnesses(pre, v.tx, v, outcome.post_root)


def test_plan_tx__does_not_modify_state_and_lists_writes_in_touched_order() -> None:
    state = state_of(BASE)
    root = state_root(state)
    tx = sign_withdraw(ALICE_KEY, BOB, 5, 3, CONFIG)
    writes = plan_tx(state, tx, L1Context(0), CONFIG)
    assert list(writes) == [account_key(ALICE), withdrawal_key(ALICE, 3)]
    assert touched_keys(tx, CONFIG) == (account_key(ALICE), withdrawal_key(ALICE, 3), markets_key())
    assert state_root(state) == root


def test_errors__carry_typed_fields() -> None:
    state = state_of(BASE)
    ctx = L1Context(0)

    def refusal(tx: Transfer | Withdraw | Deposit, c: L1Context = ctx) -> InvalidTransaction:
        with pytest.raises(InvalidTransaction) as info:
            plan_tx(state, tx, c, CONFIG)
        assert isinstance(info.value, RollupError)
        return info.value

    e = refusal(sign_transfer(ALICE_KEY, BOB, 1, 7, CONFIG))
    assert isinstance(e, BadNonce) and (e.account, e.expected, e.got, e.code) == (ALICE, 3, 7, "bad_nonce")
    e = refusal(sign_transfer(ALICE_KEY, BOB, 1001, 3, CONFIG))
    assert isinstance(e, InsufficientBalance) and (e.account, e.required, e.available) == (ALICE, 1001, 1000)
    e = refusal(replace(sign_transfer(BOB_KEY, CAROL, 1, 0, CONFIG), sender=ALICE))
    assert isinstance(e, BadSignature) and e.account == ALICE
    e = refusal(sign_transfer(ALICE_KEY, ALICE, 1, 3, CONFIG))
    assert isinstance(e, SelfTransfer) and e.account == ALICE
    e = refusal(sign_withdraw(ALICE_KEY, BOB, 0, 3, CONFIG))
    assert isinstance(e, InvalidAmount) and e.amount == 0
    e = refusal(Deposit(5, BOB, 1))
    assert isinstance(e, BadDeposit) and e.queue_index == 5
    taken = state_of({**BASE, withdrawal_key(ALICE, 3): b"\x01" * 64})
    with pytest.raises(WithdrawalExists) as info:
        plan_tx(taken, sign_withdraw(ALICE_KEY, BOB, 1, 3, CONFIG), ctx, CONFIG)
    assert (info.value.account, info.value.nonce) == (ALICE, 3)


def test_signer_verified__skips_only_the_signature() -> None:
    state = state_of(BASE)
    unsigned = Transfer(ALICE, BOB, 10, 3, 0, 0, 0)
    outcome = apply_decoded(state, unsigned, L1Context(0), CONFIG, signer_verified=True)
    assert outcome.applied and get_account(state, ALICE) == Account(990, 4)
    assert outcome.tx_hash == keccak(encode_tx(unsigned))
    again = apply_decoded(state, unsigned, L1Context(0), CONFIG, signer_verified=True)
    assert isinstance(again.error, BadNonce)
    assert not apply_decoded(state, replace(unsigned, nonce=4), L1Context(0), CONFIG).applied


def test_state_accessors__defaults_for_absent_leaves() -> None:
    state = genesis_state()
    assert state_root(state) == EMPTY
    assert get_account(state, ALICE) == Account(0, 0)
    assert get_next_deposit_index(state) == 0
    assert get_withdrawal(state, ALICE, 0) is None
    base = state_of(BASE)
    assert get_next_deposit_index(base) == 2
    assert get_account(base, ALICE) == Account(1000, 3)


# ---------------------------------------------------------------- batches


def make_batch(
    pre: State, txs: list[bytes], ctx: L1Context, index: int = 0
) -> tuple[BatchHeader, list[bytes]]:
    work = copy_state(pre)
    roots = apply_batch(work, txs, ctx, CONFIG)
    tx_root, roots_root = batch_roots(txs, roots)
    header = BatchHeader(
        index,
        state_root(pre),
        roots[-1],
        tx_root,
        roots_root,
        len(txs),
        2,
        ctx.queue_end,
        ctx.l2_time,
        b"\x5e" * 20,
        1000,
    )
    return header, roots


def batch_fixture() -> tuple[State, list[bytes], L1Context]:
    pre = state_of(BASE)
    ctx = L1Context(4, {2: deposit_hash(2, CAROL, 500), 3: deposit_hash(3, BOB, 5)})
    txs = [
        encode_tx(Deposit(2, CAROL, 500)),
        encode_tx(sign_transfer(CAROL_KEY, ALICE, 200, 0, CONFIG)),
        b"\xde\xad",  # does not decode: a no-op that stays in the batch
        encode_tx(sign_transfer(ALICE_KEY, BOB, 1, 9, CONFIG)),  # stale nonce: no-op
        encode_tx(Deposit(3, BOB, 5)),
        encode_tx(sign_withdraw(ALICE_KEY, ALICE, 1200, 3, CONFIG)),
    ]
    return pre, txs, ctx


def test_check_batch__honest_batch_advances_state() -> None:
    pre, txs, ctx = batch_fixture()
    header, roots = make_batch(pre, txs, ctx)
    assert roots[2] == roots[1] and roots[3] == roots[2]  # no-ops keep the root
    state = copy_state(pre)
    outcomes = check_batch(state, header, txs, roots, ctx, CONFIG)
    assert [o.applied for o in outcomes] == [True, True, False, False, True, True]
    assert state_root(state) == header.post_root
    assert get_account(state, ALICE) == Account(0, 4)
    assert get_withdrawal(state, ALICE, 3) == (ALICE, 1200)
    assert get_next_deposit_index(state) == 4


@pytest.mark.parametrize("bad_index", range(6))
def test_check_batch__wrong_tx_root__invalid_at_that_tx_and_state_unchanged(bad_index: int) -> None:
    pre, txs, ctx = batch_fixture()
    header, roots = make_batch(pre, txs, ctx)
    roots = list(roots)
    roots[bad_index] = keccak(roots[bad_index])
    _, roots_root = batch_roots(txs, roots)
    header = replace(header, roots_root=roots_root, post_root=roots[-1])
    state = copy_state(pre)
    with pytest.raises(InvalidBatch) as info:
        check_batch(state, header, txs, roots, ctx, CONFIG)
    assert (info.value.reason, info.value.tx_index) == (REASON_STATE_ROOT, bad_index)
    assert state_root(state) == state_root(pre)


def test_check_batch__presigned__those_signatures_not_recovered_every_other_one_checked() -> None:
    pre, txs, ctx = batch_fixture()
    forged = replace(sign_transfer(CAROL_KEY, ALICE, 20, 0, CONFIG), sender=BOB)
    txs[1] = encode_tx(forged)  # BOB named as the signer, CAROL's signature
    # roots as a node that took BOB's word computes them (his transfer applied)
    work = copy_state(pre)
    roots = [apply_tx(work, raw, ctx, CONFIG, signer_verified=i == 1).post_root for i, raw in enumerate(txs)]
    tx_root, roots_root = batch_roots(txs, roots)
    header, _ = make_batch(pre, txs, ctx)
    header = replace(header, tx_root=tx_root, roots_root=roots_root, post_root=roots[-1])
    with pytest.raises(InvalidBatch) as info:  # every signature checked: the forgery is a no-op
        check_batch(copy_state(pre), header, txs, roots, ctx, CONFIG)
    assert (info.value.reason, info.value.tx_index) == (REASON_STATE_ROOT, 1)
    others = {keccak(raw) for i, raw in enumerate(txs) if i != 1}
    with pytest.raises(InvalidBatch):  # presigned names the others only: the forgery is still checked
        check_batch(copy_state(pre), header, txs, roots, ctx, CONFIG, others.__contains__)
    state = copy_state(pre)
    outcomes = check_batch(state, header, txs, roots, ctx, CONFIG, lambda h: h == keccak(txs[1]))
    assert outcomes[1].applied and state_root(state) == header.post_root  # taken as its log had it
    honest, honest_txs, _ = batch_fixture()
    honest_header, honest_roots = make_batch(honest, honest_txs, ctx)
    every = {keccak(raw) for raw in honest_txs}
    checked, trusted = copy_state(honest), copy_state(honest)
    check_batch(checked, honest_header, honest_txs, honest_roots, ctx, CONFIG)
    check_batch(trusted, honest_header, honest_txs, honest_roots, ctx, CONFIG, every.__contains__)
    assert state_root(checked) == state_root(trusted) == honest_header.post_root


def test_check_batch__queue_not_consumed__queue_fraud() -> None:
    pre, txs, ctx = batch_fixture()
    txs = txs[:4]  # deposit 3 is left out though queue_end is 4
    header, roots = make_batch(pre, txs, ctx)
    with pytest.raises(InvalidBatch) as info:
        check_batch(copy_state(pre), header, txs, roots, ctx, CONFIG)
    assert (info.value.reason, info.value.tx_index) == (REASON_QUEUE, None)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tx_count": 5}, REASON_TX_COUNT),
        ({"prev_root": b"\x01" * 32}, REASON_PREV_ROOT),
        ({"queue_end": 3}, REASON_QUEUE_CONTEXT),
        ({"tx_root": b"\x01" * 32}, REASON_TX_ROOT),
        ({"roots_root": b"\x01" * 32}, REASON_ROOTS_ROOT),
        ({"post_root": b"\x01" * 32}, REASON_POST_ROOT),
    ],
)
def test_check_batch__header_mismatch(change: dict[str, object], reason: str) -> None:
    pre, txs, ctx = batch_fixture()
    header, roots = make_batch(pre, txs, ctx)
    with pytest.raises(InvalidBatch) as info:
        check_batch(copy_state(pre), replace(header, **change), txs, roots, ctx, CONFIG)  # type: ignore[arg-type]
    assert info.value.reason == reason


def test_check_batch__shape_errors() -> None:
    pre, txs, ctx = batch_fixture()
    header, roots = make_batch(pre, txs, ctx)
    with pytest.raises(InvalidBatch) as info:
        check_batch(copy_state(pre), header, txs, roots[:-1], ctx, CONFIG)
    assert info.value.reason == REASON_ROOTS_COUNT
    with pytest.raises(InvalidBatch) as info:
        check_batch(copy_state(pre), replace(header, tx_count=0), [], [], ctx, CONFIG)
    assert info.value.reason == REASON_TX_COUNT
    long_txs = [*txs[:-1], b"\x02" * 1025]
    with pytest.raises(InvalidBatch) as info:
        check_batch(copy_state(pre), header, long_txs, roots, ctx, CONFIG)
    assert (info.value.reason, info.value.tx_index) == (REASON_TX_TOO_LARGE, 5)


# ---------------------------------------------------------------- model-based property

KEYS = [ALICE_KEY, BOB_KEY, CAROL_KEY]
ADDRS = [ALICE, BOB, CAROL]

ops = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "transfer", "withdraw", "junk"]),
        st.integers(0, 2),  # actor
        st.integers(0, 2),  # counterparty
        st.integers(0, 300),  # amount
        st.integers(-1, 1),  # nonce offset (0 = right)
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(ops)
def test_random_sequences__match_model_conserve_money_and_witnesses(
    script: list[tuple[str, int, int, int, int]],
) -> None:
    state = genesis_state()
    balances = [0, 0, 0]
    nonces = [0, 0, 0]
    withdrawn = 0
    deposited = 0
    next_deposit = 0
    hashes: dict[int, bytes] = {}
    for kind, a, b, amount, offset in script:
        nonce = max(0, nonces[a] + offset)
        if kind == "deposit":
            hashes[next_deposit] = deposit_hash(next_deposit, ADDRS[b], amount)
            raw = encode_tx(Deposit(next_deposit, ADDRS[b], amount))
        elif kind == "transfer":
            raw = encode_tx(sign_transfer(KEYS[a], ADDRS[b], amount, nonce, CONFIG))
        elif kind == "withdraw":
            raw = encode_tx(sign_withdraw(KEYS[a], ADDRS[b], amount, nonce, CONFIG))
        else:
            raw = bytes([a, b, amount % 256])
        ctx = L1Context(next_deposit + 1, hashes)
        # the model
        valid = False
        if kind == "deposit":
            valid = True
            balances[b] += amount
            deposited += amount
            next_deposit += 1
        elif kind in ("transfer", "withdraw"):
            valid = 0 < amount <= balances[a] and nonce == nonces[a] and (kind == "withdraw" or a != b)
            if valid:
                balances[a] -= amount
                nonces[a] += 1
                if kind == "transfer":
                    balances[b] += amount
                else:
                    withdrawn += amount
        witness_state = copy_state(state)
        outcome = apply_tx(state, raw, ctx, CONFIG)
        assert outcome.applied == valid
        _, witness_root = build_tx_witnesses(witness_state, raw, ctx, CONFIG)
        assert witness_root == outcome.post_root
    assert [get_account(state, x) for x in ADDRS] == [
        Account(c, n) for c, n in zip(balances, nonces, strict=True)
    ]
    assert get_next_deposit_index(state) == next_deposit
    leaves = dict(state.tree.items())
    assert state_root(state) == ref_root(leaves)
    total_withdrawals = sum(
        int.from_bytes(v[32:], "big")
        for k, v in leaves.items()
        if k not in {account_key(x) for x in ADDRS} and k != global_key()
    )
    assert total_withdrawals == withdrawn
    assert sum(balances) + withdrawn == deposited
