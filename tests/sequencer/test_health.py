"""Truthful health: an L1 that hangs, or posting that fails, turns /health to 503 with the reason
once it lasts beyond the node's limits, and admission refuses `l1_unavailable`; when the cause is
gone /health is 200 again, `last_error` is cleared, and every acknowledged transaction is batched.

The node's loops and its API run on one event loop (the API through httpx's ASGI transport), over
an in-memory L1 that can hang like a stopped process (each call gives up after a timeout, as a
JSON-RPC request does) or refuse appends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import contracts.follow as follow
from contracts.health import HealthLimits
from contracts.l1 import Mined
from sequencer.api.app import create_app
from sequencer.node import NodeOptions, SequencerNode
from sequencer.stf.constants import EMPTY
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.l1types import L1Frozen
from sequencer.store import Store
from tests.sequencer.test_api import SEQ_KEY, FakeL1, body
from tests.sequencer.test_chain import ADDRS, CONFIG, KEYS, FakeRollup

CALL_TIMEOUT_S = 0.2
"""How long a call to the stopped L1 waits before it gives up (the JSON-RPC request's timeout)."""


class StoppableL1(FakeL1):
    """The in-memory L1; while stopped, every call hangs, then times out; `refusing` makes appends
    fail (a reverted or unsent transaction) while the L1 still answers reads."""

    def __init__(self, rollup: FakeRollup) -> None:
        super().__init__(rollup)
        self.running = threading.Event()
        self.running.set()
        self.refusing: Exception | None = None

    def _answer(self) -> None:
        if not self.running.wait(CALL_TIMEOUT_S):
            raise TimeoutError("read timed out")

    def head_block(self) -> int:
        self._answer()
        return super().head_block()

    def head_timestamp(self) -> int:
        self._answer()
        return super().head_timestamp()

    def append_batch(self, *args: Any) -> Mined:
        self._answer()
        if self.refusing is not None:
            raise self.refusing
        return super().append_batch(*args)


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 15.0) -> None:
    """Let the loops run until `condition()` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def run_node(
    tmp_path: Path,
    limits: HealthLimits,
    scenario: Callable[..., Awaitable[None]],
    l1_class: type[StoppableL1] = StoppableL1,
) -> None:
    """Start a node on a `StoppableL1` (one deposit batched), run its three loops and
    `scenario(node, l1, api)`, then stop the loops."""
    l1 = l1_class(FakeRollup())
    l1.deposit(ADDRS[0], 1_000)
    store = Store(tmp_path / "seq.sqlite")
    options = NodeOptions(l1_poll_ms=10, batch_interval_ms=20, health=limits)
    node = SequencerNode(CONFIG, store, l1, l1, start_block=1, options=options, receipt_key=SEQ_KEY)

    async def main() -> None:
        await node.start()
        loops = [
            asyncio.create_task(loop()) for loop in (node.follower_loop, node.builder_loop, node.keeper_loop)
        ]
        transport = httpx.ASGITransport(app=create_app(node))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as api:
                await scenario(node, l1, api)
        finally:
            node.stopping = True
            l1.running.set()
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        store.close()


async def health_is(api: httpx.AsyncClient, status: int, code: str | None = None) -> bool:
    """Whether /health answers `status` (with a reason of `code` among its reasons)."""
    reply = await api.get("/health")
    reasons = [r["code"] for r in reply.json()["reasons"]]
    return reply.status_code == status and (code is None or code in reasons)


async def transfer(api: httpx.AsyncClient, nonce: int) -> httpx.Response:
    return await api.post("/v1/transfers", json=body(sign_transfer(KEYS[0], ADDRS[1], 1, nonce, CONFIG)))


async def all_batched(api: httpx.AsyncClient, hashes: list[str]) -> bool:
    for h in hashes:
        if (await api.get(f"/v1/transactions/{h}")).json()["status"] != "batched":
            return False
    return True


def test_health__l1_hangs_beyond_the_limit__503_l1_unreachable_refused__then_200_cleared_nothing_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "BACKOFF_MAX_SECONDS", 0.1)

    async def scenario(node: SequencerNode, l1: StoppableL1, api: httpx.AsyncClient) -> None:
        await until(lambda: health_is(api, 200), "a healthy node")
        acked = [(await transfer(api, 0)).json()["hash"]]
        l1.running.clear()  # the L1 stops answering
        started = asyncio.get_running_loop().time()
        reply = await transfer(api, 1)  # within the bound: still acknowledged
        assert asyncio.get_running_loop().time() - started < 1.0, "the machine is too slow for this test"
        assert reply.status_code == 200
        acked.append(reply.json()["hash"])
        await until(lambda: health_is(api, 503, "l1_unreachable"), "health 503 l1_unreachable")
        facts = (await api.get("/health")).json()
        assert facts["ok"] is False and facts["admitting"] is False and facts["synced"] is True
        assert "limit 1 s" in next(r for r in facts["reasons"] if r["code"] == "l1_unreachable")["message"]
        await until(lambda: _has_error(api), "the timed-out read in last_error")
        logged = node.store.counts()
        refused = await transfer(api, 2)
        assert (refused.status_code, refused.json()["error"]["code"]) == (503, "l1_unavailable")
        assert node.store.counts() == logged  # the refusal changed nothing

        l1.running.set()  # the L1 answers again
        await until(lambda: health_is(api, 200), "health 200 after the L1 is back")
        await until(lambda: all_batched(api, acked), "every acknowledged transfer batched")
        facts = (await api.get("/health")).json()
        assert facts["reasons"] == [] and facts["admitting"] is True
        await until(lambda: _no_error(api), "last_error cleared")
        assert (await transfer(api, 2)).status_code == 200

    run_node(tmp_path, HealthLimits(l1_silence_s=1.0, send_stall_s=30.0), scenario)


def test_health__appends_fail_beyond_the_limit__503_posting_stalled_refused__then_200_cleared(
    tmp_path: Path,
) -> None:
    async def scenario(node: SequencerNode, l1: StoppableL1, api: httpx.AsyncClient) -> None:
        await until(lambda: health_is(api, 200), "a healthy node")
        l1.refusing = ConnectionError("nonce too low")  # reads work, appends fail
        acked = [(await transfer(api, 0)).json()["hash"]]
        await until(lambda: health_is(api, 503, "posting_stalled"), "health 503 posting_stalled")
        facts = (await api.get("/health")).json()
        assert [r["code"] for r in facts["reasons"]] == ["posting_stalled"]
        assert facts["last_error"] == "append failed: nonce too low" and facts["unposted_s"] > 0.5
        refused = await transfer(api, 1)
        assert (refused.status_code, refused.json()["error"]["code"]) == (503, "l1_unavailable")

        l1.refusing = None
        await until(lambda: all_batched(api, acked), "the acknowledged transfer batched")
        await until(lambda: health_is(api, 200), "health 200 once a batch is appended")
        facts = (await api.get("/health")).json()
        assert facts["last_error"] is None and facts["unposted_s"] is None
        assert (await transfer(api, 1)).status_code == 200

    run_node(tmp_path, HealthLimits(l1_silence_s=30.0, send_stall_s=0.5), scenario)


async def _has_error(api: httpx.AsyncClient) -> bool:
    return (await api.get("/health")).json()["last_error"] is not None


async def _no_error(api: httpx.AsyncClient) -> bool:
    return (await api.get("/health")).json()["last_error"] is None


class CountingL1(StoppableL1):
    """`StoppableL1` that counts the appends tried, refused or not."""

    def __init__(self, rollup: FakeRollup) -> None:
        super().__init__(rollup)
        self.tried = 0

    def append_batch(self, *args: Any) -> bytes:
        self.tried += 1
        return super().append_batch(*args)


def test_health__rollup_frozen__503_rollup_frozen_writes_refused_and_no_append_tried_again(
    tmp_path: Path,
) -> None:
    async def scenario(node: SequencerNode, l1: StoppableL1, api: httpx.AsyncClient) -> None:
        assert isinstance(l1, CountingL1)
        await until(lambda: health_is(api, 200), "a healthy node")
        l1.refusing = RuntimeError("rollup: frozen")  # what the Rollup answers once frozen
        await transfer(api, 0)  # acknowledged, never batched
        await until(lambda: _has_error(api), "a refused append")
        batches = l1.rollup.batches  # the frozen tip (genesis when none was appended)
        root, queue_end = (
            (batches[-1].header.post_root, batches[-1].header.queue_end) if batches else (EMPTY, 0)
        )
        l1.log.append(L1Frozen(len(batches), root, queue_end, 3_000, len(l1.log) + 1, 0))
        await until(lambda: health_is(api, 503, "rollup_frozen"), "health 503 rollup_frozen")
        tried = l1.tried
        await asyncio.sleep(0.6)  # beyond the stall limit: the poster tried nothing more
        facts = (await api.get("/health")).json()
        assert [r["code"] for r in facts["reasons"]] == ["rollup_frozen"]
        assert facts["admitting"] is False and facts["last_error"] is None and facts["unposted_s"] is None
        assert l1.tried == tried
        logged = node.store.counts()
        refused = await transfer(api, 1)
        assert (refused.status_code, refused.json()["error"]["code"]) == (503, "l1_unavailable")
        assert "frozen" in refused.json()["error"]["message"] and node.store.counts() == logged

    run_node(tmp_path, HealthLimits(l1_silence_s=30.0, send_stall_s=0.3), scenario, l1_class=CountingL1)
