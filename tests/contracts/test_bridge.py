"""Bridge: the L1 queue (deposits, governance messages, forced transactions), the governor, and
withdrawal claims against final batches."""

from __future__ import annotations

from dataclasses import replace

import pytest
from contracts_harness import CHALLENGE_WINDOW_SECONDS, AppendedBatch, Harness, user_address

from contracts.bindings import Sender, TransactionReverted
from sequencer.stf.codec import deposit_hash, encode_tx, forced_hash, message_hash
from sequencer.stf.constants import MAX_FORCED_TX_BYTES, MAX_MESSAGE_PAYLOAD_BYTES, MAX_TOTAL_DEPOSITS
from sequencer.stf.eip712 import sign_withdraw
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
        assert (event.index, event.sender, event.to, event.amount, event.queue_hash) == (
            i,
            _addr(depositor),
            to,
            amount,
            expected,
        )
        assert event.timestamp == block["timestamp"] == h.bridge.queue_timestamp(i)
        assert h.bridge.queue_hash(i) == expected
    assert h.bridge.queue_length() == 3
    assert h.bridge.queue_hash(3) == b"\x00" * 32
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
    assert h.bridge.queue_length() == 0


def test_deposit__without_allowance__reverts(h: Harness) -> None:
    who = h.account(5)
    h.token.mint(h.deployer, who.address, 10)
    with pytest.raises(TransactionReverted) as err:
        h.bridge.deposit(who, user_address(1), 10)
    assert err.value.reason == "token: insufficient allowance"
    assert h.bridge.queue_length() == 0


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


# ---- governance messages and the governor ----


SET_COMMITTEE = b"\x02\x01\x01" + b"\x11" * 20
"""A SetCommittee payload (threshold 1, one member); the Bridge does not read it."""


def test_send_message__governor__queued_with_hash_and_event(h: Harness) -> None:
    result = h.bridge.send_message(h.deployer, SET_COMMITTEE)
    (event,) = h.bridge.message_queued_from_receipt(result.receipt)
    block = h.w3.eth.get_block(result.block_number)
    assert (event.index, event.payload, event.queue_hash, event.timestamp) == (
        0,
        SET_COMMITTEE,
        message_hash(0, SET_COMMITTEE),
        block["timestamp"],
    )
    assert h.bridge.queue_length() == 1
    assert h.bridge.queue_hash(0) == message_hash(0, SET_COMMITTEE)
    assert h.bridge.queue_timestamp(0) == block["timestamp"]
    assert h.bridge.message_queued_events(result.block_number) == [event]


def test_send_message__deposits_and_messages__one_queue_in_order(h: Harness) -> None:
    h.deposit(user_address(1), 10)
    h.bridge.send_message(h.deployer, b"\x01")
    h.deposit(user_address(2), 20)
    longest = b"\x02" * MAX_MESSAGE_PAYLOAD_BYTES
    h.bridge.send_message(h.deployer, longest)
    expected = [
        deposit_hash(0, user_address(1), 10),
        message_hash(1, b"\x01"),
        deposit_hash(2, user_address(2), 20),
        message_hash(3, longest),
    ]
    assert [h.bridge.queue_hash(i) for i in range(4)] == expected
    assert h.bridge.queue_length() == 4
    assert [e.index for e in h.bridge.deposited_events(0)] == [0, 2]
    assert [(e.index, e.payload) for e in h.bridge.message_queued_events(0)] == [(1, b"\x01"), (3, longest)]
    assert h.bridge.total_deposited() == 30


def test_send_message__not_governor__reverts(h: Harness) -> None:
    with pytest.raises(TransactionReverted) as err:
        h.bridge.send_message(h.account(5), SET_COMMITTEE)
    assert err.value.reason == "bridge: not governor"
    assert h.bridge.queue_length() == 0


def test_send_message__empty_payload__reverts(h: Harness) -> None:
    with pytest.raises(TransactionReverted) as err:
        h.bridge.send_message(h.deployer, b"")
    assert err.value.reason == "bridge: empty payload"


def test_send_message__payload_past_1015_bytes__refused(h: Harness) -> None:
    with pytest.raises(TransactionReverted):  # the ABI decoder refuses Bytes[1015] overflow
        h.bridge.send_message(h.deployer, b"\x01" * (MAX_MESSAGE_PAYLOAD_BYTES + 1))
    assert h.bridge.queue_length() == 0


# ---- forced transactions ----


def test_force_tx__anyone__queued_with_hash_and_event_after_other_entries(h: Harness) -> None:
    signed = encode_tx(sign_withdraw(b"\x11" * 32, L1_RECIPIENT, 10, 0, h.config))
    h.deposit(user_address(1), 10)
    h.bridge.send_message(h.deployer, SET_COMMITTEE)
    caller = h.account(6)  # not the signer, not the governor: forcing is open to anyone
    result = h.bridge.force_tx(caller, signed)
    (event,) = h.bridge.forced_tx_queued_from_receipt(result.receipt)
    block = h.w3.eth.get_block(result.block_number)
    assert (event.index, event.sender, event.signed_tx, event.queue_hash, event.timestamp) == (
        2,
        _addr(caller),
        signed,
        forced_hash(2, signed),
        block["timestamp"],
    )
    assert h.bridge.queue_length() == 3
    assert h.bridge.queue_hash(2) == forced_hash(2, signed)
    assert h.bridge.queue_timestamp(2) == block["timestamp"]
    assert h.bridge.forced_tx_queued_events(result.block_number) == [event]
    # domain separation: the same bytes as a message hash differently
    assert forced_hash(2, signed) != message_hash(2, signed)


def test_force_tx__longest__queued(h: Harness) -> None:
    longest = b"\x03" * MAX_FORCED_TX_BYTES  # the Bridge does not read it: L2 only consumes it
    h.bridge.force_tx(h.account(6), longest)
    assert h.bridge.queue_hash(0) == forced_hash(0, longest)


def test_force_tx__empty__reverts(h: Harness) -> None:
    with pytest.raises(TransactionReverted) as err:
        h.bridge.force_tx(h.account(6), b"")
    assert err.value.reason == "bridge: empty tx"
    assert h.bridge.queue_length() == 0


def test_force_tx__past_1015_bytes__reverts(h: Harness) -> None:
    with pytest.raises(TransactionReverted) as err:
        h.bridge.force_tx(h.account(6), b"\x03" * (MAX_FORCED_TX_BYTES + 1))
    assert err.value.reason == "bridge: tx too long"
    assert h.bridge.queue_length() == 0


def test_set_governor__handed_over__event_old_refused_new_accepted(h: Harness) -> None:
    new = h.account(7)
    result = h.bridge.set_governor(h.deployer, new.address)
    (event,) = h.bridge.governor_changed_from_receipt(result.receipt)
    assert (event.previous, event.governor) == (_addr(h.deployer), _addr(new))
    assert h.bridge.governor() == new.address
    with pytest.raises(TransactionReverted) as err:
        h.bridge.send_message(h.deployer, SET_COMMITTEE)
    assert err.value.reason == "bridge: not governor"
    with pytest.raises(TransactionReverted) as err:
        h.bridge.set_governor(h.deployer, h.deployer.address)
    assert err.value.reason == "bridge: not governor"
    h.bridge.send_message(new, SET_COMMITTEE)
    assert h.bridge.queue_length() == 1


def test_set_governor__zero_address__reverts(h: Harness) -> None:
    with pytest.raises(TransactionReverted) as err:
        h.bridge.set_governor(h.deployer, bytes(20))
    assert err.value.reason == "bridge: zero address"
    assert h.bridge.governor() == h.deployer.address


def test_governor__deployment__deployer_with_event(h: Harness) -> None:
    (event,) = h.bridge.governor_changed_events(0)
    assert (event.previous, event.governor) == (bytes(20), _addr(h.deployer))


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
        ({}, replace(witness, depth=witness.depth + 1)),
        ({}, replace(witness, present=witness.present ^ 1, siblings=witness.siblings[1:])),
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
