"""The signature worker process recovers what `recover_digest` recovers (valid, forged, malleable,
bad v), and a node with it answers a batch of orders exactly as a node without it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from exchange_fixtures import ETH, order

from sequencer.metrics import REGISTRY
from sequencer.node import NodeOptions
from sequencer.sigpool import SignatureWorker
from sequencer.stf.constants import SECP256K1_N, SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import recover_digest, sign
from sequencer.stf.errors import RollupError
from sequencer.stf.hashing import keccak
from sequencer.stf.types import Signature, SignedOrder
from tests.sequencer.test_admission import exchange_net


def test_worker__recovers_as_recover_digest__valid_forged_malleable_bad_v() -> None:
    digests = [keccak(bytes([i])) for i in range(6)]
    good = sign(b"\x07" * 32, digests[0])
    items = [
        (digests[0], good),
        (digests[1], good),  # another digest: some other address, or none
        (digests[0], Signature(good.r, SECP256K1_N - good.s, 55 - good.v)),  # malleable twin
        (digests[0], Signature(good.r, good.s, 29)),
        (digests[0], Signature(0, good.s, good.v)),
        (digests[0], Signature(SECP256K1_N - 1, 1, 27)),
    ]

    async def go() -> list[bytes | None]:
        worker = SignatureWorker()
        await worker.start()
        try:
            pending = worker.recover(items)
            assert pending is not None
            return await pending
        finally:
            await worker.stop()

    got = asyncio.new_event_loop().run_until_complete(go())
    assert got == [recover_digest(d, s.r, s.s, s.v) for d, s in items]
    assert got[0] is not None and got[2] is None and got[3] is None


def test_worker__sigterm_and_sigint_to_it__still_answers__ends_when_its_stdin_closes() -> None:
    digest = keccak(b"order")
    good = sign(b"\x07" * 32, digest)

    async def go() -> tuple[list[bytes | None], int | None]:
        worker = SignatureWorker()
        await worker.start()
        assert worker.process is not None
        try:
            first = worker.recover([(digest, good)])
            assert first is not None
            await first  # the worker is serving: its signal handling is set
            for sig in (signal.SIGTERM, signal.SIGINT):
                os.kill(worker.process.pid, sig)
            again = worker.recover([(digest, good)])
            assert again is not None
            answer = await asyncio.wait_for(again, 10)
        finally:
            await worker.stop()
        return answer, worker.process.returncode

    answer, code = asyncio.new_event_loop().run_until_complete(go())
    assert answer == [recover_digest(digest, good.r, good.s, good.v)]
    assert code == 0  # it ended because its stdin closed, not by a signal


def test_node_with_worker__batch_of_orders__same_answers_as_without(tmp_path: Path) -> None:
    with_worker = exchange_net(tmp_path / "w.sqlite", NodeOptions(signature_worker=True))
    without = exchange_net(tmp_path / "o.sqlite", NodeOptions())
    orders = [order(i % 2, ETH, SIDE_SELL if i % 2 == 0 else SIDE_BUY, 100, 10, salt=i) for i in range(20)]
    forged = SignedOrder(order(1, ETH, SIDE_BUY, 99, 10, salt=99).order, orders[0].sig)
    batch = [*orders[:5], forged, *orders[5:]]

    def answers(net: Any) -> list[Any]:
        out = net.loop.run_until_complete(net.node.admit_orders(batch))
        return [(type(a).__name__, a.code, str(a)) if isinstance(a, RollupError) else a for a in out]

    assert answers(with_worker) == answers(without)
    assert with_worker.node.signatures is not None and with_worker.node.signatures.sent == len(batch)
    assert answers(with_worker)[5][1] == "bad_signature"
    with_worker.loop.run_until_complete(with_worker.node.close())
    with_worker.close()
    without.close()


def test_node_with_worker__single_orders_in_one_turn__one_frame_each_answered(tmp_path: Path) -> None:
    net = exchange_net(tmp_path / "w.sqlite", NodeOptions(signature_worker=True))
    node = net.node
    singles = [order(0, ETH, SIDE_SELL, 100 + i, 10) for i in range(6)]

    async def at_once() -> list[Any]:
        return await asyncio.gather(*(node.admit_orders([o]) for o in singles))

    rounds, items = _sample("rollup_admission_round_items_count"), _sample("rollup_admission_round_items_sum")
    waits = _sample("rollup_admission_signature_wait_seconds_count")
    answers = net.loop.run_until_complete(at_once())
    assert [a[0].status for a in answers] == ["resting"] * 6
    assert node.signatures is not None and (node.signatures.sent, node.signatures.frames) == (6, 1)
    # one round took all six (they were queued in one turn) and waited once for the worker
    assert _sample("rollup_admission_round_items_count") == rounds + 1
    assert _sample("rollup_admission_round_items_sum") == items + 6
    assert _sample("rollup_admission_signature_wait_seconds_count") == waits + 1
    net.loop.run_until_complete(node.close())
    net.close()


def _sample(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    return 0.0 if value is None else value
