"""The watcher over an in-memory L1: finds the first wrong root, proves it once, retries failures;
the proof of a forced Cancel left out of a root."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from contracts.follow import TransientError
from contracts.health import HealthLimits
from contracts.l1 import Mined
from devnet.faulty import corrupt
from prover import watcher as watcher_module
from prover.proofs import FraudProof, TxFraudProof
from prover.watcher import Watcher
from sequencer.builder import BuiltBatch, build_batch
from sequencer.mempool import Mempool
from sequencer.stf.codec import encode_order_state, encode_tx
from sequencer.stf.eip712 import order_digest, sign_cancel, sign_transfer
from sequencer.stf.keys import global_key, order_key
from sequencer.stf.l1types import L1Batch, L1Event, L1Frozen, L1Revert
from sequencer.stf.smt import check_witness, write_witness
from sequencer.stf.state import copy_state, set_next_deposit_index
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import Cancel, ForcedTx, L1Context, Order, OrderState
from sequencer.store import Store
from tests.sequencer.test_chain import ADDRS, CONFIG, KEYS, L2_TIME, FakeRollup, _ctx, funded_chain


class Reader:
    def __init__(self) -> None:
        self.log: list[L1Event] = []

    def head_block(self) -> int:
        return len(self.log)

    def block_hash(self, number: int) -> bytes | None:
        return number.to_bytes(32, "big") if number <= len(self.log) else None

    def events(self, a: int, b: int) -> list[L1Event]:
        return self.log[max(a, 1) - 1 : b]


NEXT_BLOCK = 1 << 40
"""The block a fake proof is mined in: one the tests' L1 never reaches (its revert never shows)."""


class Sink:
    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        self.proofs: list[FraudProof] = []

    def submit_proof(self, proof: FraudProof) -> Mined:
        self.proofs.append(proof)
        if self.failures:
            raise RuntimeError(self.failures.pop(0))
        return Mined(b"\xaa" * 32, NEXT_BLOCK)


def scenario(tmp_path: Path) -> tuple[Reader, FakeRollup]:
    l1 = FakeRollup()
    chain = funded_chain(l1, [1000, 1000])
    store = Store(tmp_path / "s.sqlite")
    pool = Mempool(CONFIG, store, 10)
    pool.rebase(chain.state, [], _ctx(chain), [])
    for n in range(3):
        pool.submit(sign_transfer(KEYS[0], ADDRS[1], 5, n, CONFIG))
    built = build_batch(chain.state, chain.queue, pool.pending, CONFIG, l2_time=L2_TIME)
    assert built is not None
    built = corrupt(built, root_at=2)
    l1.append(built)
    reader = Reader()
    reader.log = [*l1.queue, *l1.batches]
    return reader, l1


def test_step__wrong_root__one_proof_of_the_first_wrong_tx(tmp_path: Path) -> None:
    reader, _ = scenario(tmp_path)
    sink = Sink([])
    w = Watcher(CONFIG, reader, sink, start_block=1)
    w.step()
    w.step()
    assert len(sink.proofs) == 1
    proof = sink.proofs[0]
    assert isinstance(proof, TxFraudProof) and (proof.header.index, proof.tx_index) == (1, 2)
    assert check_witness(proof.witnesses[0], proof.pre_root)
    assert w.status()["pending_fraud"] == {"batch": 1, "tx": 2}


def test_step__l1_error_then_success__retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watcher_module, "RETRY_SECONDS", 0.0)
    reader, _ = scenario(tmp_path)
    sink = Sink(["connection reset"])
    w = Watcher(CONFIG, reader, sink, start_block=1)
    with pytest.raises(TransientError) as failed:  # retried by the loop, with backoff
        w.step()
    assert isinstance(failed.value.__cause__, RuntimeError)
    w.step()
    assert len(sink.proofs) == 2 and w.proven and w.proofs_lost == 0


def test_step__another_watcher_won__not_retried(tmp_path: Path) -> None:
    reader, _ = scenario(tmp_path)
    sink = Sink(["Rollup.prove_tx_fraud reverted: rollup: unknown batch"])
    w = Watcher(CONFIG, reader, sink, start_block=1)
    w.step()
    w.step()
    assert len(sink.proofs) == 1 and w.proofs_lost == 1 and not w.proven


def test_step__unreadable_batch__critical_reported_watching_goes_on_and_a_revert_clears_it(
    tmp_path: Path,
) -> None:
    reader, _ = scenario(tmp_path)
    wrong = reader.log[-1]
    assert isinstance(wrong, L1Batch)
    reader.log[-1] = dataclasses.replace(wrong, txs=(), roots=(), unreadable="non-canonical calldata: x")
    sink = Sink([])
    w = Watcher(CONFIG, reader, sink, start_block=1)
    w.step()
    w.step()  # no exception, no retry loop: the batch is reported, not re-read
    assert sink.proofs == []
    assert w.critical is not None and "batch 1" in w.critical and "non-canonical calldata: x" in w.critical
    assert w.status()["critical"] == w.critical
    assert w.status()["batches_verified"] == 1 and w.status()["l1_batches"] == 2

    # later L1 events are still read: a revert removes the batch, and a new batch 1 is checked
    reader.log.append(L1Revert(1, 1, len(reader.log) + 1, 0))
    w.step()
    assert w.critical is None and w.status()["l1_batches"] == 1
    reader.log.append(dataclasses.replace(wrong, l1_block=len(reader.log) + 1))
    w.step()
    w.step()
    assert [(p.header.index, p.tx_index) for p in sink.proofs if isinstance(p, TxFraudProof)] == [(1, 2)]


def test_health__unreadable_batch__503_with_what_and_where(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from prover.main import create_watcher_app

    reader, _ = scenario(tmp_path)
    wrong = reader.log[-1]
    assert isinstance(wrong, L1Batch)
    reader.log[-1] = dataclasses.replace(wrong, txs=(), roots=(), unreadable="tx_root and roots_root")
    w = Watcher(CONFIG, reader, Sink([]), start_block=1)
    w.alive = True
    client = TestClient(create_watcher_app(w))
    reply = client.get("/health")
    assert reply.status_code == 503 and [r["code"] for r in reply.json()["reasons"]] == ["not_synced"]
    w.step()
    reply = client.get("/health")
    assert reply.status_code == 503
    assert [r["code"] for r in reply.json()["reasons"]] == ["critical"]
    assert (
        "batch 1 (L1 tx 0x" in reply.json()["critical"]
        and "tx_root and roots_root" in reply.json()["critical"]
    )


def test_run__l1_history_disagrees_with_itself__loop_stops_and_health_says_why(tmp_path: Path) -> None:
    import asyncio

    from fastapi.testclient import TestClient

    from prover.main import create_watcher_app

    reader, _ = scenario(tmp_path)
    batch = reader.log[-1]
    reader.log.append(dataclasses.replace(batch, l1_block=len(reader.log) + 1))  # batch 1 again
    w = Watcher(CONFIG, reader, Sink([]), start_block=1, challenge=False)
    asyncio.run(asyncio.wait_for(w.run(), 10))  # returns: stopped
    reply = TestClient(create_watcher_app(w)).get("/health")
    assert reply.status_code == 503 and not w.alive
    assert reply.json()["critical"].startswith("watcher: the L1 history disagrees with itself")


class StoppableReader(Reader):
    """A reader whose calls hang while the L1 is stopped, each giving up after 0.1 s."""

    def __init__(self) -> None:
        super().__init__()
        self.running = threading.Event()
        self.running.set()

    def head_block(self) -> int:
        if not self.running.wait(0.1):
            raise TimeoutError("read timed out")
        return super().head_block()


def test_health__l1_hangs_beyond_the_limit__503_l1_unreachable__then_200_and_last_error_cleared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from contracts import follow

    monkeypatch.setattr(follow, "BACKOFF_MAX_SECONDS", 0.1)
    reader = StoppableReader()
    reader.log = scenario(tmp_path)[0].log
    w = Watcher(
        CONFIG, reader, Sink([]), start_block=1, poll_seconds=0.01, limits=HealthLimits(l1_silence_s=0.5)
    )

    async def until(condition: Callable[[], bool], what: str) -> None:
        deadline = asyncio.get_running_loop().time() + 15
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.01)

    def codes() -> list[str]:
        return [r["code"] for r in w.health()["reasons"]]

    async def main() -> None:
        task = asyncio.create_task(w.run())
        try:
            await until(lambda: w.health()["ok"] or "critical" in codes(), "the first read")
            assert w.health()["synced"] is True
            reader.running.clear()  # the L1 stops answering
            await until(lambda: "l1_unreachable" in codes(), "l1_unreachable")
            await until(lambda: w.health()["last_error"] is not None, "the timed-out read in last_error")
            assert w.health()["ok"] is False
            reader.running.set()
            await until(lambda: "l1_unreachable" not in codes(), "the L1 answering again")
            await until(lambda: w.health()["last_error"] is None, "last_error cleared")
        finally:
            reader.running.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def test_health__proof_fails_beyond_the_limit__503_proof_stalled__then_sent_and_cleared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watcher_module, "RETRY_SECONDS", 0.0)
    reader, _ = scenario(tmp_path)
    sink = Sink(["connection reset"])
    w = Watcher(CONFIG, reader, sink, start_block=1, limits=HealthLimits(send_stall_s=0))
    w.alive = True
    with pytest.raises(TransientError):
        w.step()
    health = w.health()
    assert [r["code"] for r in health["reasons"]] == ["proof_stalled"]
    assert health["last_error"] == "connection reset"
    w.step()  # the proof goes through
    health = w.health()
    assert health["ok"] is True and health["last_error"] is None and w.proven


def test_step__forced_cancel_left_out_of_the_root__proof_carries_the_order_leaf(tmp_path: Path) -> None:
    """The lie: a batch consumes a forced Cancel's queue entry but leaves the order uncancelled
    (so that it could still fill). The watcher proves that transaction with the witnesses of the
    Global and the Order leaf; re-executed on them, the honest root is not the claimed one."""
    l1 = FakeRollup()
    chain = funded_chain(l1, [1000])
    ask = Order(ADDRS[0], 0, 1, 3_000, 1_000, 0, 0, 1)
    inner = encode_tx(Cancel(ask, sign_cancel(KEYS[0], ask, CONFIG)))
    entry = l1.forced(inner)
    forced = encode_tx(ForcedTx(entry.index, inner))
    lie = copy_state(chain.state)
    set_next_deposit_index(lie, entry.index + 1)  # consumed, the cancel not applied
    l1.append(BuiltBatch([forced], [lie.tree.root], entry.index + 1, L2_TIME, [], []))
    reader = Reader()
    reader.log = [*l1.queue, *l1.batches]
    sink = Sink([])

    Watcher(CONFIG, reader, sink, start_block=1).step()

    (proof,) = sink.proofs
    assert isinstance(proof, TxFraudProof) and (proof.header.index, proof.tx_index) == (1, 0)
    assert proof.tx == forced and proof.post_root == lie.tree.root
    order_leaf = order_key(order_digest(ask, CONFIG))
    assert [w.key for w in proof.witnesses] == [global_key(), order_leaf]
    honest = copy_state(chain.state)
    ctx = L1Context(entry.index + 1, {entry.index: entry.hash}, L2_TIME)
    assert apply_tx(honest, forced, ctx, CONFIG).applied
    root = proof.pre_root
    for w in proof.witnesses:
        assert check_witness(w, root)
        root = write_witness(w, honest.tree.get(w.key) or b"")
    assert root == honest.tree.root != proof.post_root
    assert honest.tree.get(order_leaf) == encode_order_state(OrderState(0, True))


def test_health__rollup_frozen__503_rollup_frozen_and_status_says_where(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from prover.main import create_watcher_app

    l1 = FakeRollup()
    funded_chain(l1, [1000, 1000])
    reader = Reader()
    reader.log = [*l1.queue, *l1.batches]
    w = Watcher(CONFIG, reader, Sink([]), start_block=1)
    w.alive = True
    client = TestClient(create_watcher_app(w))
    w.step()
    assert client.get("/health").status_code == 200 and w.status()["frozen"] is None
    tip = l1.batches[-1].header
    reader.log.append(L1Frozen(1, tip.post_root, tip.queue_end, 3_000, len(reader.log) + 1, 0))
    w.step()
    reply = client.get("/health")
    assert reply.status_code == 503 and [r["code"] for r in reply.json()["reasons"]] == ["rollup_frozen"]
    assert w.status()["frozen"] == {
        "batch_count": 1,
        "post_root": "0x" + tip.post_root.hex(),
        "queue_end": tip.queue_end,
        "timestamp": 3_000,
    }
    assert w.status()["state_root"] == "0x" + tip.post_root.hex()
