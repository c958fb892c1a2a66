"""Bridge: the deposit queue and withdrawal claims against final batches."""

from __future__ import annotations

from dataclasses import replace

import pytest
from contracts_harness import CHALLENGE_WINDOW_SECONDS, AppendedBatch, Harness, user_address

from contracts.bindings import Sender, TransactionReverted
from sequencer.stf.codec import deposit_hash
from sequencer.stf.constants import MAX_TOTAL_DEPOSITS
from sequencer.stf.keys import account_key, withdrawal_key
from sequencer.stf.smt import Witness

L1_RECIPIENT = bytes.fromhex("00000000000000000000000000000000000b0b00")


def _addr(sender: Sender) -> bytes:
    return bytes.fromhex(sender.address[2:])


# ---- deposits ----


def test_deposit__several__events_and_hashes_match_stf(h: Harness) -> None:
    depositor = h.account(5)
    amounts = [(user_address(1), 100), (user_address(2), 1), (user_address(1), 10**12)]
    results = [h.deposit(to, amount) for to, amount in amounts]
    events = h.bridge.deposited_events(results[0].block_number)
    assert len(events) == 3
    for i, ((to, amount), event, result) in enumerate(zip(amounts, events, results, strict=True)):
        expected = deposit_hash(i, to, amount)
        block = h.w3.eth.get_block(result.block_number)
        assert (event.index, event.sender, event.to, event.amount, event.deposit_hash) == (
            i,
            _addr(depositor),
            to,
            amount,
            expected,
        )
        assert event.timestamp == block["timestamp"] == h.bridge.deposit_timestamp(i)
        assert h.bridge.deposit_hash(i) == expected
    assert h.bridge.deposit_count() == 3
    assert h.bridge.deposit_hash(3) == b"\x00" * 32
    assert h.bridge.total_deposited() == sum(a for _, a in amounts)
    assert h.token.balance_of(h.bridge.address) == sum(a for _, a in amounts)


def test_deposit__zero_amount__reverts(h: Harness) -> None:
    with pytest.raises(TransactionReverted) as err:
        h.bridge.deposit(h.account(5), user_address(1), 0)
    assert err.value.reason == "bridge: zero amount"


def test_deposit__zero_recipient__reverts(h: Harness) -> None:
    who = h.account(5)
    h.token.mint(h.deployer, who.address, 10)
    h.token.approve(who, h.bridge.address, 10)
    with pytest.raises(TransactionReverted) as err:
        h.bridge.deposit(who, bytes(20), 10)
    assert err.value.reason == "bridge: zero recipient"
    assert h.bridge.deposit_count() == 0


def test_deposit__without_allowance__reverts(h: Harness) -> None:
    who = h.account(5)
    h.token.mint(h.deployer, who.address, 10)
    with pytest.raises(TransactionReverted) as err:
        h.bridge.deposit(who, user_address(1), 10)
    assert err.value.reason == "token: insufficient allowance"
    assert h.bridge.deposit_count() == 0


def test_deposit__running_total_past_cap__reverts(h: Harness) -> None:
    h.deposit(user_address(1), MAX_TOTAL_DEPOSITS - 5)
    h.deposit(user_address(1), 5)  # exactly the cap
    who = h.account(5)
    h.token.mint(h.deployer, who.address, 1)
    h.token.approve(who, h.bridge.address, 1)
    with pytest.raises(TransactionReverted) as err:
        h.bridge.deposit(who, user_address(1), 1)
    assert err.value.reason == "bridge: deposit cap"
    assert h.bridge.total_deposited() == MAX_TOTAL_DEPOSITS


# ---- withdrawals ----


def _withdrawn(h: Harness, amount: int = 400) -> tuple[Sender, AppendedBatch, Witness]:
    """User 1 deposits 1000 and withdraws `amount` to L1_RECIPIENT (nonce 0)."""
    seq = h.account(1)
    h.bond(seq)
    h.deposit(user_address(1), 1_000)
    batch = h.append(
        seq,
        [h.deposit_tx(0, user_address(1), 1_000), h.withdraw_tx(1, L1_RECIPIENT, amount, 0)],
        queue_end=1,
    )
    witness = h.post_state(batch).tree.witness(withdrawal_key(user_address(1), 0))
    return seq, batch, witness


def test_claim_withdrawal__batch_not_final__reverts(h: Harness) -> None:
    _, batch, witness = _withdrawn(h)
    with pytest.raises(TransactionReverted) as err:
        h.bridge.claim_withdrawal(h.account(6), batch.header, user_address(1), 0, L1_RECIPIENT, 400, witness)
    assert err.value.reason == "bridge: batch not final"


def test_claim_withdrawal__after_window__paid_once(h: Harness) -> None:
    _, batch, witness = _withdrawn(h)
    h.travel_to(batch.header.timestamp + CHALLENGE_WINDOW_SECONDS)
    claimer = h.account(6)  # anyone may claim; the money goes to the signed recipient
    result = h.bridge.claim_withdrawal(claimer, batch.header, user_address(1), 0, L1_RECIPIENT, 400, witness)
    assert h.token.balance_of(L1_RECIPIENT) == 400
    assert h.token.balance_of(h.bridge.address) == 600
    key = withdrawal_key(user_address(1), 0)
    (event,) = h.bridge.withdrawal_claimed_from_receipt(result.receipt)
    assert (event.key, event.account, event.nonce, event.recipient, event.amount, event.batch_index) == (
        key,
        user_address(1),
        0,
        L1_RECIPIENT,
        400,
        0,
    )
    assert h.bridge.is_claimed(key)

    with pytest.raises(TransactionReverted) as err:
        h.bridge.claim_withdrawal(claimer, batch.header, user_address(1), 0, L1_RECIPIENT, 400, witness)
    assert err.value.reason == "bridge: already claimed"

    # Still refused against a later final batch (the leaf stays in every later root).
    later = h.append(h.account(1), [h.transfer_tx(1, user_address(2), 1, 1)])
    h.travel_to(later.header.timestamp + CHALLENGE_WINDOW_SECONDS)
    later_witness = h.post_state(later).tree.witness(key)
    with pytest.raises(TransactionReverted) as err:
        h.bridge.claim_withdrawal(claimer, later.header, user_address(1), 0, L1_RECIPIENT, 400, later_witness)
    assert err.value.reason == "bridge: already claimed"
    assert h.token.balance_of(L1_RECIPIENT) == 400


def test_claim_withdrawal__wrong_witness_or_values__reverts(h: Harness) -> None:
    _, batch, witness = _withdrawn(h)
    h.travel_to(batch.header.timestamp + CHALLENGE_WINDOW_SECONDS)
    post = h.post_state(batch)
    other = post.tree.witness(account_key(user_address(1)))
    absent = post.tree.witness(withdrawal_key(user_address(1), 1))
    claimer = h.account(6)
    cases = [
        (dict(amount=401), witness),
        (dict(l1_recipient=bytes(19) + b"\x01"), witness),
        (dict(nonce=1), witness),
        (dict(nonce=1), absent),
        ({}, other),
        ({}, replace(witness, siblings=witness.siblings[:-1])),
        ({}, replace(witness, value=witness.value[:-1] + b"\x00")),
        ({}, replace(witness, terminal=1, value=b"")),
    ]
    for change, w in cases:
        args = {"account": user_address(1), "nonce": 0, "l1_recipient": L1_RECIPIENT, "amount": 400, **change}
        with pytest.raises(TransactionReverted) as err:
            h.bridge.claim_withdrawal(claimer, batch.header, witness=w, **args)  # type: ignore[arg-type]
        assert err.value.reason == "bridge: bad witness", change
    assert h.token.balance_of(L1_RECIPIENT) == 0


def test_claim_withdrawal__forged_header__not_final(h: Harness) -> None:
    _, batch, witness = _withdrawn(h)
    h.travel_to(batch.header.timestamp + CHALLENGE_WINDOW_SECONDS)
    forged = replace(batch.header, post_root=b"\x01" * 32)
    with pytest.raises(TransactionReverted) as err:
        h.bridge.claim_withdrawal(h.account(6), forged, user_address(1), 0, L1_RECIPIENT, 400, witness)
    assert err.value.reason == "bridge: batch not final"
