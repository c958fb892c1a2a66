"""Differential fuzz of `append_batch` calldata on both L1s (our py-evm node and anvil).

A canonical append is mutated at the byte level (words rewritten with offsets that wrap, point
past the end or overlap; lengths changed; bytes flipped, inserted, removed; the data cut short or
extended) and sent as a real transaction. The Rollup and the nodes' reader must agree: the call is
accepted exactly when the reader decodes it into a batch the tip takes, an accepted call yields
the same transactions and roots as the contract committed to (and as the strict standard decoder
reads), and a refused one records nothing. Each example runs on a snapshot that is then reverted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from contracts.bindings import RollupClient, Sender, Tip, TransactionReverted, send_transaction
from contracts.calldata import APPEND_BATCH_SELECTOR, CalldataError, decode_append_batch
from contracts.deployment import Deployment
from devnet.deploy import DeployParams, deploy_all
from devnet.l1.chain import dev_accounts
from devnet.procs import L1Handle, rpc_call
from sequencer.stf.batch import batch_roots
from sequencer.stf.constants import MAX_TX_BYTES

APPEND_TYPES = ["bytes32", "uint256", "uint256", "uint256", "bytes[]", "bytes32[]"]
WRAP = 2**256
LAG_SECONDS = 3_600
ACCOUNTS = dev_accounts(10)


@dataclass
class Env:
    w3: Web3
    url: str
    deployment: Deployment
    rollup: RollupClient
    sequencer: Sender


@pytest.fixture(scope="module")
def env(l1: L1Handle) -> Iterator[Env]:
    w3 = Web3(Web3.HTTPProvider(l1.url, request_kwargs={"timeout": 30}))
    deployer = Sender.from_key(ACCOUNTS[0].private_key)
    deployment = deploy_all(w3, deployer, DeployParams(max_l2_time_lag_seconds=LAG_SECONDS))
    rollup = RollupClient(w3, deployment.rollup)
    sequencer = Sender.from_key(ACCOUNTS[7].private_key)
    rollup.register(sequencer, DeployParams().min_bond_wei)
    yield Env(w3, l1.url, deployment, rollup, sequencer)


# ---- mutations, each on the arguments (the bytes after the selector) ----

tx_bytes = st.one_of(
    st.sampled_from([0, 1, 31, 32, 33, 61, 64, 146, MAX_TX_BYTES]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)
    ),
    st.binary(max_size=80),
)


@st.composite
def new_word(draw: st.DrawFn, old: int, size: int) -> int:
    """A replacement for a word: near its value, wrapped around 2^256, near the end of the data,
    or anything."""
    kind = draw(st.sampled_from(["near", "wrap", "end", "any", "small"]))
    delta = draw(st.integers(-96, 96))
    if kind == "near":
        return (old + delta) % WRAP
    if kind == "wrap":
        return (old + delta + WRAP) % WRAP if delta else (old - 32) % WRAP
    if kind == "end":
        return max(0, size + delta)
    if kind == "small":
        return draw(st.integers(0, 1100))
    return draw(st.integers(0, WRAP - 1))


@st.composite
def mutated(draw: st.DrawFn, args: bytes) -> bytes:
    data = bytearray(args)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["word", "word", "word", "byte", "cut", "extend", "insert", "delete"]))
        if op == "word" and len(data) >= 32:
            at = 32 * draw(st.integers(0, len(data) // 32 - 1))
            old = int.from_bytes(data[at : at + 32], "big")
            data[at : at + 32] = draw(new_word(old, len(data))).to_bytes(32, "big")
        elif op == "byte" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "cut" and data:
            del data[len(data) - draw(st.integers(1, min(64, len(data)))) :]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=40))
        elif op == "delete" and data:
            at = draw(st.integers(0, len(data) - 1))
            del data[at : at + draw(st.integers(1, 40))]
    return bytes(data)


@st.composite
def appends(draw: st.DrawFn) -> tuple[list[bytes], list[bytes], bool]:
    """A batch, its roots, and whether to mutate it (nine times in ten)."""
    txs = draw(st.lists(tx_bytes, min_size=1, max_size=5))
    roots = [draw(st.binary(min_size=32, max_size=32)) for _ in txs]
    return txs, roots, draw(st.integers(0, 9)) > 0


def _accepts(tip: Tip, call_args: tuple[bytes, int, int, int], block_timestamp: int) -> bool:
    """Whether `tip` takes a batch with these static arguments in a block of this time (the
    append rules of protocol.md section 4 other than the data's shape, for an empty queue)."""
    prev_root, queue_start, queue_end, l2_time = call_args
    return (
        prev_root == tip.post_root
        and queue_start == tip.queue_end == queue_end
        and tip.l2_time <= l2_time <= block_timestamp
        and l2_time + LAG_SECONDS >= block_timestamp
    )


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=appends(), data=st.data())
def test_append_batch__mutated_calldata__rollup_and_reader_agree(
    env: Env, batch: tuple[list[bytes], list[bytes], bool], data: st.DataObject
) -> None:
    txs, roots, mutate = batch
    tip = env.rollup.tip()
    l2_time = int(env.w3.eth.get_block("latest")["timestamp"])
    args = abi_encode(APPEND_TYPES, [tip.post_root, tip.queue_end, tip.queue_end, l2_time, txs, roots])
    if mutate:
        args = data.draw(mutated(args), label="mutated")
    calldata = APPEND_BATCH_SELECTOR + args

    try:
        call = decode_append_batch(calldata)
    except CalldataError:
        call = None
    if call is not None:
        # one reading: what our reader returns is what the strict standard decoder returns
        strict = abi_decode(APPEND_TYPES, args, strict=True)
        assert tuple(strict[:4]) == (call.prev_root, call.queue_start, call.queue_end, call.l2_time)
        assert (tuple(strict[4]), tuple(strict[5])) == (call.txs, call.roots)

    snapshot = rpc_call(env.url, "evm_snapshot")
    try:
        tx = {"to": env.rollup.address, "data": "0x" + calldata.hex(), "gas": 8_000_000}
        try:
            receipt = send_transaction(env.w3, env.sequencer, tx, label="fuzz").receipt
            accepted = True
        except TransactionReverted as err:
            receipt, accepted = err.receipt, False
        assert receipt is not None  # mined either way: the gas was given, nothing was estimated
        block_timestamp = int(env.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
        expected = call is not None and _accepts(
            tip, (call.prev_root, call.queue_start, call.queue_end, call.l2_time), block_timestamp
        )
        assert accepted == expected, (accepted, call)
        if accepted:
            assert call is not None
            (event,) = env.rollup.batch_appended_from_receipt(receipt)
            assert not event.unreadable
            assert (event.txs, event.roots) == (call.txs, call.roots)
            assert batch_roots(call.txs, call.roots) == (event.header.tx_root, event.header.roots_root)
            assert event.header.tx_count == len(call.txs)
            assert env.rollup.batch_count() == tip.batch_count + 1
        else:
            assert env.rollup.batch_count() == tip.batch_count
    finally:
        assert rpc_call(env.url, "evm_revert", [snapshot]) in (True, None)
