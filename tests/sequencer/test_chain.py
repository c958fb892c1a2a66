"""Derivation, batch building, mempool and fraud-proof building, on an in-memory L1.

`FakeRollup` plays the L1 contract's bookkeeping (header fields, queue position, reverts) so the
service logic can be tested without an EVM; the rules themselves always come from `sequencer.stf`.
"""

from __future__ import annotations

import pytest

from prover.proofs import TxFraudProof, build_fraud_proof
from prover.withdrawals import build_withdrawal_claim
from sequencer.builder import BuiltBatch, build_batch
from sequencer.chain import Chain
from sequencer.l1types import L1Batch, L1Deposit, L1Revert
from sequencer.mempool import Mempool
from sequencer.stf.batch import batch_roots, root_leaf, tx_leaf, verify_merkle_proof
from sequencer.stf.codec import deposit_hash
from sequencer.stf.constants import EMPTY
from sequencer.stf.eip712 import address_of, sign_transfer, sign_withdraw
from sequencer.stf.errors import BadNonce, BadSignature, InsufficientBalance
from sequencer.stf.smt import check_witness
from sequencer.stf.state import get_account, state_root
from sequencer.stf.types import BatchHeader, ChainConfig, Transfer
from sequencer.store import Store

CONFIG = ChainConfig(chain_id=31337, rollup=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
KEYS = [bytes([i + 1]) * 32 for i in range(4)]
ADDRS = [address_of(k) for k in KEYS]
SEQ = bytes.fromhex("70997970c51812dc3a010c7d01b50e0d17dc79c8")


class FakeRollup:
    """The L1's batch bookkeeping, as records (the Rollup contract does this on-chain)."""

    def __init__(self) -> None:
        self.batches: list[L1Batch] = []
        self.deposits: list[L1Deposit] = []
        self.block = 0

    def deposit(self, to: bytes, amount: int) -> L1Deposit:
        i = len(self.deposits)
        self.block += 1
        d = L1Deposit(i, to, amount, deposit_hash(i, to, amount), 1000 + i, self.block, 0)
        self.deposits.append(d)
        return d

    def append(self, built: BuiltBatch, sequencer: bytes = SEQ) -> L1Batch:
        tx_root, roots_root = batch_roots(built.txs, built.roots)
        prev = self.batches[-1].header if self.batches else None
        header = BatchHeader(
            index=len(self.batches),
            prev_root=prev.post_root if prev else EMPTY,
            post_root=built.roots[-1],
            tx_root=tx_root,
            roots_root=roots_root,
            tx_count=len(built.txs),
            queue_start=prev.queue_end if prev else 0,
            queue_end=built.queue_end,
            sequencer=sequencer,
            timestamp=2000 + len(self.batches),
        )
        self.block += 1
        batch = L1Batch(header, tuple(built.txs), tuple(built.roots), self.block, 0, b"\x11" * 32)
        self.batches.append(batch)
        return batch

    def revert_from(self, k: int) -> L1Revert:
        last = len(self.batches) - 1
        del self.batches[k:]
        self.block += 1
        return L1Revert(k, last, self.block, 0)


@pytest.fixture
def store(tmp_path):  # type: ignore[no-untyped-def]
    s = Store(tmp_path / "log.sqlite")
    yield s
    s.close()


def funded_chain(l1: FakeRollup, amounts: list[int]) -> Chain:
    chain = Chain(CONFIG)
    for addr, amount in zip(ADDRS, amounts, strict=False):
        chain.apply_event(l1.deposit(addr, amount))
    built = build_batch(chain.state, chain.deposits, [], CONFIG)
    assert built is not None
    chain.apply_event(l1.append(built))
    assert chain.fraud is None and chain.valid_count == 1
    return chain


def test_build_batch__deposits_then_transfers__chain_verifies_and_balances_move(store: Store) -> None:
    l1 = FakeRollup()
    chain = funded_chain(l1, [1000, 500])
    assert get_account(chain.state, ADDRS[0]).collateral == 1000
    pool = Mempool(CONFIG, store, 100)
    pool.rebase(chain.state, [], _ctx(chain), [])
    pool.submit(sign_transfer(KEYS[0], ADDRS[1], 300, 0, CONFIG))
    pool.submit(sign_transfer(KEYS[0], ADDRS[2], 200, 1, CONFIG))
    built = build_batch(chain.state, chain.deposits, pool.pending, CONFIG)
    assert built is not None and len(built.txs) == 2
    chain.apply_event(l1.append(built))
    assert chain.fraud is None and chain.valid_count == 2
    assert get_account(chain.state, ADDRS[0]).collateral == 500
    assert get_account(chain.state, ADDRS[1]).collateral == 800
    assert get_account(chain.state, ADDRS[2]).collateral == 200
    assert state_root(chain.state) == l1.batches[-1].header.post_root


def test_mempool_submit__rule_breaks__refused_and_nothing_logged(store: Store) -> None:
    l1 = FakeRollup()
    chain = funded_chain(l1, [100])
    pool = Mempool(CONFIG, store, 100)
    pool.rebase(chain.state, [], _ctx(chain), [])
    with pytest.raises(BadNonce):
        pool.submit(sign_transfer(KEYS[0], ADDRS[1], 10, 5, CONFIG))
    with pytest.raises(InsufficientBalance):
        pool.submit(sign_transfer(KEYS[0], ADDRS[1], 101, 0, CONFIG))
    good = sign_transfer(KEYS[0], ADDRS[1], 10, 0, CONFIG)
    forged = Transfer(good.sender, good.to, 11, good.nonce, good.r, good.s, good.v)
    with pytest.raises(BadSignature):
        pool.submit(forged)
    assert store.counts() == {} and len(pool) == 0
    # the pending view counts accepted transactions: a second spend of the same funds is refused
    pool.submit(sign_transfer(KEYS[0], ADDRS[1], 60, 0, CONFIG))
    with pytest.raises(InsufficientBalance):
        pool.submit(sign_transfer(KEYS[0], ADDRS[1], 60, 1, CONFIG))
    assert store.counts() == {"pending": 1}


def test_mempool_submit__same_tx_twice__same_acknowledgement(store: Store) -> None:
    l1 = FakeRollup()
    chain = funded_chain(l1, [100])
    pool = Mempool(CONFIG, store, 100)
    pool.rebase(chain.state, [], _ctx(chain), [])
    tx = sign_transfer(KEYS[0], ADDRS[1], 10, 0, CONFIG)
    assert pool.submit(tx) == pool.submit(tx)
    assert len(pool) == 1


def test_chain__corrupted_root__fraud_found_and_proof_checks(store: Store) -> None:
    l1 = FakeRollup()
    chain = funded_chain(l1, [1000, 1000])
    pool = Mempool(CONFIG, store, 100)
    pool.rebase(chain.state, [], _ctx(chain), [])
    for n in range(3):
        pool.submit(sign_transfer(KEYS[0], ADDRS[1], 10, n, CONFIG))
    built = build_batch(chain.state, chain.deposits, pool.pending, CONFIG, corrupt_root_at=1)
    assert built is not None
    chain.apply_event(l1.append(built))
    assert chain.fraud is not None and (chain.fraud.batch_index, chain.fraud.tx_index) == (1, 1)
    assert chain.valid_count == 1  # the bad batch is not applied
    proof = build_fraud_proof(chain, chain.fraud)
    assert isinstance(proof, TxFraudProof)
    n = proof.header.tx_count
    assert verify_merkle_proof(tx_leaf(proof.tx), 1, n, proof.tx_proof, proof.header.tx_root)
    assert verify_merkle_proof(root_leaf(proof.pre_root), 0, n, proof.pre_proof, proof.header.roots_root)
    assert verify_merkle_proof(root_leaf(proof.post_root), 1, n, proof.post_proof, proof.header.roots_root)
    assert check_witness(proof.witnesses[0], proof.pre_root)
    # a later batch on top is not applied either; a revert from the bad batch restores the chain
    pool.submit(sign_transfer(KEYS[1], ADDRS[2], 5, 0, CONFIG))
    later = build_batch(chain.state, chain.deposits, pool.pending[3:], CONFIG)
    assert later is not None
    chain.apply_event(l1.append(later))
    assert chain.valid_count == 1
    chain.apply_event(l1.revert_from(1))
    assert chain.fraud is None and len(chain.batches) == 1
    assert state_root(chain.state) == l1.batches[0].header.post_root


def test_withdrawal_claim__built_from_derived_chain__witness_checks(store: Store) -> None:
    l1 = FakeRollup()
    chain = funded_chain(l1, [1000])
    pool = Mempool(CONFIG, store, 100)
    pool.rebase(chain.state, [], _ctx(chain), [])
    pool.submit(sign_withdraw(KEYS[0], ADDRS[3], 400, 0, CONFIG))
    built = build_batch(chain.state, chain.deposits, pool.pending, CONFIG)
    assert built is not None
    chain.apply_event(l1.append(built))
    claim = build_withdrawal_claim(chain, ADDRS[0], 0)
    assert (claim.l1_recipient, claim.amount) == (ADDRS[3], 400)
    assert check_witness(claim.witness, claim.header.post_root)
    assert get_account(chain.state, ADDRS[0]).collateral == 600


def _ctx(chain: Chain):  # type: ignore[no-untyped-def]
    from sequencer.stf.types import L1Context

    return L1Context(queue_end=0, deposit_hashes={})


def test_chain__batches_past_the_window__snapshots_dropped(store: Store) -> None:
    l1 = FakeRollup()
    chain = funded_chain(l1, [1000])
    chain.challenge_window_seconds = 2  # FakeRollup stamps batch k at 2000 + k
    pool = Mempool(CONFIG, store, 100)
    pool.rebase(chain.state, [], _ctx(chain), [])
    for n in range(4):
        pool.submit(sign_transfer(KEYS[0], ADDRS[1], 1, n, CONFIG))
        built = build_batch(chain.state, chain.deposits, pool.pending[-1:], CONFIG)
        assert built is not None
        chain.apply_event(l1.append(built))
    # batches 0..4 stamped 2000..2004: those older than 2 s at 2004 are final
    assert sorted(chain.snapshots) == [2, 3, 4]
    chain.apply_event(l1.revert_from(3))
    assert state_root(chain.state) == l1.batches[-1].header.post_root
