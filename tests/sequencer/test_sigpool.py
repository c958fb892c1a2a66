"""The signature worker process computes what `order_digest` and `recover_sig` compute (valid,
forged, malleable, bad v), and a node with it answers a batch of orders exactly as a node
without it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop
from exchange_fixtures import ETH, order
from stf_vectors import CONFIG

from sequencer import sigpool
from sequencer.metrics import REGISTRY
from sequencer.node import NodeOptions
from sequencer.sigpool import SignatureWorker
from sequencer.stf.constants import SECP256K1_N, SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import order_digest, recover_sig
from sequencer.stf.errors import RollupError
from sequencer.stf.types import ChainConfig, Signature, SignedOrder
from tests.sequencer.test_admission import exchange_net


def _run(new_loop: Callable[[], asyncio.AbstractEventLoop], coroutine: Any) -> Any:
    loop = new_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


LOOPS = pytest.mark.parametrize(
    "new_loop", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)
"""The node runs on uvloop (whose transports are not asyncio's classes); tests mostly on asyncio."""


@LOOPS
def test_worker__digest_and_signer_as_order_digest_and_recover_sig__valid_forged_malleable_bad_v(
    new_loop: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    good = order(0, ETH, SIDE_SELL, 100, 10)
    other = order(1, ETH, SIDE_BUY, 99, 20, salt=7)
    items = [
        good,
        SignedOrder(other.order, good.sig),  # another order: some other address, or none
        SignedOrder(
            good.order, Signature(good.sig.r, SECP256K1_N - good.sig.s, 55 - good.sig.v)
        ),  # malleable
        SignedOrder(good.order, Signature(good.sig.r, good.sig.s, 29)),
        SignedOrder(good.order, Signature(0, good.sig.s, good.sig.v)),
        SignedOrder(good.order, Signature(SECP256K1_N - 1, 1, 27)),
        other,
    ]

    async def go() -> list[tuple[bytes, bytes | None]]:
        worker = SignatureWorker(CONFIG)
        await worker.start()
        try:
            pending = worker.recover(items)
            assert pending is not None
            return await pending
        finally:
            await worker.stop()

    got = _run(new_loop, go())
    expected = [
        (order_digest(o.order, CONFIG), recover_sig(order_digest(o.order, CONFIG), o.sig)) for o in items
    ]
    assert got == expected
    assert got[0][1] == good.order.trader and got[6][1] == other.order.trader
    assert got[2][1] is None and got[3][1] is None


def test_worker__digests_in_the_domain_it_was_started_with() -> None:
    good = order(0, ETH, SIDE_SELL, 100, 10)
    elsewhere = ChainConfig(chain_id=CONFIG.chain_id + 1, rollup=CONFIG.rollup)

    async def go() -> list[tuple[bytes, bytes | None]]:
        worker = SignatureWorker(elsewhere)
        await worker.start()
        try:
            pending = worker.recover([good])
            assert pending is not None
            return await pending
        finally:
            await worker.stop()

    ((digest, signer),) = asyncio.new_event_loop().run_until_complete(go())
    assert digest == order_digest(good.order, elsewhere) != order_digest(good.order, CONFIG)
    assert signer != good.order.trader  # signed for the other domain


def test_worker__order_that_does_not_encode__not_sent_done_inline() -> None:
    good = order(0, ETH, SIDE_SELL, 100, 10)
    unencodable = SignedOrder(good.order, Signature(1 << 256, good.sig.s, good.sig.v))

    async def go() -> object:
        worker = SignatureWorker(CONFIG)
        await worker.start()
        try:
            return worker.recover([good, unencodable]), worker.sent
        finally:
            await worker.stop()

    assert asyncio.new_event_loop().run_until_complete(go()) == (None, 0)


@LOOPS
def test_worker__sigterm_and_sigint_to_it__still_answers__ends_when_its_stdin_closes(
    new_loop: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    good = order(0, ETH, SIDE_SELL, 100, 10)

    async def go() -> tuple[list[tuple[bytes, bytes | None]], int | None]:
        worker = SignatureWorker(CONFIG)
        await worker.start()
        assert worker.process is not None
        try:
            first = worker.recover([good])
            assert first is not None
            await first  # the worker is serving: its signal handling is set
            for sig in (signal.SIGTERM, signal.SIGINT):
                os.kill(worker.process.pid, sig)
            again = worker.recover([good])
            assert again is not None
            answer = await asyncio.wait_for(again, 10)
        finally:
            await worker.stop()
        return answer, worker.process.returncode

    answer, code = _run(new_loop, go())
    assert answer == [(order_digest(good.order, CONFIG), good.order.trader)]
    assert code == 0  # it ended because its stdin closed, not by a signal


@LOOPS
def test_worker__killed_with_a_request_in_flight__its_future_fails__on_answers_told(
    new_loop: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    good = order(0, ETH, SIDE_SELL, 100, 10)
    told: list[bool] = []

    async def go() -> BaseException | None:
        worker = SignatureWorker(CONFIG)
        await worker.start()
        assert worker.process is not None
        try:
            os.kill(worker.process.pid, signal.SIGSTOP)  # it cannot answer what follows
            worker.on_answers = lambda: told.append(True)
            pending = worker.recover([good])
            assert pending is not None and worker.alive
            os.kill(worker.process.pid, signal.SIGKILL)
            try:
                await asyncio.wait_for(pending, 10)
            except RuntimeError as exc:
                assert not worker.alive and worker.recover([good]) is None  # inline from now on
                return exc
            return None
        finally:
            await worker.stop()

    failed = _run(new_loop, go())
    assert isinstance(failed, RuntimeError) and "signature worker gone" in str(failed)
    assert told  # a round waiting for it was told, and computes the signers itself


@LOOPS
def test_worker__killed__next_request_done_inline_and_a_new_worker_started__which_answers(
    new_loop: Callable[[], asyncio.AbstractEventLoop], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sigpool, "RESTART_INTERVAL_S", 0.0)
    good = order(0, ETH, SIDE_SELL, 100, 10)

    async def go() -> tuple[object, list[tuple[bytes, bytes | None]], int, tuple[int, int]]:
        worker = SignatureWorker(CONFIG)
        await worker.start()
        assert worker.process is not None
        first = worker.process.pid
        try:
            os.kill(first, signal.SIGKILL)
            await asyncio.wait_for(worker.process.wait(), 10)
            inline = worker.recover([good])  # finds it gone: inline, and a new one is started
            for _ in range(500):
                if worker.alive:
                    break
                await asyncio.sleep(0.01)
            again = worker.recover([good])
            assert again is not None and worker.process is not None
            return inline, await asyncio.wait_for(again, 10), worker.starts, (first, worker.process.pid)
        finally:
            await worker.stop()

    inline, answer, starts, (first, second) = _run(new_loop, go())
    assert inline is None and starts == 2 and second != first
    assert answer == [(order_digest(good.order, CONFIG), good.order.trader)]


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
    assert with_worker.node.intake.signatures is not None and with_worker.node.intake.signatures.sent == len(
        batch
    )
    assert answers(with_worker)[5][1] == "bad_signature"
    with_worker.loop.run_until_complete(with_worker.node.close())
    with_worker.close()
    without.close()


def test_node_with_worker__single_orders__one_frame_each__rounds_run_as_answers_arrive(
    tmp_path: Path,
) -> None:
    net = exchange_net(tmp_path / "w.sqlite", NodeOptions(signature_worker=True))
    node = net.node
    singles = [order(0, ETH, SIDE_SELL, 100 + i, 10) for i in range(6)]
    assert (
        node.intake.signatures is not None
        and node.intake.signatures.on_answers == node.intake.admission.run_ready
    )
    ran_in_callback: list[int] = []
    run_ready = node.intake.admission.run_ready

    def counting() -> None:  # records how many rounds ran inside the worker's I/O callback
        before = node.intake.admission.rounds
        run_ready()
        ran_in_callback.append(node.intake.admission.rounds - before)

    node.intake.signatures.on_answers = counting

    async def at_once() -> list[Any]:
        return await asyncio.gather(*(node.admit_orders([o]) for o in singles))

    rounds, items = _sample("rollup_admission_round_items_count"), _sample("rollup_admission_round_items_sum")
    answers = net.loop.run_until_complete(at_once())
    assert [a[0].status for a in answers] == ["resting"] * 6
    assert (node.intake.signatures.sent, node.intake.signatures.frames) == (6, 6)  # each written at once
    assert _sample("rollup_admission_round_items_sum") == items + 6  # every order admitted once
    # the rounds that took them ran in the callbacks where their signers arrived
    assert sum(ran_in_callback) == _sample("rollup_admission_round_items_count") - rounds >= 1
    net.loop.run_until_complete(node.close())
    net.close()


def _sample(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    return 0.0 if value is None else value


def test_node_whose_worker_was_killed__round_computes_digests_and_signers__same_answers(
    tmp_path: Path,
) -> None:
    with_worker = exchange_net(tmp_path / "w.sqlite", NodeOptions(signature_worker=True))
    without = exchange_net(tmp_path / "o.sqlite", NodeOptions())
    orders = [order(i % 2, ETH, SIDE_SELL if i % 2 == 0 else SIDE_BUY, 100, 10, salt=i) for i in range(6)]
    batch = [*orders, SignedOrder(order(1, ETH, SIDE_BUY, 99, 10, salt=99).order, orders[0].sig)]
    worker = with_worker.node.intake.signatures
    assert worker is not None and worker.process is not None
    os.kill(worker.process.pid, signal.SIGKILL)
    with_worker.loop.run_until_complete(asyncio.wait_for(worker.process.wait(), 10))

    def answers(net: Any) -> list[Any]:
        out = net.loop.run_until_complete(net.node.admit_orders(batch))
        return [(type(a).__name__, a.code, str(a)) if isinstance(a, RollupError) else a for a in out]

    got = answers(with_worker)
    assert got == answers(without)
    assert got[-1][1] == "bad_signature" and [a.status for a in got[:2]] == ["resting", "filled"]
    with_worker.loop.run_until_complete(with_worker.node.close())
    with_worker.close()
    without.close()
