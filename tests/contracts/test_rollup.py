"""Rollup mechanics: bonds, append checks, the batch clock, on-chain batch roots, finality, bond
withdrawal."""

from __future__ import annotations

from dataclasses import replace

import pytest
import vyper
from contracts_harness import (
    CHALLENGE_WINDOW_SECONDS,
    FORCE_INCLUSION_SECONDS,
    MAX_L2_TIME_LAG_SECONDS,
    MIN_BOND_WEI,
    Harness,
    record_gas,
    user_address,
)

from contracts.bindings import Sender, TransactionReverted, send_transaction
from contracts.calldata import CalldataError, decode_append_batch
from devnet.deploy import DeployParams
from sequencer.stf.batch import batch_roots
from sequencer.stf.codec import encode_tx
from sequencer.stf.constants import EMPTY, MAX_BATCH_TXS, MAX_TX_BYTES
from sequencer.stf.keys import global_key
from sequencer.stf.types import BatchHeader, ForcedTx

ROOT_A = b"\xaa" * 32


def _raw_append(h: Harness, seq: Sender, txs: list[bytes], roots: list[bytes], **kw: object) -> None:
    tip = h.rollup.tip()
    args = {
        "prev_root": tip.post_root,
        "queue_start": tip.queue_end,
        "queue_end": tip.queue_end,
        "l2_time": h.default_l2_time(),
        **kw,
    }
    h.rollup.append_batch(seq, txs, roots, **args)  # type: ignore[arg-type]


def _pin_next_block(h: Harness, seconds_ahead: int = 50) -> int:
    """Make the next block's timestamp exactly `now + seconds_ahead` (ahead of the wall clock, so
    it does not move while the transaction is simulated and sent); returns it."""
    timestamp = h.now() + seconds_ahead
    h.w3.provider.ethereum_tester.time_travel(timestamp)  # type: ignore[attr-defined]
    return timestamp


# ---- initialize ----


def test_initialize__second_call__reverts(h: Harness) -> None:
    fn = h.rollup.contract.functions.initialize(h.deployment.verifier, h.deployment.bridge)
    with pytest.raises(TransactionReverted) as err:
        h.rollup._send(h.deployer, fn)
    assert err.value.reason == "rollup: not initializer"


def test_deploy__wiring__addresses_and_params(h: Harness) -> None:
    d = h.deployment
    assert h.rollup.verifier_address() == d.verifier
    assert h.rollup.bridge_address() == d.bridge
    assert h.verifier.rules_addresses() == (d.transfer_rules, d.oracle_rules, d.trade_rules, d.risk_rules)
    assert len({d.transfer_rules, d.oracle_rules, d.trade_rules, d.risk_rules}) == 4
    for rules in (h.transfer_rules, h.oracle_rules, h.trade_rules, h.risk_rules):
        assert rules.rollup_address() == d.rollup
        assert rules.domain_separator() == h.config.domain_separator
    assert h.transfer_rules.bridge_address() == d.bridge
    assert h.bridge.token_address() == d.token
    assert h.bridge.governor() == h.deployer.address
    p = h.rollup.params()
    assert (
        p.challenge_window_seconds,
        p.min_bond_wei,
        p.challenger_reward_bps,
        p.force_inclusion_seconds,
        p.max_l2_time_lag_seconds,
    ) == (
        CHALLENGE_WINDOW_SECONDS,
        MIN_BOND_WEI,
        5_000,
        FORCE_INCLUSION_SECONDS,
        MAX_L2_TIME_LAG_SECONDS,
    )
    assert d.params["max_l2_time_lag_seconds"] == MAX_L2_TIME_LAG_SECONDS
    # the escape delay defaults to the challenge window plus the forced-inclusion age (above the window)
    assert (
        p.escape_delay_seconds
        == d.params["escape_delay_seconds"]
        == CHALLENGE_WINDOW_SECONDS + FORCE_INCLUSION_SECONDS
    )
    assert h.bridge.exit_window_seconds() == d.params["exit_window_seconds"] > 0
    assert h.rollup.frozen_at() == 0
    assert h.token.decimals() == 6


def test_deploy__deployment_file__round_trips_every_address(h: Harness) -> None:
    from contracts.deployment import Deployment

    assert Deployment.from_json(h.deployment.to_json()) == h.deployment


# ---- register ----


def test_register__bond_below_min__reverts(h: Harness) -> None:
    with pytest.raises(TransactionReverted) as err:
        h.rollup.register(h.account(1), MIN_BOND_WEI - 1)
    assert err.value.reason == "rollup: bond too small"
    assert not h.rollup.is_bonded(h.account(1).address)


def test_register__min_bond_then_top_up__bond_accumulates(h: Harness) -> None:
    seq = h.account(1)
    first = h.rollup.register(seq, MIN_BOND_WEI)
    second = h.rollup.register(seq, 7)
    events = h.rollup.sequencer_bonded_events(first.block_number, second.block_number)
    assert [(e.sequencer, e.amount, e.bond) for e in events] == [
        (bytes.fromhex(seq.address[2:]), MIN_BOND_WEI, MIN_BOND_WEI),
        (bytes.fromhex(seq.address[2:]), 7, MIN_BOND_WEI + 7),
    ]
    info = h.rollup.sequencer_info(seq.address)
    assert (info.bond, info.slashed) == (MIN_BOND_WEI + 7, False)
    assert h.rollup.is_bonded(seq.address)


def test_register__local_key_sender__signed_locally(h: Harness) -> None:
    seq = Sender.from_key(b"\x42" * 32)
    h.w3.eth.send_transaction({"from": h.account(9).address, "to": seq.address, "value": 3 * MIN_BOND_WEI})
    h.rollup.register(seq, MIN_BOND_WEI)
    batch = h.append(seq, [b"\x00"])
    assert batch.header.sequencer == bytes.fromhex(seq.address[2:])


# ---- append checks ----


def test_append_batch__not_bonded__reverts(h: Harness) -> None:
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, h.account(1), [b"\x00"], [ROOT_A])
    assert err.value.reason == "rollup: not bonded"


def test_append_batch__wrong_prev_root__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A], prev_root=ROOT_A)
    assert err.value.reason == "rollup: wrong prev_root"


def test_append_batch__wrong_queue_start__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    h.deposit(user_address(1), 10)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A], queue_start=1, queue_end=1)
    assert err.value.reason == "rollup: wrong queue_start"


def test_append_batch__queue_end_past_deposits__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    h.deposit(user_address(1), 10)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A], queue_end=2)
    assert err.value.reason == "rollup: queue_end past deposits"


def test_append_batch__overdue_deposit_left_behind__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    dep = h.deposit(user_address(1), 10)
    (event,) = h.bridge.deposited_from_receipt(dep.receipt)
    h.travel_to(event.timestamp + FORCE_INCLUSION_SECONDS)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A], queue_end=0)
    assert err.value.reason == "rollup: overdue queue entry"
    # Consuming it is allowed.
    batch = h.append(seq, [h.deposit_tx(0, user_address(1), 10)], queue_end=1)
    assert batch.header.queue_end == 1


def test_append_batch__backlog_older_than_the_deadline__all_deposit_batches_drain_it(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    deps = [h.deposit(user_address(1), 10 + i) for i in range(3)]
    (last,) = h.bridge.deposited_from_receipt(deps[-1].receipt)
    h.travel_to(last.timestamp + FORCE_INCLUSION_SECONDS)  # all three are overdue
    # a batch that is all deposits may leave overdue ones for the next batch (no deadlock) ...
    first = h.append(seq, [h.deposit_tx(i, user_address(1), 10 + i) for i in range(2)], queue_end=2)
    assert (first.header.queue_start, first.header.queue_end) == (0, 2)
    # ... a batch that also carries other transactions may not
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A], queue_end=2)
    assert err.value.reason == "rollup: overdue queue entry"
    assert h.append(seq, [h.deposit_tx(2, user_address(1), 12)], queue_end=3).header.queue_end == 3


def test_append_batch__called_by_a_contract__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    proxy_source = """
interface IRollup:
    def append_batch(
        p: bytes32,
        s: uint256,
        e: uint256,
        c: uint256,
        t: DynArray[Bytes[1024], 256],
        r: DynArray[bytes32, 256],
    ): nonpayable

@external
def relay(rollup: address, p: bytes32, c: uint256, t: DynArray[Bytes[1024], 256], r: DynArray[bytes32, 256]):
    extcall IRollup(rollup).append_batch(p, 0, 0, c, t, r)
"""
    out = vyper.compile_code(proxy_source, output_formats=["abi", "bytecode"])
    factory = h.w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])
    receipt = h.w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": seq.address}))
    proxy = h.w3.eth.contract(address=receipt["contractAddress"], abi=out["abi"])
    call = proxy.functions.relay(
        h.rollup.address, h.rollup.tip().post_root, h.default_l2_time(), [b"\x00"], [ROOT_A]
    )
    with pytest.raises(Exception, match="sequencer must be a plain EOA"):
        call.call({"from": seq.address})
    tx = call.transact({"from": seq.address, "gas": 3_000_000})
    assert h.w3.eth.wait_for_transaction_receipt(tx)["status"] == 0
    assert h.rollup.batch_count() == 0


def test_append_batch__dirty_abi_padding__reverts_and_nothing_recorded(h: Harness) -> None:
    """Non-zero padding after a `bytes` item has two readings (lenient and strict decoders): the
    Rollup refuses it, so no node ever meets it."""
    seq = h.account(1)
    h.bond(seq)
    h.deposit(user_address(0), 1000)
    txs = [h.deposit_tx(0, user_address(0), 1000)]  # 61 bytes: 3 bytes of padding follow
    l2_time = h.default_l2_time()
    roots = h.honest_roots(txs, 1, l2_time=l2_time)
    fn = h.rollup.contract.functions.append_batch(h.rollup.tip().post_root, 0, 1, l2_time, txs, roots)
    data = bytearray(bytes.fromhex(fn._encode_transaction_data()[2:]))
    data[bytes(data).find(txs[0]) + len(txs[0])] = 0xFF
    with pytest.raises(TransactionReverted) as err:
        send_transaction(h.w3, seq, {"to": h.rollup.address, "data": "0x" + bytes(data).hex()}, label="dirty")
    assert err.value.reason == "rollup: non-canonical calldata"
    assert h.rollup.batch_count() == 0
    with pytest.raises(CalldataError, match="non-zero padding"):
        decode_append_batch(bytes(data))


def test_decode_append_batch__web3_encoding__every_argument_read_back(h: Harness) -> None:
    txs = [b"\x01" * 61, b"", b"\x02" * MAX_TX_BYTES]
    roots = [b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32]
    fn = h.rollup.contract.functions.append_batch(ROOT_A, 3, 7, 1_700_000_123, txs, roots)
    call = decode_append_batch(bytes.fromhex(fn._encode_transaction_data()[2:]))
    assert (call.prev_root, call.queue_start, call.queue_end, call.l2_time) == (ROOT_A, 3, 7, 1_700_000_123)
    assert (call.txs, call.roots) == (tuple(txs), tuple(roots))


def test_append_batch__young_deposit_left_behind__accepted(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    h.deposit(user_address(1), 10)
    batch = h.append(seq, [b"\x00"], queue_end=0)
    assert (batch.header.queue_start, batch.header.queue_end) == (0, 0)


def test_append_batch__empty_batch__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [], [])
    assert err.value.reason == "rollup: empty batch"


def test_append_batch__roots_count_differs__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00", b"\x01"], [ROOT_A])
    assert err.value.reason == "rollup: roots length"


def test_append_batch__too_many_txs__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    n = MAX_BATCH_TXS + 1
    with pytest.raises(TransactionReverted):  # the ABI decoder refuses the array (no reason)
        _raw_append(h, seq, [b"\x00"] * n, [ROOT_A] * n)
    assert h.rollup.batch_count() == 0


def test_append_batch__tx_too_long__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    with pytest.raises(TransactionReverted):  # the ABI decoder refuses Bytes[1024] overflow
        _raw_append(h, seq, [b"\x00" * (MAX_TX_BYTES + 1)], [ROOT_A])
    assert h.rollup.batch_count() == 0


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 31, 100])
def test_append_batch__count_txs__roots_equal_stf_batch_roots(h: Harness, count: int) -> None:
    seq = h.account(1)
    h.bond(seq)
    txs = [bytes([i % 256]) * (1 + i % 40) for i in range(count)]
    roots = [bytes([(7 * i + 1) % 256]) * 32 for i in range(count)]
    _raw_append(h, seq, txs, roots)
    (event,) = h.rollup.batch_appended_events(0)
    tx_root, roots_root = batch_roots(txs, roots)
    assert (event.header.tx_root, event.header.roots_root) == (tx_root, roots_root)
    assert event.header.post_root == roots[-1]
    assert event.header.tx_count == count
    assert (event.txs, event.roots) == (tuple(txs), tuple(roots))


def test_append_batch__valid__event_tip_and_hash(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    h.deposit(user_address(1), 500)
    txs = [h.deposit_tx(0, user_address(1), 500), h.transfer_tx(1, user_address(2), 200, 0)]
    l2_time = h.latest_timestamp() - 5
    batch = h.append(seq, txs, queue_end=1, l2_time=l2_time)
    header = batch.header
    block = h.w3.eth.get_block(batch.result.block_number)
    roots = h.honest_roots(txs, 1, batch.pre_state, l2_time)
    tx_root, roots_root = batch_roots(txs, roots)
    assert header == BatchHeader(
        index=0,
        prev_root=EMPTY,
        post_root=roots[-1],
        tx_root=tx_root,
        roots_root=roots_root,
        tx_count=2,
        queue_start=0,
        queue_end=1,
        l2_time=l2_time,
        sequencer=bytes.fromhex(seq.address[2:]),
        timestamp=int(block["timestamp"]),
    )
    assert h.rollup.batch_hash(0) == header.hash()
    assert h.rollup.hash_header(header) == header.hash()
    tip = h.rollup.tip()
    assert (tip.batch_count, tip.post_root, tip.queue_end, tip.l2_time) == (1, roots[-1], 1, l2_time)
    assert h.rollup.batch_l2_time(0) == l2_time
    assert h.rollup.sequencer_info(seq.address).last_batch_timestamp == header.timestamp
    assert h.state.tree.root == roots[-1]
    assert h.state.tree.get(global_key()) is not None

    # The next batch must build on it.
    second = h.append(seq, [h.transfer_tx(2, user_address(1), 50, 0)])
    assert (second.header.index, second.header.prev_root, second.header.queue_start) == (1, roots[-1], 1)


# ---- the batch clock (l2_time) ----


def test_tip__genesis__l2_time_zero(h: Harness) -> None:
    tip = h.rollup.tip()
    assert (tip.batch_count, tip.post_root, tip.queue_end, tip.l2_time) == (0, EMPTY, 0, 0)


def test_append_batch__l2_time_equal_to_block_timestamp__accepted(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    block_time = _pin_next_block(h)
    batch = h.append(seq, [b"\x00"], l2_time=block_time)
    assert batch.header.l2_time == batch.header.timestamp == block_time
    (event,) = h.rollup.batch_appended_events(batch.result.block_number)
    assert event.header == batch.header
    assert h.rollup.tip().l2_time == block_time


def test_append_batch__l2_time_ahead_of_block__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    block_time = _pin_next_block(h)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A], l2_time=block_time + 1)
    assert err.value.reason == "rollup: l2_time ahead of L1"
    assert h.rollup.batch_count() == 0


def test_append_batch__l2_time_at_the_lag_limit__accepted(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    block_time = _pin_next_block(h, MAX_L2_TIME_LAG_SECONDS + 50)
    batch = h.append(seq, [b"\x00"], l2_time=block_time - MAX_L2_TIME_LAG_SECONDS)
    assert batch.header.timestamp - batch.header.l2_time == MAX_L2_TIME_LAG_SECONDS


def test_append_batch__l2_time_lagging_past_the_limit__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    block_time = _pin_next_block(h, MAX_L2_TIME_LAG_SECONDS + 50)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A], l2_time=block_time - MAX_L2_TIME_LAG_SECONDS - 1)
    assert err.value.reason == "rollup: l2_time behind L1"
    assert h.rollup.batch_count() == 0


def test_append_batch__l2_time_before_tip__reverts_equal_accepted(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    first = h.append(seq, [b"\x00"], l2_time=h.latest_timestamp())
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A], l2_time=first.header.l2_time - 1)
    assert err.value.reason == "rollup: l2_time before tip"
    second = h.append(seq, [b"\x01"], l2_time=first.header.l2_time)  # the clock may stand still
    assert second.header.l2_time == first.header.l2_time
    assert [h.rollup.batch_l2_time(i) for i in (0, 1)] == [first.header.l2_time] * 2


def test_append_batch__overdue_message_left_behind__reverts(h: Harness) -> None:
    """Forced inclusion covers the whole queue: a governance message is an entry like a deposit."""
    seq = h.account(1)
    h.bond(seq)
    sent = h.bridge.send_message(h.deployer, b"\x02\x01\x01" + b"\x11" * 20)
    (message,) = h.bridge.message_queued_from_receipt(sent.receipt)
    h.travel_to(message.timestamp + FORCE_INCLUSION_SECONDS)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A], queue_end=0)
    assert err.value.reason == "rollup: overdue queue entry"


def test_append_batch__overdue_forced_tx_left_behind__reverts_until_consumed(h: Harness) -> None:
    """A user's forced transaction is an entry like any other: no batch may leave it overdue."""
    seq = h.account(1)
    h.bond(seq)
    signed = h.withdraw_tx(1, user_address(9), 1, 0)  # user 1 holds nothing: it only consumes
    forced = h.bridge.force_tx(h.account(6), signed)
    (entry,) = h.bridge.forced_tx_queued_from_receipt(forced.receipt)
    h.travel_to(entry.timestamp + FORCE_INCLUSION_SECONDS)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A], queue_end=0)
    assert err.value.reason == "rollup: overdue queue entry"
    batch = h.append(seq, [encode_tx(ForcedTx(0, signed))], queue_end=1)
    assert (batch.header.queue_end, h.rollup.tip().queue_end) == (1, 1)


def test_append_batch__256_transfers__gas_per_tx(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    total = 256 * 1000
    h.deposit(user_address(1), total)
    first = h.append(seq, [h.deposit_tx(0, user_address(1), total)], queue_end=1)
    assert first.header.tx_count == 1
    txs = [h.transfer_tx(1, user_address(2 + i % 5), 1000, i) for i in range(256)]
    batch = h.append(seq, txs)
    gas = batch.result.gas_used
    record_gas("append_batch_256_transfers_total", gas)
    record_gas("append_batch_256_transfers_per_tx", gas // 256)
    assert batch.header.tx_count == 256
    assert gas < 30_000_000


# ---- finality and bonds ----


def test_is_final__window_passes__becomes_final(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    batch = h.append(seq, [b"\x00"])
    header = batch.header
    assert h.rollup.is_live(header) and not h.rollup.is_final(header)
    h.travel_to(header.timestamp + CHALLENGE_WINDOW_SECONDS - 3)
    assert not h.rollup.is_final(header)
    h.travel_to(header.timestamp + CHALLENGE_WINDOW_SECONDS)
    assert h.rollup.is_final(header)


def test_is_final__header_altered__false(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    batch = h.append(seq, [b"\x00"])
    h.travel_to(batch.header.timestamp + CHALLENGE_WINDOW_SECONDS + 1)
    forged = replace(batch.header, post_root=ROOT_A)
    assert h.rollup.is_final(batch.header)
    assert not h.rollup.is_final(forged)


def test_withdraw_bond__before_last_batch_final__reverts(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    h.append(seq, [b"\x00"])
    with pytest.raises(TransactionReverted) as err:
        h.rollup.withdraw_bond(seq)
    assert err.value.reason == "rollup: last batch not final"


def test_withdraw_bond__after_last_batch_final__paid_and_unbonded(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq, 2 * MIN_BOND_WEI)
    batch = h.append(seq, [b"\x00"])
    h.travel_to(batch.header.timestamp + CHALLENGE_WINDOW_SECONDS)
    before = h.balance(seq)
    result = h.rollup.withdraw_bond(seq)
    assert h.balance(seq) == before + 2 * MIN_BOND_WEI - h.fee(result)
    (event,) = h.rollup.bond_withdrawn_events(result.block_number, result.block_number)
    assert (event.sequencer, event.amount) == (bytes.fromhex(seq.address[2:]), 2 * MIN_BOND_WEI)
    assert not h.rollup.is_bonded(seq.address)
    with pytest.raises(TransactionReverted) as err:
        _raw_append(h, seq, [b"\x00"], [ROOT_A])
    assert err.value.reason == "rollup: not bonded"
    with pytest.raises(TransactionReverted) as err:
        h.rollup.withdraw_bond(seq)
    assert err.value.reason == "rollup: not bonded"


def test_withdraw_bond__never_appended__allowed(h: Harness) -> None:
    seq = h.account(1)
    h.bond(seq)
    h.rollup.withdraw_bond(seq)
    assert h.rollup.sequencer_info(seq.address).bond == 0


def test_deploy__escape_delay_within_the_challenge_window__refused() -> None:
    with pytest.raises(TransactionReverted) as err:
        Harness.create(DeployParams(challenge_window_seconds=100, escape_delay_seconds=100))
    assert err.value.reason == "rollup: escape delay within challenge window"
