"""Derivation, batch building, mempool and fraud-proof building, on an in-memory L1.

`FakeRollup` plays the L1 contract's bookkeeping (header fields, queue position, reverts) so the
service logic can be tested without an EVM; the rules themselves always come from `sequencer.stf`.
"""

from __future__ import annotations

import dataclasses

import pytest

from devnet.faulty import corrupt
from prover.proofs import TxFraudProof, build_fraud_proof
from prover.withdrawals import build_withdrawal_claim
from sequencer.builder import BuiltBatch, build_batch
from sequencer.mempool import Mempool
from sequencer.stf.batch import batch_roots, root_leaf, tx_leaf, verify_merkle_proof
from sequencer.stf.chain import Chain
from sequencer.stf.codec import decode_tx, deposit_hash, encode_message, forced_hash, message_hash
from sequencer.stf.constants import EMPTY
from sequencer.stf.eip712 import address_of, sign_transfer, sign_withdraw
from sequencer.stf.errors import BadNonce, BadSignature, InsufficientBalance
from sequencer.stf.l1types import L1Batch, L1Deposit, L1ForcedTx, L1Message, L1QueueEntry, L1Revert
from sequencer.stf.smt import check_witness
from sequencer.stf.state import get_account, get_markets, get_next_deposit_index, state_root
from sequencer.stf.types import (
    BatchHeader,
    ChainConfig,
    Deposit,
    L1Context,
    MarketParams,
    SetMarket,
    Transfer,
)
from sequencer.stf.types import (
    L1Message as L1MessageTx,
)
from sequencer.store import Store

CONFIG = ChainConfig(chain_id=31337, rollup=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
KEYS = [bytes([i + 1]) * 32 for i in range(4)]
ADDRS = [address_of(k) for k in KEYS]
SEQ = bytes.fromhex("70997970c51812dc3a010c7d01b50e0d17dc79c8")
L2_TIME = 1_700_000_000
"""The clock of the batches built here."""


class FakeRollup:
    """The L1's batch bookkeeping, as records (the Rollup contract does this on-chain)."""

    def __init__(self) -> None:
        self.batches: list[L1Batch] = []
        self.queue: list[L1QueueEntry] = []
        """The Bridge queue: deposits, governance messages and forced transactions."""
        self.block = 0

    def deposit(self, to: bytes, amount: int) -> L1Deposit:
        i = len(self.queue)
        self.block += 1
        d = L1Deposit(i, to, amount, deposit_hash(i, to, amount), 1000 + i, self.block, 0)
        self.queue.append(d)
        return d

    def message(self, payload: bytes) -> L1Message:
        i = len(self.queue)
        self.block += 1
        m = L1Message(i, payload, message_hash(i, payload), 1000 + i, self.block, 0)
        self.queue.append(m)
        return m

    def forced(self, signed_tx: bytes) -> L1ForcedTx:
        i = len(self.queue)
        self.block += 1
        f = L1ForcedTx(i, signed_tx, forced_hash(i, signed_tx), 1000 + i, self.block, 0)
        self.queue.append(f)
        return f

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
            l2_time=built.l2_time,
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
    built = build_batch(chain.state, chain.queue, [], CONFIG, l2_time=L2_TIME)
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
    built = build_batch(chain.state, chain.queue, pool.pending, CONFIG, l2_time=L2_TIME)
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
    built = build_batch(chain.state, chain.queue, pool.pending, CONFIG, l2_time=L2_TIME)
    assert built is not None
    built = corrupt(built, root_at=1)
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
    later = build_batch(chain.state, chain.queue, pool.pending[3:], CONFIG, l2_time=L2_TIME)
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
    built = build_batch(chain.state, chain.queue, pool.pending, CONFIG, l2_time=L2_TIME)
    assert built is not None
    chain.apply_event(l1.append(built))
    claim = build_withdrawal_claim(chain, ADDRS[0], 0)
    assert (claim.l1_recipient, claim.amount) == (ADDRS[3], 400)
    assert check_witness(claim.witness, claim.header.post_root)
    assert get_account(chain.state, ADDRS[0]).collateral == 600


def _ctx(chain: Chain) -> L1Context:
    return L1Context(queue_end=0, queue_hashes={}, l2_time=chain.tip_l2_time)


PARAMS = MarketParams(
    tick_size=1,
    lot_size=1_000,
    max_position=10**12,
    imr_bps=1_000,
    mmr_bps=500,
    maker_fee_bps=-1,
    taker_fee_bps=5,
    liquidation_penalty_bps=100,
    breaker_bps=1_500,
    max_funding_bps=50,
    funding_interval=60,
    breaker_window=60,
    max_oracle_age=60,
)


def test_build_batch__deposits_and_messages__consumed_in_queue_order(store: Store) -> None:
    l1 = FakeRollup()
    chain = Chain(CONFIG)
    listing = encode_message(SetMarket(0, PARAMS))
    for event in (
        l1.deposit(ADDRS[0], 100),
        l1.message(listing),
        l1.message(b"\xee"),  # an invalid payload is consumed all the same
        l1.deposit(ADDRS[1], 7),
    ):
        chain.apply_event(event)
    assert [i for i in chain.queue] == [0, 1, 2, 3]
    built = build_batch(chain.state, chain.queue, [], CONFIG, l2_time=L2_TIME)
    assert built is not None and (built.queue_end, built.l2_time) == (4, L2_TIME)
    assert [decode_tx(raw) for raw in built.txs] == [
        Deposit(0, ADDRS[0], 100),
        L1MessageTx(1, listing),
        L1MessageTx(2, b"\xee"),
        Deposit(3, ADDRS[1], 7),
    ]
    chain.apply_event(l1.append(built))
    assert chain.fraud is None and chain.valid_count == 1
    assert get_next_deposit_index(chain.state) == 4
    assert [m.params for m in get_markets(chain.state)] == [PARAMS]
    assert get_account(chain.state, ADDRS[1]).collateral == 7
    # a batch holds at most `max_txs` queue entries; the rest wait for the next one
    l1.message(listing)
    chain.apply_event(l1.queue[-1])
    chain.apply_event(l1.deposit(ADDRS[2], 5))
    first = build_batch(chain.state, chain.queue, [], CONFIG, l2_time=L2_TIME, max_txs=1)
    assert first is not None and first.queue_end == 5 and len(first.txs) == 1


def test_chain_context__queue_range_of_the_batch_and_its_clock() -> None:
    l1 = FakeRollup()
    chain = Chain(CONFIG)
    for i in range(3):
        chain.apply_event(l1.deposit(ADDRS[0], 10 + i))
    chain.apply_event(l1.message(b"\x01"))
    built = build_batch(chain.state, chain.queue, [], CONFIG, l2_time=L2_TIME + 5, max_txs=2)
    assert built is not None
    batch = l1.append(built)
    chain.apply_event(batch)
    ctx = chain.context(batch)
    assert (ctx.queue_end, ctx.l2_time) == (2, L2_TIME + 5)
    assert dict(ctx.queue_hashes) == {0: l1.queue[0].hash, 1: l1.queue[1].hash}
    assert chain.tip_l2_time == L2_TIME + 5
    rest = build_batch(chain.state, chain.queue, [], CONFIG, l2_time=L2_TIME + 6)
    assert rest is not None
    later = l1.append(rest)
    chain.apply_event(later)
    assert dict(chain.context(later).queue_hashes) == {2: l1.queue[2].hash, 3: message_hash(3, b"\x01")}
    assert chain.fraud is None and chain.valid_count == 2


def test_chain__batches_past_the_window__snapshots_dropped(store: Store) -> None:
    l1 = FakeRollup()
    chain = funded_chain(l1, [1000])
    chain.challenge_window_seconds = 2  # FakeRollup stamps batch k at 2000 + k
    pool = Mempool(CONFIG, store, 100)
    pool.rebase(chain.state, [], _ctx(chain), [])
    for n in range(4):
        pool.submit(sign_transfer(KEYS[0], ADDRS[1], 1, n, CONFIG))
        built = build_batch(chain.state, chain.queue, pool.pending[-1:], CONFIG, l2_time=L2_TIME)
        assert built is not None
        chain.apply_event(l1.append(built))
        if n == 2:
            assert sorted(chain.snapshots) == [0, 1, 2, 3]  # final, but a reorg may still remove them
            chain.settle(l1.block)
    # batches 0..4 stamped 2000..2004: those older than 2 s at 2004 are final, and settled
    assert sorted(chain.snapshots) == [2, 3, 4]
    chain.apply_event(l1.revert_from(3))
    assert state_root(chain.state) == l1.batches[-1].header.post_root


def test_chain__unreadable_batch__stops_there_builds_nothing_and_a_revert_resumes(store: Store) -> None:
    l1 = FakeRollup()
    chain = funded_chain(l1, [1000])
    root_before = state_root(chain.state)
    pool = Mempool(CONFIG, store, 10)
    pool.rebase(chain.state, [], _ctx(chain), [])
    pool.submit(sign_transfer(KEYS[0], ADDRS[1], 5, 0, CONFIG))
    built = build_batch(chain.state, chain.queue, pool.pending, CONFIG, l2_time=L2_TIME)
    assert built is not None
    good = l1.append(built)
    unreadable = dataclasses.replace(good, txs=(), roots=(), unreadable="non-canonical calldata")
    chain.apply_event(unreadable)
    assert chain.unreadable is not None and chain.unreadable.batch_index == 1
    assert chain.fraud is None and chain.valid_count == 1 and state_root(chain.state) == root_before
    # nothing is built on it, and a batch after it is not applied either
    assert not chain.adopt_own(good, chain.state)
    l1.revert_from(1)
    chain.apply_event(L1Revert(1, 1, l1.block + 1, 0))
    assert chain.unreadable is None and len(chain.batches) == 1
    chain.apply_event(good)
    assert chain.valid_count == 2 and get_account(chain.state, ADDRS[1]).collateral == 5
