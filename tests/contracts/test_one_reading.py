"""One reading of every byte string (DESIGN guarantee 7).

Wherever a contract and the Python code read the same bytes, they must read them the same way: an
input the L1 accepts that a node reads differently (or cannot read) is unprovable fraud. Each byte
string either agrees by construction or is held by a differential test:

- Bridge inputs (`deposit`, `send_message`, `force_tx` calldata): no node reads them; nodes read
  the events, which the Bridge writes from the values its own ABI decoder read, next to the queue
  hash it stores from those same values. `test_bridge_queue__*` (every kind and length, through the
  node's reader `contracts.l1`, then consumed alike by both state machines against the real
  Bridge), `test_bridge_calldata__*` (non-canonical calldata: whatever the Bridge accepts, the
  node's record is exactly what it read and hashed).
- Event data: Vyper's ABI encoder writes it (standard offsets, zero padding), and only the contract
  can log at its own address, so it is canonical: any decoder, strict or lenient, reads one value.
  `_assert_canonical_logs` checks it byte for byte on every Bridge and Rollup log these tests make.
- Queue hashes: the Bridge stores `keccak(abi_encode(...))` and logs that very value; Python
  (`deposit_hash`, `message_hash`, `forced_hash`) and TransferRules recompute it from a
  transaction's fields. `test_bridge_queue__*`.
- Transaction bytes (`sequencer.stf.codec` vs `txdata.vy` and the rules contracts):
  `test_tx_bytes__*` (every type byte at every declared length and one byte either side, count bytes
  off by one, byte-level mutations of every type: same touched keys or none on both sides, same
  post root), with `test_differential.py` and `test_differential_spec.py` (random states, spec
  vectors).
- Fraud-proof witnesses (built by `prover.witness`, encoded by the bindings, read by `smt.vy`):
  `test_witness__*` (values of every length class, the three terminals). The Withdrawal value a
  claim compares: `test_withdrawal_value__*`.
- The batch header (`BatchHeader.encode`/`hash` vs `batch_header.vy`) and the Rollup's events as
  the node reads them: `test_batch_header__*`, `test_rollup_events__*`.
- The batch trees (`sequencer.stf.batch` vs `merkle.vy`) and their soundness: `test_batch_tree.py`.
- `append_batch` calldata (`contracts/calldata.py` vs the Rollup): `test_append_calldata.py` and
  `tests/devnet/test_append_calldata_fuzz.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import eth_abi
import pytest
from contracts_harness import Harness, StubVerifier, deploy_test_contract, user_address, user_key
from eth_utils import event_abi_to_log_topic
from exchange_vectors import EXCHANGE_VECTORS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stf_vectors import CONFIG, VECTORS, Vector, state_of
from web3.contract import Contract

from contracts.bindings import TransactionReverted, send_transaction, witness_arg
from contracts.l1 import (
    Web3L1,
    batch_record,
    deposit_record,
    forced_record,
    fraud_record,
    frozen_record,
    message_record,
    revert_record,
)
from prover.witness import build_tx_witnesses
from sequencer.stf.codec import (
    decode_tx,
    deposit_hash,
    encode_tx,
    encode_withdrawal_value,
    forced_hash,
    message_hash,
)
from sequencer.stf.constants import (
    BUNDLE_LEG_TX_BYTES,
    BUNDLE_TX_HEADER_BYTES,
    CANCEL_TX_BYTES,
    DELEVERAGE_TX_BYTES,
    DEPOSIT_TX_BYTES,
    EMPTY,
    FILL_TX_BYTES,
    FORCED_TX_HEADER_BYTES,
    FUNDING_TX_BYTES,
    L1_MESSAGE_TX_HEADER_BYTES,
    LIQUIDATE_TX_BYTES,
    MAX_FORCED_TX_BYTES,
    MAX_LEGS,
    MAX_MESSAGE_PAYLOAD_BYTES,
    MAX_PRICE_SIGNATURES,
    MAX_TX_BYTES,
    MAX_VALUE_BYTES,
    MAX_WITNESSES,
    ORACLE_TX_HEADER_BYTES,
    PRICE_ENTRY_BYTES,
    SIGNATURE_BYTES,
    SIGNED_TX_BYTES,
    TX_TYPE_BUNDLE_FILL,
    TX_TYPE_CANCEL,
    TX_TYPE_DELEVERAGE,
    TX_TYPE_DEPOSIT,
    TX_TYPE_FILL,
    TX_TYPE_FORCED,
    TX_TYPE_FUNDING,
    TX_TYPE_L1_MESSAGE,
    TX_TYPE_LIQUIDATE,
    TX_TYPE_ORACLE_UPDATE,
    TX_TYPE_TRANSFER,
    TX_TYPE_WITHDRAW,
)
from sequencer.stf.eip712 import sign_transfer, sign_withdraw
from sequencer.stf.errors import DecodeError
from sequencer.stf.hashing import keccak
from sequencer.stf.l1types import (
    L1Batch,
    L1Deposit,
    L1Event,
    L1ForcedTx,
    L1Fraud,
    L1Message,
    L1QueueEntry,
    L1Revert,
)
from sequencer.stf.queue import queue_tx
from sequencer.stf.smt import SparseMerkleTree, Witness, write_witness
from sequencer.stf.state import State, get_next_deposit_index, set_account, set_next_deposit_index
from sequencer.stf.transition import touched_keys
from sequencer.stf.types import Account, BatchHeader, L1Context

L1_RECIPIENT = bytes.fromhex("00000000000000000000000000000000000b0b00")


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    """One deployed rollup for the module (each test reads only what it adds)."""
    yield Harness.create()


@pytest.fixture(scope="module")
def sv() -> StubVerifier:
    """The verifier and rules on their own, signing for the vectors' chain (`CONFIG`)."""
    return StubVerifier.create(CONFIG)


@pytest.fixture(scope="module")
def lib(h: Harness) -> Contract:
    """`smt.vy` (and the other library modules) exposed as views."""
    return deploy_test_contract(h.w3, h.deployer, "LibHarness")


def _assert_canonical_logs(contract: Contract, receipt: Any) -> int:
    """Every log of `contract` in `receipt` is, byte for byte, the standard ABI encoding of what web3
    decodes from it (topics and data): so any ABI decoder reads the same values. Returns how many."""
    events = {event_abi_to_log_topic(e): e for e in contract.abi if e["type"] == "event"}
    count = 0
    for log in receipt["logs"]:
        if log["address"] != contract.address:
            continue
        abi = events[bytes(log["topics"][0])]
        args = getattr(contract.events, abi["name"])().process_log(log)["args"]
        indexed = [i for i in abi["inputs"] if i["indexed"]]
        data = [i for i in abi["inputs"] if not i["indexed"]]
        assert [bytes(t) for t in log["topics"][1:]] == [
            eth_abi.encode([i["type"]], [args[i["name"]]]) for i in indexed
        ], abi["name"]
        assert bytes(log["data"]) == eth_abi.encode(
            [i["type"] for i in data], [args[i["name"]] for i in data]
        ), abi["name"]
        count += 1
    return count


# ---- Bridge inputs, their events and the queue hashes ------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A queue entry to send: its kind and arguments."""

    kind: str
    """One of "deposit", "message", "forced" (any bytes), "forced_signed" (a signed Transfer or
    Withdraw)."""
    data: bytes = b""
    """The payload or the forced transaction's bytes."""
    to: bytes = b""
    amount: int = 0


def _lengths(most: int) -> st.SearchStrategy[int]:
    """1..`most`, and the lengths around ABI words and the ends."""
    edges = [1, 2, 31, 32, 33, 63, 64, 65, 96, 97, most - 1, most]
    return st.one_of(st.integers(1, most), st.sampled_from(edges))


@st.composite
def blobs(draw: st.DrawFn, most: int) -> bytes:
    """Bytes of 1..`most`: random, or ending in zeros (what padding looks like), or all zero."""
    n = draw(_lengths(most))
    how = draw(st.sampled_from(["random", "random", "zero_tail", "zeros"]))
    if how == "zeros":
        return bytes(n)
    body = draw(st.binary(min_size=n, max_size=n))
    if how == "zero_tail":
        cut = draw(st.integers(0, n - 1))
        body = body[:cut] + bytes(n - cut)
    return body


@st.composite
def entries(draw: st.DrawFn, h: Harness) -> Entry:
    kind = draw(st.sampled_from(["deposit", "message", "forced", "forced_signed"]))
    if kind == "deposit":
        to = draw(st.sampled_from([user_address(1), b"\xff" * 20, b"\x00" * 19 + b"\x01"]))
        amount = draw(st.one_of(st.integers(1, 2**64), st.just(1), st.integers(1, 2**96)))
        return Entry(kind, to=to, amount=amount)
    if kind == "message":
        return Entry(kind, draw(blobs(MAX_MESSAGE_PAYLOAD_BYTES)))
    if kind == "forced":
        return Entry(kind, draw(blobs(MAX_FORCED_TX_BYTES)))
    sign = draw(st.sampled_from([sign_transfer, sign_withdraw]))
    to = draw(st.sampled_from([user_address(2), L1_RECIPIENT]))
    return Entry(kind, encode_tx(sign(user_key(1), to, draw(st.integers(1, 1_000)), 0, h.config)))


def _send(h: Harness, entry: Entry) -> Any:
    """Queue `entry` through the bindings; the receipt."""
    if entry.kind == "deposit":
        return h.deposit(entry.to, entry.amount).receipt
    if entry.kind == "message":
        return h.bridge.send_message(h.deployer, entry.data).receipt
    return h.bridge.force_tx(h.account(3), entry.data).receipt


def _queue_records(h: Harness, first_block: int) -> list[L1QueueEntry]:
    """The queue entries from `first_block` on, read as every node reads them (`contracts.l1`)."""
    events = Web3L1.over(h.w3, h.deployment).events(first_block, h.w3.eth.block_number)
    return [e for e in events if isinstance(e, L1Deposit | L1Message | L1ForcedTx)]


def _python_queue_hash(record: L1QueueEntry) -> bytes:
    if isinstance(record, L1Deposit):
        return deposit_hash(record.index, record.to, record.amount)
    if isinstance(record, L1Message):
        return message_hash(record.index, record.payload)
    return forced_hash(record.index, record.signed_tx)


def _assert_consumed_alike(h: Harness, record: L1QueueEntry) -> None:
    """The transaction a sequencer builds for `record` consumes it in the Python state machine and
    in the FraudVerifier (whose TransferRules read the real Bridge's queue hash), to one root."""
    raw = encode_tx(queue_tx(record))
    assert len(raw) <= MAX_TX_BYTES
    state = State()
    set_next_deposit_index(state, record.index)
    set_account(state, user_address(1), Account(10**6, 0))  # the signer of the forced transfers
    l2_time = h.latest_timestamp()
    ctx = L1Context(record.index + 1, {record.index: record.hash}, l2_time)
    pre_root = state.tree.root
    witnesses, post_root = build_tx_witnesses(state, raw, ctx, h.config)
    assert get_next_deposit_index(state) == record.index + 1, "the entry is consumed"
    assert h.verifier.apply_tx(pre_root, raw, witnesses, ctx.queue_end, l2_time) == post_root


@_settings(10)
@given(st.data())
def test_bridge_queue__entries_of_every_kind_and_length__read_back_as_queued_and_consumed_alike(
    h: Harness, data: st.DataObject
) -> None:
    sent = data.draw(st.lists(entries(h), min_size=1, max_size=3))
    first_block = h.w3.eth.block_number + 1
    first_index = h.bridge.queue_length()
    for entry in sent:
        assert _assert_canonical_logs(h.bridge.contract, _send(h, entry)) == 1
    records = _queue_records(h, first_block)
    assert [r.index for r in records] == list(range(first_index, first_index + len(sent)))
    for entry, record in zip(sent, records, strict=True):
        if entry.kind == "deposit":
            assert isinstance(record, L1Deposit)
            assert (record.to, record.amount) == (entry.to, entry.amount)
        elif entry.kind == "message":
            assert isinstance(record, L1Message) and record.payload == entry.data
        else:
            assert isinstance(record, L1ForcedTx) and record.signed_tx == entry.data
        assert record.hash == h.bridge.queue_hash(record.index) == _python_queue_hash(record)
        assert record.timestamp == h.bridge.queue_timestamp(record.index)
        _assert_consumed_alike(h, record)


def _word(x: int) -> bytes:
    return x.to_bytes(32, "big")


@st.composite
def bytes_arguments(draw: st.DrawFn) -> bytes:
    """The arguments of a one-`bytes` function, encoded canonically or not: the offset moved
    (aligned or not, junk before the item), the padding dirty, the item cut short by the end of
    the calldata, junk after it, the length out of bounds."""
    length = draw(st.one_of(_lengths(MAX_FORCED_TX_BYTES), st.sampled_from([0, 1016, 2048, 2049])))
    body = draw(st.binary(min_size=length, max_size=length))
    gap = draw(st.sampled_from([0, 0, 0, 1, 31, 32, 64]))
    padding = (-length) % 32
    pad = draw(st.one_of(st.just(bytes(padding)), st.binary(min_size=padding, max_size=padding)))
    args = _word(32 + gap) + draw(st.binary(min_size=gap, max_size=gap)) + _word(length) + body + pad
    args += draw(st.one_of(st.just(b""), st.just(bytes(32)), st.binary(max_size=70)))
    cut = draw(st.sampled_from([0, 0, 0, 1, padding + 1, padding + 32]))
    return args[: max(32, len(args) - cut)]


def _follow_offset(args: bytes) -> bytes:
    """What an ABI decoder that follows the offset finds, reading zeros past the end of the
    calldata as the EVM does (the item of an argument the Bridge accepted: at most 2048 bytes)."""
    padded = args + bytes(4096)
    offset = int.from_bytes(padded[:32], "big")
    length = int.from_bytes(padded[offset : offset + 32], "big")
    return padded[offset + 32 : offset + 32 + length]


@_settings(40)
@given(st.sampled_from(["force_tx", "send_message"]), bytes_arguments())
def test_bridge_calldata__non_canonical_encodings__the_event_is_what_the_bridge_read(
    h: Harness, function: str, args: bytes
) -> None:
    """No node reads the Bridge's calldata: it reads the event, written from the contract's own
    reading, next to the queue hash the Bridge stores from that same reading. So whatever calldata
    the Bridge accepts, the node's record is exactly what the Bridge read and hashed."""
    selector = getattr(h.bridge.contract.functions, function)(b"\x01")._encode_transaction_data()[:10]
    sender = h.deployer if function == "send_message" else h.account(4)
    index = h.bridge.queue_length()
    first_block = h.w3.eth.block_number + 1
    try:
        result = send_transaction(
            h.w3, sender, {"to": h.bridge.address, "data": selector + args.hex()}, label=function
        )
    except TransactionReverted:
        assert h.bridge.queue_length() == index and _queue_records(h, first_block) == []
        return
    assert _assert_canonical_logs(h.bridge.contract, result.receipt) == 1
    (record,) = _queue_records(h, first_block)
    read = record.payload if isinstance(record, L1Message) else record.signed_tx
    assert record.index == index and read == _follow_offset(args)
    assert 1 <= len(read) <= MAX_FORCED_TX_BYTES
    assert record.hash == h.bridge.queue_hash(index) == _python_queue_hash(record)


def test_bridge_calldata__deposit_address_with_dirty_high_bytes__refused(h: Harness) -> None:
    """An address argument is clamped by the ABI decoder: `to` has one reading."""
    who = h.account(5)
    h.token.mint(h.deployer, who.address, 10)
    h.token.approve(who, h.bridge.address, 10)
    data = bytearray.fromhex(
        h.bridge.contract.functions.deposit(
            h.w3.to_checksum_address(user_address(1)), 10
        )._encode_transaction_data()[2:]
    )
    index = h.bridge.queue_length()
    data[4] = 0x01  # the first of the 12 bytes above the address
    with pytest.raises(TransactionReverted):
        send_transaction(h.w3, who, {"to": h.bridge.address, "data": "0x" + data.hex()}, label="deposit")
    assert h.bridge.queue_length() == index


# ---- transaction bytes: Python codec vs txdata.vy and the rules ------------------------------

SEEDS: list[Vector] = [v for v in VECTORS + EXCHANGE_VECTORS if v.tx]
"""Every state-machine vector with a transaction: each type, valid and breaking each rule."""
EMPTY_CTX = L1Context(0, {}, 0)


def _oracle_length(count: int) -> int:
    return ORACLE_TX_HEADER_BYTES + PRICE_ENTRY_BYTES * count


def _bundle_length(count: int) -> int:
    return BUNDLE_TX_HEADER_BYTES + SIGNATURE_BYTES + BUNDLE_LEG_TX_BYTES * count


OWN_LENGTHS: dict[int, set[int]] = {
    TX_TYPE_DEPOSIT: {DEPOSIT_TX_BYTES},
    TX_TYPE_TRANSFER: {SIGNED_TX_BYTES},
    TX_TYPE_WITHDRAW: {SIGNED_TX_BYTES},
    TX_TYPE_L1_MESSAGE: {L1_MESSAGE_TX_HEADER_BYTES, L1_MESSAGE_TX_HEADER_BYTES + 1, MAX_TX_BYTES},
    TX_TYPE_ORACLE_UPDATE: {
        _oracle_length(c) for c in (0, 1, 2, MAX_PRICE_SIGNATURES, MAX_PRICE_SIGNATURES + 1)
    },
    TX_TYPE_FUNDING: {FUNDING_TX_BYTES},
    TX_TYPE_FILL: {FILL_TX_BYTES},
    TX_TYPE_CANCEL: {CANCEL_TX_BYTES},
    TX_TYPE_LIQUIDATE: {LIQUIDATE_TX_BYTES},
    TX_TYPE_DELEVERAGE: {DELEVERAGE_TX_BYTES},
    TX_TYPE_BUNDLE_FILL: {_bundle_length(c) for c in (0, 1, 2, MAX_LEGS, MAX_LEGS + 1)},
    TX_TYPE_FORCED: {
        FORCED_TX_HEADER_BYTES,
        FORCED_TX_HEADER_BYTES + 1,
        FORCED_TX_HEADER_BYTES + SIGNED_TX_BYTES,
        MAX_TX_BYTES,
    },
}
"""The lengths each type declares (from the Python codec's constants): fixed, at the ends of its
count range, or the queue types' shortest and longest; a length past `MAX_TX_BYTES` cannot
reach the verifier (`Bytes[1024]`) and is left out."""
DECLARED_LENGTHS = sorted(n for n in set().union(*OWN_LENGTHS.values()) | {1, 2} if n <= MAX_TX_BYTES)
TYPES = sorted(OWN_LENGTHS)
COUNT_AT = {
    TX_TYPE_ORACLE_UPDATE: (3, _oracle_length),
    TX_TYPE_BUNDLE_FILL: (BUNDLE_TX_HEADER_BYTES - 1, _bundle_length),
}
"""Where the count byte of a count-dependent type sits, and the length a count implies."""


def _python_keys(raw: bytes) -> tuple[bytes, ...]:
    """The Python reading: the touched keys, none when the bytes do not decode."""
    try:
        tx = decode_tx(raw)
    except DecodeError:
        return ()
    return touched_keys(tx, CONFIG)


def _vyper_keys(sv: StubVerifier, raw: bytes) -> list[tuple[bytes, ...]]:
    """The contracts' reading: the touched keys each rules contract returns (only the rules
    contract of the type may find any)."""
    rules = (sv.transfer_rules, sv.oracle_rules, sv.trade_rules, sv.risk_rules)
    return [keys for r in rules if (keys := r.execute(raw, [], 0, 0)[0])]


def _assert_one_reading(
    sv: StubVerifier, raw: bytes, state: State | None = None, ctx: L1Context = EMPTY_CTX
) -> None:
    """Python and the contracts read `raw` alike. The FraudVerifier dispatches on the type byte and
    takes exactly the prover's witnesses (one per key Python reads, in order; none when Python
    cannot decode the bytes) or reverts, then must compute the Python post root: so the two agree
    on whether the bytes decode, on the touched keys, and on every field the rules read (on the
    empty state by default, where a Cancel still applies)."""
    try:
        onchain, expected = sv.roots(State() if state is None else state, raw, ctx)
    except TransactionReverted as exc:
        python = [k.hex() for k in _python_keys(raw)]
        vyper = [[k.hex() for k in keys] for keys in _vyper_keys(sv, raw)]
        raise AssertionError(
            f"0x{raw.hex()}: the verifier refused the prover's witnesses ({exc}); "
            f"Python reads keys {python}, the rules contracts {vyper}"
        ) from exc
    assert onchain == expected, f"0x{raw.hex()}"
    assert len(_python_keys(raw)) <= MAX_WITNESSES  # every decoded transaction fits one proof


def _stream(seed: bytes, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:n]


def test_tx_bytes__every_type_byte_at_every_declared_length__one_reading(sv: StubVerifier) -> None:
    """Each known type at every length any type declares, its own lengths one byte either side, and
    its count byte (if it has one) set to the count the length implies or one more; every unknown
    type byte; the empty string."""
    for kind in range(256):
        if kind not in OWN_LENGTHS:
            raw = bytes([kind]) + _stream(bytes([kind]), DECLARED_LENGTHS[kind % len(DECLARED_LENGTHS)] - 1)
            assert _python_keys(raw) == ()
            assert sv.verifier.apply_tx(EMPTY, raw, [], 0, 0) == EMPTY, f"0x{raw.hex()}"
            continue
        own = {n + d for n in OWN_LENGTHS[kind] for d in (-1, 0, 1)}
        for n in sorted((set(DECLARED_LENGTHS) | own) & set(range(1, MAX_TX_BYTES + 1))):
            raw = bytearray(bytes([kind]) + _stream(bytes([kind]) + n.to_bytes(2, "big"), n - 1))
            variants = [bytes(raw)]
            if kind in COUNT_AT and n > COUNT_AT[kind][0]:
                at, length_of = COUNT_AT[kind]
                count = next((c for c in range(256) if length_of(c) >= n), 255)
                for c in (count, count + 1):
                    raw[at] = min(c, 255)
                    variants.append(bytes(raw))
            for v in variants:
                _assert_one_reading(sv, v)
    _assert_one_reading(sv, b"")


def test_tx_bytes__vectors__each_read_by_exactly_the_rules_contract_of_its_type(sv: StubVerifier) -> None:
    """The touched keys side by side, for one vector of each type and a few undecodable bytes: the
    rules contract of the type returns Python's keys, every other one finds nothing."""
    firsts = {v.tx[0]: v.tx for v in reversed(SEEDS)}
    for raw in [*firsts.values(), b"\x00", b"\x0d" * 61, b"\x01" * 62]:
        python = _python_keys(raw)
        assert _vyper_keys(sv, raw) == ([python] if python else []), f"0x{raw.hex()}"


MUTATIONS = (
    "truncate",
    "extend",
    "flip",
    "set",
    "retype",
    "count",
    "recount",
    "splice",
    "nest",
    "unwrap",
    "inner",
)
FIELD_MUTATIONS = ("flip", "set", "inner")
"""Changes that keep the type byte and the length: a field changes, the transaction still decodes."""


@st.composite
def mutated_txs(draw: st.DrawFn, mutations: tuple[str, ...] = MUTATIONS) -> tuple[Vector, bytes]:
    """A vector and its transaction with one to three byte-level changes: cut, extended, a byte
    flipped or set to 0x00/0xff, another type byte, the count byte of an OracleUpdate or BundleFill
    changed (with the length to match, or not), bytes inserted or deleted, wrapped in a ForcedTx or
    unwrapped from one, the inner bytes of a ForcedTx changed."""
    vector = draw(st.sampled_from(SEEDS))
    raw = bytearray(vector.tx)
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(mutations))
        n = len(raw)
        if how == "truncate" and n:
            raw = raw[: draw(st.one_of(st.just(n - 1), st.integers(0, n - 1)))]
        elif how == "extend":
            raw += draw(st.one_of(st.just(b"\x00"), st.binary(min_size=1, max_size=64)))
        elif how in ("flip", "set") and n:
            at = draw(
                st.one_of(st.just(0), st.integers(0, n - 1)) if "retype" in mutations else st.integers(1, n)
            )
            at = min(at, n - 1)
            raw[at] = (
                raw[at] ^ draw(st.integers(1, 255)) if how == "flip" else draw(st.sampled_from([0, 255]))
            )
        elif how == "retype" and n:
            raw[0] = draw(st.one_of(st.sampled_from(TYPES), st.integers(0, 255)))
        elif how in ("count", "recount") and n and raw[0] in COUNT_AT and n > COUNT_AT[raw[0]][0]:
            at, length_of = COUNT_AT[raw[0]]
            most = MAX_PRICE_SIGNATURES if raw[0] == TX_TYPE_ORACLE_UPDATE else MAX_LEGS
            count = draw(st.sampled_from([0, raw[at] - 1, raw[at] + 1, most, most + 1, 255]))
            raw[at] = max(0, min(count, 255))
            if how == "recount":  # the length that count implies (cut, or padded with random bytes)
                want = min(MAX_TX_BYTES, length_of(raw[at]))
                more = max(0, want - n)
                raw = raw[:want] + bytearray(draw(st.binary(min_size=more, max_size=more)))
        elif how == "splice" and n:
            at = draw(st.integers(0, n - 1))
            if draw(st.booleans()):
                del raw[at : at + draw(st.integers(1, 8))]
            else:
                raw[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "nest" and n <= MAX_FORCED_TX_BYTES:
            raw = bytearray(bytes([TX_TYPE_FORCED]) + draw(st.binary(min_size=8, max_size=8))) + raw
        elif how == "unwrap" and n and raw[0] == TX_TYPE_FORCED:
            raw = raw[FORCED_TX_HEADER_BYTES:]
        elif how == "inner" and n > FORCED_TX_HEADER_BYTES and raw[0] == TX_TYPE_FORCED:
            at = draw(st.integers(FORCED_TX_HEADER_BYTES, n - 1))
            raw[at] ^= draw(st.integers(1, 255))
    return vector, bytes(raw[:MAX_TX_BYTES])


@_settings(150)
@given(mutated_txs())
def test_tx_bytes__byte_level_mutations_of_every_type__one_reading(
    sv: StubVerifier, case: tuple[Vector, bytes]
) -> None:
    _assert_one_reading(sv, case[1])


def _as_queued(raw: bytes, ctx: L1Context) -> L1Context:
    """`ctx` with the queue entry that a Deposit, L1Message or ForcedTx names holding the hash of
    its (changed) bytes, as the Bridge would had those bytes been queued: so the changed payload,
    inner transaction, recipient or amount is read and applied, not refused by the queue hash. Only
    for an entry the vector already has (an index changed by the mutation stays unmatched)."""
    index = int.from_bytes(raw[1:9], "big")
    if index not in ctx.queue_hashes:
        return ctx
    if raw[0] == TX_TYPE_DEPOSIT and len(raw) == DEPOSIT_TX_BYTES:
        entry = deposit_hash(index, raw[9:29], int.from_bytes(raw[29:], "big"))
    elif raw[0] == TX_TYPE_L1_MESSAGE and len(raw) > L1_MESSAGE_TX_HEADER_BYTES:
        entry = message_hash(index, raw[L1_MESSAGE_TX_HEADER_BYTES:])
    elif raw[0] == TX_TYPE_FORCED and len(raw) > FORCED_TX_HEADER_BYTES:
        entry = forced_hash(index, raw[FORCED_TX_HEADER_BYTES:])
    else:
        return ctx
    return replace(ctx, queue_hashes={**ctx.queue_hashes, index: entry})


@_settings(60)
@given(mutated_txs(FIELD_MUTATIONS))
def test_tx_bytes__mutated_vector_on_its_own_state__verifier_root_equals_stf(
    sv: StubVerifier, case: tuple[Vector, bytes]
) -> None:
    """A field of the vector's transaction changed (type byte and length kept, so it still decodes),
    on the vector's own pre-state and L1 context (the queue entry re-hashed to the changed bytes),
    where the changed field of a transaction that applies (a fill size, an unsigned deleverage, a
    deposit amount, a governance payload, a forced transaction's inner bytes) matters."""
    vector, raw = case
    _assert_one_reading(sv, raw, state_of(vector.pre), _as_queued(raw, vector.ctx))


# ---- fraud-proof witnesses: prover vs smt.vy -------------------------------------------------

VALUE_LENGTHS = [1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 192, 1087, 1088, 1089, 2047, MAX_VALUE_BYTES]
"""Around every ABI word boundary and the value shapes (accounts of 64 + 128 n bytes, 16 markets)."""


@st.composite
def values(draw: st.DrawFn) -> bytes:
    n = draw(st.one_of(st.sampled_from(VALUE_LENGTHS), st.integers(1, MAX_VALUE_BYTES)))
    return draw(st.one_of(st.binary(min_size=n, max_size=n), st.just(bytes(n)), st.just(b"\xff" * n)))


@_settings(15)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=12, unique=True), st.data())
def test_witness__values_of_every_length_and_each_terminal__smt_vy_reads_the_provers_witness(
    lib: Contract, keys: list[bytes], data: st.DataObject
) -> None:
    tree = SparseMerkleTree()
    for k in keys:
        tree.set(k, data.draw(values()))
    root = tree.root
    near = bytes(keys[0][:31]) + bytes([keys[0][31] ^ 1])  # absent, meets keys[0]'s leaf (terminal 2)
    far = keccak(b"".join(keys))  # absent, most likely an empty subtree (terminal 1)
    for probe in (*keys, near, far):
        if probe in keys and probe not in (keys[0], keys[-1]):
            continue
        w: Witness = tree.witness(probe)
        arg = witness_arg(w)
        assert lib.functions.check(root, arg).call(), (w.terminal, len(w.value))
        new_value = data.draw(values())
        ok, written = lib.functions.check_and_write(root, arg, new_value).call()
        twin = tree.copy()
        twin.set(probe, new_value)
        assert ok and written == write_witness(w, new_value) == twin.root
    assert {tree.witness(near).terminal, tree.witness(keys[0]).terminal} == {0, 2}


# ---- the batch header: BatchHeader.encode / hash vs batch_header.vy --------------------------

HEADER_TYPE = "(uint256,bytes32,bytes32,bytes32,bytes32,uint256,uint256,uint256,uint256,address,uint256)"
uint256s = st.one_of(st.integers(0, 2**256 - 1), st.sampled_from([0, 1, 2**64, 2**256 - 1]))
words = st.one_of(st.binary(min_size=32, max_size=32), st.just(EMPTY), st.just(b"\xff" * 32))


@_settings(40)
@given(
    st.builds(
        BatchHeader,
        index=uint256s,
        prev_root=words,
        post_root=words,
        tx_root=words,
        roots_root=words,
        tx_count=uint256s,
        queue_start=uint256s,
        queue_end=uint256s,
        l2_time=uint256s,
        sequencer=st.one_of(st.binary(min_size=20, max_size=20), st.just(b"\xff" * 20)),
        timestamp=uint256s,
    )
)
def test_batch_header__any_fields__python_encoding_and_hash_equal_the_rollups(
    h: Harness, header: BatchHeader
) -> None:
    encoded = header.encode()
    assert encoded == eth_abi.encode([HEADER_TYPE], [header.as_tuple()])  # abi.encode of the struct
    assert h.rollup.hash_header(header) == header.hash() == keccak(encoded)


def test_rollup_events__append_and_fraud__node_reads_what_the_rollup_committed() -> None:
    """The BatchAppended event read by the node (`contracts.l1`) rebuilds the header whose hash the
    Rollup stored; a proven fraud's FraudProven, SequencerSlashed and BatchesReverted read back as
    sent; every log is canonical."""
    h = Harness.create()
    seq, challenger = h.account(1), h.account(2)
    h.bond(seq)
    first_block = h.w3.eth.block_number + 1
    txs = [b"\xee", encode_tx(sign_transfer(user_key(1), user_address(2), 1, 0, h.config))]
    batch = h.append(seq, txs, roots=[EMPTY, b"\x5a" * 32], advance=False)  # the second root is wrong
    assert _assert_canonical_logs(h.rollup.contract, batch.result.receipt) == 1
    proof = h.rollup.prove_tx_fraud(challenger, **h.tx_fraud_args(batch, 1))
    assert _assert_canonical_logs(h.rollup.contract, proof.receipt) == 3
    events = Web3L1.over(h.w3, h.deployment).events(first_block, h.w3.eth.block_number)
    (record,) = [e for e in events if isinstance(e, L1Batch)]
    assert record.header == batch.header and h.rollup.batch_hash(0) == record.header.hash()
    assert (list(record.txs), list(record.roots)) == (batch.txs, batch.roots)
    (fraud,) = [e for e in events if isinstance(e, L1Fraud)]
    assert (fraud.batch_index, fraud.tx_index, fraud.sequencer, fraud.challenger) == (
        0,
        1,
        bytes.fromhex(seq.address[2:]),
        bytes.fromhex(challenger.address[2:]),
    )
    (reverted,) = [e for e in events if isinstance(e, L1Revert)]
    assert (reverted.from_index, reverted.to_index) == (0, 0)


def test_l1_events__one_read_of_both_contracts__the_records_each_event_read_gives() -> None:
    """The node reads both contracts' logs with one eth_getLogs (`Web3L1.events`): it gives every
    record, in L1 order, that reading each event on its own gives, and nothing else (the
    SequencerSlashed log of the same proof, which the derivation does not read, is left out)."""
    h = Harness.create()
    seq, challenger = h.account(1), h.account(2)
    h.bond(seq)
    first_block = h.w3.eth.block_number + 1
    h.deposit(user_address(1), 5)
    h.bridge.send_message(h.deployer, b"\x01\x02")
    h.bridge.force_tx(h.account(3), b"\x03" * 40)
    txs = [b"\xee", encode_tx(sign_transfer(user_key(1), user_address(2), 1, 0, h.config))]
    batch = h.append(seq, txs, roots=[EMPTY, b"\x5a" * 32], advance=False)  # the second root is wrong
    h.rollup.prove_tx_fraud(challenger, **h.tx_fraud_args(batch, 1))
    last_block = h.w3.eth.block_number
    assert h.rollup.sequencer_slashed_events(first_block, last_block)  # in the range, not read

    def each(read: Any, record: Any) -> list[L1Event]:
        return [record(e) for e in read(first_block, last_block)]

    expected = (
        each(h.bridge.deposited_events, deposit_record)
        + each(h.bridge.message_queued_events, message_record)
        + each(h.bridge.forced_tx_queued_events, forced_record)
        + each(h.rollup.batch_appended_events, batch_record)
        + each(h.rollup.batches_reverted_events, revert_record)
        + each(h.rollup.fraud_proven_events, fraud_record)
        + each(h.rollup.frozen_events, frozen_record)
    )
    expected.sort(key=lambda e: (e.l1_block, e.log_index))
    got = Web3L1.over(h.w3, h.deployment).events(first_block, last_block)
    assert got == expected
    assert [type(e) for e in got] == [L1Deposit, L1Message, L1ForcedTx, L1Batch, L1Revert, L1Fraud]


@_settings(40)
@given(st.binary(min_size=20, max_size=20), uint256s)
def test_withdrawal_value__python_encoding__is_the_abi_encoding_the_bridge_compares(
    recipient: bytes, amount: int
) -> None:
    """`claim_withdrawal` compares the Withdrawal leaf's value with `abi_encode(l1_recipient,
    amount)`: two static ABI words, which the Python leaf encoding writes byte for byte."""
    assert encode_withdrawal_value(recipient, amount) == eth_abi.encode(
        ["address", "uint256"], [recipient, amount]
    )
