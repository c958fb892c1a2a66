"""Fraud proofs against real state-machine batches: each transaction type, queue fraud, misuse.

The v1 scene (deposits, transfers, withdrawals, undecodable bytes, bad signatures) and the exchange
scene (`exchange_scene`: every v2 type, valid and breaking a rule, built by real batches on the
Rollup, with the worst cases of gas) are both proven transaction by transaction: a corrupted post
root is proven fraudulent, a correct one never is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from contracts_harness import (
    CHALLENGE_WINDOW_SECONDS,
    CHALLENGER_REWARD_BPS,
    FRAUD_GAS_LIMIT,
    MIN_BOND_WEI,
    AppendedBatch,
    Harness,
    record_gas,
    user_address,
)

from contracts.bindings import QUEUE_FRAUD, Sender, TransactionReverted
from devnet.exchange_scene import TARGET_NAMES, ExchangeScene, build_exchange_scene
from sequencer.stf.keys import account_key, global_key
from sequencer.stf.smt import Witness

BOND_WEI = 3 * MIN_BOND_WEI + 1  # odd, so the split rounds
WRONG_ROOT = b"\x5a" * 32
L1_RECIPIENT = bytes.fromhex("00000000000000000000000000000000000b0b00")

# Transactions of the batch under test, by kind (their index in the batch).
KINDS = ["deposit", "transfer", "withdraw", "undecodable", "bad_signature", "self_transfer"]


@dataclass
class Scene:
    h: Harness
    seq: Sender
    seq2: Sender
    challenger: Sender
    first: AppendedBatch
    """Batch 0: funds users 1 and 2."""
    batch: AppendedBatch
    """Batch 1: one transaction of each kind, its clock one second after batch 0's."""
    later: AppendedBatch


def _addr(sender: Sender) -> bytes:
    return bytes.fromhex(sender.address[2:])


def _batch_txs(h: Harness) -> list[bytes]:
    """One transaction of each kind, in `KINDS` order (user 1 and 2 are funded by batch 0)."""
    return [
        h.deposit_tx(2, user_address(3), 300),
        h.transfer_tx(1, user_address(4), 40, 0),
        h.withdraw_tx(1, L1_RECIPIENT, 25, 1),
        b"\xff\x00\x01",
        # Signed by user 2 but claiming to be from user 1: a no-op.
        h.transfer_tx(2, user_address(4), 5, 0)[:1]
        + user_address(1)
        + h.transfer_tx(2, user_address(4), 5, 0)[21:],
        h.transfer_tx(2, user_address(2), 5, 0),
    ]


def _scene(h: Harness, corrupt: int | None) -> Scene:
    seq, seq2, challenger = h.account(1), h.account(2), h.account(3)
    h.bond(seq, BOND_WEI)
    h.bond(seq2)
    for i, amount in enumerate((1_000, 2_000, 300)):
        h.deposit(user_address(i + 1), amount)
    first = h.append(
        seq, [h.deposit_tx(0, user_address(1), 1_000), h.deposit_tx(1, user_address(2), 2_000)], queue_end=2
    )
    txs = _batch_txs(h)
    l2_time = first.header.l2_time + 1  # later blocks are later: never ahead of L1
    roots = h.honest_roots(txs, 3, l2_time=l2_time)
    if corrupt is not None:
        roots[corrupt] = WRONG_ROOT
    batch = h.append(seq, txs, queue_end=3, l2_time=l2_time, roots=roots)
    later = h.append(seq2, [h.transfer_tx(4, user_address(1), 10, 0)])
    return Scene(h, seq, seq2, challenger, first, batch, later)


@pytest.mark.parametrize("kind", KINDS)
def test_prove_tx_fraud__corrupted_post_root__proven_reverted_and_slashed(h: Harness, kind: str) -> None:
    i = KINDS.index(kind)
    s = _scene(h, corrupt=i)
    rollup_before = h.balance(h.rollup.address)
    challenger_before = h.balance(s.challenger)

    result = h.rollup.prove_tx_fraud(s.challenger, **h.tx_fraud_args(s.batch, i))

    record_gas(f"prove_tx_fraud_{kind}", result.gas_used)
    assert result.gas_used < FRAUD_GAS_LIMIT
    reward = BOND_WEI * CHALLENGER_REWARD_BPS // 10_000
    burned = BOND_WEI - reward
    (fraud,) = h.rollup.fraud_proven_from_receipt(result.receipt)
    assert (fraud.batch_index, fraud.tx_index, fraud.sequencer, fraud.challenger, fraud.reward) == (
        1,
        i,
        _addr(s.seq),
        _addr(s.challenger),
        reward,
    )
    (reverted,) = h.rollup.batches_reverted_from_receipt(result.receipt)
    assert (reverted.from_index, reverted.to_index) == (1, 2)
    (slashed,) = h.rollup.sequencer_slashed_from_receipt(result.receipt)
    assert (slashed.sequencer, slashed.bond, slashed.reward, slashed.burned) == (
        _addr(s.seq),
        BOND_WEI,
        reward,
        burned,
    )

    tip = h.rollup.tip()
    # the tip is batch 0 again, with its clock
    assert (tip.batch_count, tip.post_root, tip.queue_end, tip.l2_time) == (
        1,
        s.batch.header.prev_root,
        s.batch.header.queue_start,
        s.first.header.l2_time,
    )
    assert s.first.header.l2_time < s.batch.header.l2_time
    assert not h.rollup.is_live(s.batch.header) and not h.rollup.is_live(s.later.header)
    assert h.balance(s.challenger) == challenger_before + reward - h.fee(result)
    assert h.balance(h.rollup.address) == rollup_before - reward
    assert h.rollup.total_burned() == burned
    info = h.rollup.sequencer_info(s.seq.address)
    assert (info.bond, info.slashed) == (0, True)
    # The later batch's sequencer keeps its bond.
    assert h.rollup.sequencer_info(s.seq2.address).bond == MIN_BOND_WEI

    # The same proof again finds the batch gone.
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_tx_fraud(h.account(4), **h.tx_fraud_args(s.batch, i))
    assert err.value.reason == "rollup: unknown batch"

    # The slashed sequencer can neither append nor bond again; the chain goes on from batch 0.
    with pytest.raises(TransactionReverted) as err:
        h.rollup.append_batch(
            s.seq,
            [b"\x00"],
            [WRONG_ROOT],
            prev_root=tip.post_root,
            queue_start=2,
            queue_end=2,
            l2_time=h.default_l2_time(),
        )
    assert err.value.reason == "rollup: not bonded"
    with pytest.raises(TransactionReverted) as err:
        h.rollup.register(s.seq, MIN_BOND_WEI)
    assert err.value.reason == "rollup: slashed"
    h.state = s.batch.pre_state
    again = h.append(s.seq2, s.batch.txs, queue_end=3, l2_time=s.first.header.l2_time)
    assert (again.header.index, again.header.l2_time) == (1, s.first.header.l2_time)


@pytest.mark.parametrize("kind", KINDS)
def test_prove_tx_fraud__correct_transaction__no_fraud_nobody_slashed(h: Harness, kind: str) -> None:
    i = KINDS.index(kind)
    s = _scene(h, corrupt=None)
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_tx_fraud(s.challenger, **h.tx_fraud_args(s.batch, i))
    assert err.value.reason == "rollup: no fraud"
    assert h.rollup.sequencer_info(s.seq.address).bond == BOND_WEI
    assert h.rollup.batch_count() == 3
    assert h.rollup.is_live(s.batch.header)


def test_prove_tx_fraud__correct_tx_after_a_wrong_one__no_fraud(h: Harness) -> None:
    s = _scene(h, corrupt=KINDS.index("withdraw"))
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_tx_fraud(s.challenger, **h.tx_fraud_args(s.batch, KINDS.index("deposit")))
    assert err.value.reason == "rollup: no fraud"


def test_prove_tx_fraud__bad_witness__reverts_nothing_changes(h: Harness) -> None:
    s = _scene(h, corrupt=KINDS.index("transfer"))
    args = h.tx_fraud_args(s.batch, KINDS.index("transfer"))
    w0: Witness = args["witnesses"][0]
    args["witnesses"] = [replace(w0, value=w0.value[:-1] + bytes([w0.value[-1] ^ 1])), *args["witnesses"][1:]]
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_tx_fraud(s.challenger, **args)
    assert err.value.reason == "verifier: bad witness"
    args["witnesses"] = args["witnesses"][:1]
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_tx_fraud(s.challenger, **args)
    assert err.value.reason == "verifier: bad witness"
    assert h.rollup.batch_count() == 3


def test_prove_tx_fraud__wrong_inclusion_proofs__reverts(h: Harness) -> None:
    s = _scene(h, corrupt=KINDS.index("transfer"))
    i = KINDS.index("transfer")
    good = h.tx_fraud_args(s.batch, i)
    cases = [
        ({"tx": good["tx"] + b"\x00"}, "rollup: bad tx proof"),
        ({"tx_proof": good["tx_proof"][:-1]}, "rollup: bad tx proof"),
        ({"tx_proof": [*good["tx_proof"], b"\x00" * 32]}, "rollup: bad tx proof"),
        ({"tx_index": i + 1}, "rollup: bad tx proof"),
        ({"post_root": b"\x01" * 32}, "rollup: bad post_root proof"),
        ({"pre_root": b"\x01" * 32}, "rollup: bad pre_root proof"),
        ({"header": replace(good["header"], tx_count=99)}, "rollup: unknown batch"),
    ]
    for change, reason in cases:
        with pytest.raises(TransactionReverted) as err:
            h.rollup.prove_tx_fraud(s.challenger, **{**good, **change})
        assert err.value.reason == reason, change


def test_prove_tx_fraud__first_tx_with_pre_proof__reverts(h: Harness) -> None:
    s = _scene(h, corrupt=0)
    args = h.tx_fraud_args(s.batch, 0)
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_tx_fraud(s.challenger, **{**args, "pre_proof": [b"\x00" * 32]})
    assert err.value.reason == "rollup: bad pre_root proof"


def test_prove_tx_fraud__after_window__batch_final(h: Harness) -> None:
    s = _scene(h, corrupt=KINDS.index("transfer"))
    h.travel_to(s.batch.header.timestamp + CHALLENGE_WINDOW_SECONDS)
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_tx_fraud(s.challenger, **h.tx_fraud_args(s.batch, KINDS.index("transfer")))
    assert err.value.reason == "rollup: batch final"


# ---- queue fraud ----


def _queue_scene(h: Harness, claimed_queue_end: int) -> tuple[Sender, AppendedBatch]:
    """Batch 0 consumes deposit 0; batch 1 (a transfer only) claims `claimed_queue_end`."""
    seq = h.account(1)
    h.bond(seq, BOND_WEI)
    h.deposit(user_address(1), 1_000)
    h.append(seq, [h.deposit_tx(0, user_address(1), 1_000)], queue_end=1)
    h.deposit(user_address(2), 500)
    batch = h.append(seq, [h.transfer_tx(1, user_address(2), 10, 0)], queue_end=claimed_queue_end)
    return seq, batch


def test_prove_queue_fraud__deposit_claimed_not_consumed__proven(h: Harness) -> None:
    seq, batch = _queue_scene(h, claimed_queue_end=2)
    challenger = h.account(3)
    witness = h.post_state(batch).tree.witness(global_key())
    before = h.balance(challenger)

    result = h.rollup.prove_queue_fraud(challenger, batch.header, witness)

    record_gas("prove_queue_fraud", result.gas_used)
    reward = BOND_WEI * CHALLENGER_REWARD_BPS // 10_000
    (fraud,) = h.rollup.fraud_proven_from_receipt(result.receipt)
    assert (fraud.batch_index, fraud.tx_index, fraud.sequencer, fraud.challenger, fraud.reward) == (
        1,
        QUEUE_FRAUD,
        _addr(seq),
        _addr(challenger),
        reward,
    )
    (reverted,) = h.rollup.batches_reverted_from_receipt(result.receipt)
    assert (reverted.from_index, reverted.to_index) == (1, 1)
    assert h.balance(challenger) == before + reward - h.fee(result)
    tip = h.rollup.tip()
    assert (tip.batch_count, tip.post_root, tip.queue_end) == (1, batch.header.prev_root, 1)
    assert tip.l2_time == h.rollup.batch_l2_time(0)
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_queue_fraud(challenger, batch.header, witness)
    assert err.value.reason == "rollup: unknown batch"


def test_prove_queue_fraud__queue_consistent__no_fraud(h: Harness) -> None:
    _, batch = _queue_scene(h, claimed_queue_end=1)
    witness = h.post_state(batch).tree.witness(global_key())
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_queue_fraud(h.account(3), batch.header, witness)
    assert err.value.reason == "rollup: no fraud"


def test_prove_queue_fraud__witness_of_another_key__bad_witness(h: Harness) -> None:
    _, batch = _queue_scene(h, claimed_queue_end=2)
    witness = h.post_state(batch).tree.witness(account_key(user_address(1)))
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_queue_fraud(h.account(3), batch.header, witness)
    assert err.value.reason == "rollup: bad witness"
    stale = batch.pre_state.tree.witness(global_key())  # against the previous root
    with pytest.raises(TransactionReverted) as err:
        h.rollup.prove_queue_fraud(h.account(3), batch.header, stale)
    assert err.value.reason == "rollup: bad witness"


# ---- every transaction type of the exchange ----


@pytest.fixture(scope="module")
def scene() -> ExchangeScene:
    """One exchange built by real batches; each test appends the target batch on its tip (a proven
    fraud reverts it, so the tip is the scene's again)."""
    return build_exchange_scene(Harness.create())


def _gas_name(name: str) -> str:
    """The gas report's name of a target transaction's proof (the v1 scene has the plain
    deposit, transfer and withdraw: here their accounts hold positions)."""
    kind, tx_type = name.split(":")
    if tx_type in ("deposit", "transfer", "withdraw"):
        tx_type += "_with_positions"
    return f"prove_tx_fraud_{tx_type}" + ("_invalid" if kind == "bad" else "")


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_prove_tx_fraud__exchange_tx_with_corrupted_root__proven_reverted_and_slashed(
    scene: ExchangeScene, name: str
) -> None:
    h = scene.h
    tip = h.rollup.tip()
    sequencer = scene.new_sequencer(name.encode())
    batch = scene.append_target(sequencer, corrupt=name)
    i = scene.names.index(name)

    result = h.rollup.prove_tx_fraud(h.account(3), **h.tx_fraud_args(batch, i))

    record_gas(_gas_name(name), result.gas_used)
    assert result.gas_used < FRAUD_GAS_LIMIT
    (fraud,) = h.rollup.fraud_proven_from_receipt(result.receipt)
    assert (fraud.batch_index, fraud.tx_index, fraud.sequencer) == (batch.header.index, i, _addr(sequencer))
    assert h.rollup.sequencer_info(sequencer.address).slashed
    assert not h.rollup.is_live(batch.header)
    assert h.rollup.tip() == tip


def test_prove_tx_fraud__exchange_batch_correct__no_fraud_for_any_tx(scene: ExchangeScene) -> None:
    h = scene.h
    tip = h.rollup.tip()
    sequencer = scene.new_sequencer(b"honest target")
    # The target batch with correct roots, then one more transaction (undecodable) whose root is
    # wrong: proving it at the end reverts the batch, so the scene's tip is left as it was.
    scene.target["bad:undecodable"] = b"\xff"
    try:
        batch = scene.append_target(sequencer, corrupt="bad:undecodable")
    finally:
        del scene.target["bad:undecodable"]
    for i, name in enumerate(TARGET_NAMES):
        with pytest.raises(TransactionReverted) as err:
            h.rollup.prove_tx_fraud(h.account(3), **h.tx_fraud_args(batch, i))
        assert err.value.reason == "rollup: no fraud", name
    assert h.rollup.sequencer_info(sequencer.address).bond == MIN_BOND_WEI
    h.rollup.prove_tx_fraud(h.account(3), **h.tx_fraud_args(batch, len(TARGET_NAMES)))
    assert h.rollup.tip() == tip
