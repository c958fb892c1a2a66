"""A bogus fraud proof against an honest batch is rejected and slashes no one."""

from __future__ import annotations

import dataclasses

import pytest

from contracts.bindings import Sender, TransactionReverted
from contracts.l1 import Web3L1
from devnet.markets import governance_payloads
from devnet.orchestrator import SEQ_A, WATCHER_1, Network, get_json
from devnet.procs import wait_until
from prover.proofs import build_tx_fraud_proof
from sequencer.client import TraderClient
from sequencer.stf.chain import Chain
from sequencer.stf.codec import decode_tx
from sequencer.stf.eip712 import address_of
from sequencer.stf.types import Transfer
from tests.e2e.helpers import TOKEN_UNIT, Clients

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_prove_tx_fraud__honest_batch__rejected_and_nobody_slashed(
    network: Network, clients: Clients
) -> None:
    seq = network.start_sequencer("sequencer-a", SEQ_A)
    keys = clients.fund(2, 1_000 * TOKEN_UNIT)
    wait_until(
        lambda: get_json(f"{seq.url}/v1/status")["next_deposit_index"] == len(governance_payloads()) + 2,
        60,
        what="deposits batched",
    )
    with TraderClient(seq.url, keys[0], clients.config) as trader:
        acks = [trader.transfer(address_of(keys[1]), 10 * TOKEN_UNIT) for _ in range(3)]
        for ack in acks:
            trader.wait_batched(ack.hash)

    l1 = Web3L1(network.l1_url, network.deployment)
    chain = Chain(l1.chain_config())
    for event in l1.events(network.deployment.deploy_block, l1.head_block()):
        chain.apply_event(event)
    assert chain.fraud is None
    batch = next(b for b in chain.batches if any(isinstance(decode_tx(t), Transfer) for t in b.txs))
    i = next(j for j, t in enumerate(batch.txs) if isinstance(decode_tx(t), Transfer))
    proof = build_tx_fraud_proof(chain, batch, chain.pre_state_of(batch.header.index), i)

    challenger = Sender.from_key(network.accounts[WATCHER_1].private_key)
    seq_address = network.accounts[SEQ_A].address
    bond_before = clients.rollup.sequencer_info(seq_address)
    count_before = clients.rollup.batch_count()

    with pytest.raises(TransactionReverted) as honest:
        clients.rollup.submit_proof(challenger, proof)
    assert honest.value.reason == "rollup: no fraud"

    # a proof that lies about a witness is malformed, not fraud
    w0 = proof.witnesses[0]
    lying = dataclasses.replace(
        proof, witnesses=[dataclasses.replace(w0, value=b"\x00" * 31 + b"\x07"), *proof.witnesses[1:]]
    )
    with pytest.raises(TransactionReverted) as bad_witness:
        clients.rollup.submit_proof(challenger, lying)
    assert bad_witness.value.reason == "verifier: bad witness"

    # a "post root" that is not the committed one does not verify against the batch
    forged = dataclasses.replace(proof, post_root=b"\x42" * 32)
    with pytest.raises(TransactionReverted):
        clients.rollup.submit_proof(challenger, forged)

    assert clients.rollup.sequencer_info(seq_address) == bond_before
    assert not bond_before.slashed
    assert clients.rollup.batch_count() == count_before
    assert clients.rollup.fraud_proven_events(network.deployment.deploy_block) == []
