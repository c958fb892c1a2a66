"""A lying sequencer inside the most hostile encoding the Rollup accepts is proven wrong by the
real watcher process, on both L1s.

The attack (from an adversarial review of the earlier, lenient Rollup): post the honest state plus
a withdrawal leaf paying the sequencer, inside calldata the contract reads but no node can, so
nobody can prove it wrong, and claim the Bridge's deposits once the window passes. Now every
non-canonical variant of that append is refused; what is left to a liar is the canonical encoding
at its limits (256 transactions, items of 0 to 1,024 bytes, undecodable bytes, a last root that
ends in a zero byte), and the watcher proves that, the batch is reverted, the bond slashed, and the
fake withdrawal can never be claimed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode

from contracts.bindings import Sender, TransactionReverted, send_transaction
from contracts.calldata import APPEND_BATCH_SELECTOR, HEAD_BYTES
from devnet.deploy import DeployParams
from devnet.orchestrator import SEQ_A, WATCHER_1, Network, get_json
from devnet.procs import rpc_call, wait_until
from sequencer.stf.codec import encode_tx
from sequencer.stf.constants import MAX_BATCH_TXS, MAX_TX_BYTES
from sequencer.stf.keys import withdrawal_key
from sequencer.stf.smt import check_witness
from sequencer.stf.state import copy_state, genesis_state, set_withdrawal, state_root
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import Deposit, L1Context
from tests.e2e.helpers import TOKEN_UNIT, Clients

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

APPEND_TYPES = ["bytes32", "uint256", "uint256", "uint256", "bytes[]", "bytes32[]"]
WINDOW_SECONDS = 600
DEPOSIT = 5_000 * TOKEN_UNIT
# item lengths at the limits of the encoding: empty, partial words, whole words, the maximum
LENGTHS = (MAX_TX_BYTES, 0, 1, 31, 32, 33, 61, MAX_TX_BYTES - 1)


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def network(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Network]:
    """An L1 of each kind with the contracts deployed and no markets (the queue holds only what the
    test deposits)."""
    net = Network.start(
        tmp_path / "net",
        l1=request.param,
        params=DeployParams(challenge_window_seconds=WINDOW_SECONDS),
        markets=False,
    )
    try:
        yield net
    finally:
        net.stop()


def _garbage(i: int, length: int) -> bytes:
    """Bytes no transaction type reads (type byte 0xff), deterministic per index."""
    body = b""
    while len(body) < length:
        body += hashlib.sha256(i.to_bytes(4, "big") + len(body).to_bytes(4, "big")).digest()
    return (b"\xff" + body)[:length]


def _non_canonical(args: bytes) -> dict[str, bytes]:
    """Variants of the same append a lenient decoder would read, none canonical."""
    wrapped = bytearray(args)
    wrapped[HEAD_BYTES + 32 : HEAD_BYTES + 64] = (2**256 - 32).to_bytes(32, "big")
    dirty = bytearray(args)
    # transaction 2 holds 1 byte: the 31 bytes after it are padding
    third = HEAD_BYTES + 32 + int.from_bytes(args[HEAD_BYTES + 96 : HEAD_BYTES + 128], "big")
    assert int.from_bytes(args[third : third + 32], "big") == 1
    dirty[third + 32 + 1] = 0x01
    return {
        "wrapped offset": bytes(wrapped),
        "dirty padding": bytes(dirty),
        "cut inside the last root": args[:-1],
        "trailing word": args + b"\x00" * 32,
    }


def test_hostile_batch__wrong_root_in_extreme_canonical_encoding__proven_reverted_slashed(
    network: Network,
) -> None:
    clients = Clients(network)
    watcher = network.start_watcher("watcher-1", WATCHER_1)
    liar = Sender.from_key(network.accounts[SEQ_A].private_key)
    clients.rollup.register(liar, DeployParams().min_bond_wei)
    victim = bytes.fromhex(network.accounts[5].address[2:])
    clients.token.mint(clients.deployer, clients.deployer.address, DEPOSIT)
    clients.token.approve(clients.deployer, clients.bridge.address, DEPOSIT)
    clients.bridge.deposit(clients.deployer, victim, DEPOSIT)

    # the honest state after the deposit; the garbage changes nothing
    tip = clients.rollup.tip()
    l2_time = int(clients.w3.eth.get_block("latest")["timestamp"])
    ctx = L1Context(1, {0: clients.bridge.queue_hash(0)}, l2_time)
    honest = genesis_state()
    deposit = encode_tx(Deposit(0, victim, DEPOSIT))
    assert apply_tx(honest, deposit, ctx, clients.config).applied
    txs = [deposit] + [_garbage(i, LENGTHS[i % len(LENGTHS)]) for i in range(1, MAX_BATCH_TXS)]
    # the lie: the honest state plus a withdrawal of every deposited token to the liar, ground until
    # the root ends in a zero byte (the shape a calldata cut short would read back the same)
    liar_l2 = bytes.fromhex(liar.address[2:])
    nonce = 0
    while True:
        fake = copy_state(honest)
        set_withdrawal(fake, liar_l2, nonce, liar_l2, DEPOSIT)
        if state_root(fake)[-1] == 0:
            break
        nonce += 1
    roots = [state_root(honest)] * (MAX_BATCH_TXS - 1) + [state_root(fake)]
    args = abi_encode(APPEND_TYPES, [tip.post_root, 0, 1, l2_time, txs, roots])

    for name, variant in _non_canonical(args).items():
        tx = {"to": clients.rollup.address, "data": "0x" + (APPEND_BATCH_SELECTOR + variant).hex()}
        with pytest.raises(TransactionReverted) as refused:
            send_transaction(clients.w3, liar, {**tx, "gas": 15_000_000}, label=name)
        assert refused.value.reason in ("rollup: non-canonical calldata", "b''"), name
        assert clients.rollup.batch_count() == 0, name

    tx = {"to": clients.rollup.address, "data": "0x" + (APPEND_BATCH_SELECTOR + args).hex()}
    send_transaction(clients.w3, liar, {**tx, "gas": 15_000_000}, label="append")
    (event,) = clients.rollup.batch_appended_events(network.deployment.deploy_block)
    header = event.header
    assert (header.tx_count, header.post_root) == (MAX_BATCH_TXS, state_root(fake))

    # the real watcher process proves the last transaction wrong, in one L1 transaction
    proven = wait_until(
        lambda: clients.rollup.fraud_proven_events(network.deployment.deploy_block) or None,
        120,
        what="fraud proven",
    )
    assert [(f.batch_index, f.tx_index) for f in proven] == [(0, MAX_BATCH_TXS - 1)]
    assert clients.rollup.batch_count() == 0
    info = clients.rollup.sequencer_info(liar.address)
    assert info.slashed and info.bond == 0
    status = wait_until(
        lambda: ((s := get_json(f"{watcher.url}/v1/status"))["reverts_seen"] == 1 and s) or None,
        30,
        what="watcher saw the revert",
    )
    assert status["proofs_sent"][0]["batch"] == 0 and status["critical"] is None
    assert get_json(f"{watcher.url}/health")["ok"] is True

    # the lie verifies against the reverted header, but that header is no longer live: past its
    # window, the fake withdrawal is still refused and the Bridge keeps every deposited token
    witness = fake.tree.witness(withdrawal_key(liar_l2, nonce))
    assert check_witness(witness, header.post_root)
    rpc_call(network.l1_url, "evm_increaseTime", [WINDOW_SECONDS + 1])
    rpc_call(network.l1_url, "evm_mine")
    with pytest.raises(TransactionReverted) as refused:
        clients.bridge.claim_withdrawal(liar, header, liar_l2, nonce, liar_l2, DEPOSIT, witness)
    assert refused.value.reason == "bridge: batch not final"
    assert clients.token.balance_of(clients.bridge.address) == DEPOSIT
