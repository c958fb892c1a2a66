"""The watcher over an in-memory L1 that reorganises: a fraud proof taken out of the L1 is sent
again, whether the watcher read its block (it rewinds) or not yet (it reads past the block)."""

from __future__ import annotations

from contracts.l1 import Mined
from devnet.faulty import corrupt
from prover.proofs import FraudProof
from prover.watcher import Watcher
from sequencer.builder import build_batch
from sequencer.stf.chain import Chain
from sequencer.stf.state import state_root
from tests.sequencer.test_chain import ADDRS, CONFIG, L2_TIME, FakeRollup
from tests.sequencer.test_reorg import ForkableL1


class RollupSink:
    """Sends proofs to a `ForkableL1`: each reverts the batch it proves wrong, in a block of its own."""

    def __init__(self, l1: ForkableL1) -> None:
        self.l1 = l1
        self.proofs: list[FraudProof] = []

    def submit_proof(self, proof: FraudProof) -> Mined:
        self.proofs.append(proof)
        self.l1.log.append(self.l1.rollup.revert_from(proof.header.index))
        return Mined(b"\xaa" * 32, len(self.l1.log))


def wrong_batch(confirmations: int = 0) -> ForkableL1:
    """Two deposits (blocks 1 and 2), then a batch of them whose second root is wrong (block 3)."""
    l1, chain = ForkableL1(FakeRollup(), confirmations), Chain(CONFIG)
    for addr in ADDRS[:2]:
        l1.deposit(addr, 1_000)
    for event in l1.log:
        chain.apply_event(event)
    built = build_batch(chain.state, chain.queue, [], CONFIG, l2_time=L2_TIME)
    assert built is not None
    l1.log.append(l1.rollup.append(corrupt(built, root_at=1)))
    return l1


def test_watcher__proof_taken_out_after_it_was_read__rewound_and_proven_again() -> None:
    l1 = wrong_batch()
    sink = RollupSink(l1)
    w = Watcher(CONFIG, l1, sink, start_block=1)
    w.cursor.window_blocks = 1
    before = l1.snapshot()
    while w.step() or not w.cursor.caught_up or not w.chain.reverts_seen:
        pass
    assert len(sink.proofs) == 1 and w.chain.fraud is None and w.chain.batches == []
    l1.revert(before)  # the block with the proof and its revert is gone
    while w.step() or not w.cursor.caught_up or not w.chain.reverts_seen:
        pass
    assert len(sink.proofs) == 2 and w.cursor.reorgs == 1
    status = w.status()
    assert (status["l1_batches"], status["reverts_seen"], status["pending_fraud"]) == (0, 1, None)
    assert status["state_root"] == "0x" + state_root(w.chain.state).hex()
    assert w.health()["l1"]["reorgs"] == 1


def test_watcher__proof_taken_out_before_it_was_read__proven_again_once_read_past_its_block() -> None:
    l1 = wrong_batch(confirmations=1)
    l1.filler()  # block 4: the batch is read
    sink = RollupSink(l1)
    w = Watcher(CONFIG, l1, sink, start_block=1)
    before = l1.snapshot()
    w.step()
    assert len(sink.proofs) == 1  # mined in block 5, which is read once block 6 is mined
    w.step()
    assert len(sink.proofs) == 1  # not read yet: not sent again
    l1.revert(before)
    l1.filler()  # block 5, without the proof
    w.step()
    assert len(sink.proofs) == 1 and w.cursor.reorgs == 0
    l1.filler()  # block 6: block 5 is read
    w.step()
    assert len(sink.proofs) == 2 and w.cursor.reorgs == 0
