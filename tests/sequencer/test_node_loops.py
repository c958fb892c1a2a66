"""The node's driver loops over an in-memory L1: an L1 that fails for a while is retried and
followed again; an L1 history that disagrees with itself stops the follower, and /health says
why."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import contracts.follow as follow
from sequencer.api.app import create_app
from sequencer.node import SequencerNode
from sequencer.stf.l1types import L1Batch
from sequencer.store import Store
from tests.sequencer.test_api import SEQ_KEY, FakeL1
from tests.sequencer.test_chain import ADDRS, CONFIG, FakeRollup


class FlakyL1(FakeL1):
    """The in-memory L1, whose reads fail with `down` while it is set."""

    def __init__(self, rollup: FakeRollup) -> None:
        super().__init__(rollup)
        self.down: Exception | None = None

    def head_block(self) -> int:
        if self.down is not None:
            raise self.down
        return super().head_block()


async def until(condition: object, timeout: float = 10.0) -> None:
    """Yield to the loops until `condition()` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def started(tmp_path: Path) -> tuple[SequencerNode, FlakyL1, asyncio.AbstractEventLoop, Store]:
    l1 = FlakyL1(FakeRollup())
    l1.deposit(ADDRS[0], 1_000)
    store = Store(tmp_path / "seq.sqlite")
    node = SequencerNode(CONFIG, store, l1, l1, start_block=1, receipt_key=SEQ_KEY)
    node.options.l1_poll_ms = 1
    loop = asyncio.new_event_loop()
    loop.run_until_complete(node.start())
    assert loop.run_until_complete(node.poster.build_and_post())  # the deposit
    return node, l1, loop, store


def test_follower__l1_unreachable_for_a_while__retried_then_followed_again_and_the_error_clears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "BACKOFF_FIRST_SECONDS", 0.001)
    monkeypatch.setattr(follow, "BACKOFF_MAX_SECONDS", 0.01)
    node, l1, loop, store = started(tmp_path)
    try:

        async def scenario() -> None:
            l1.down = ConnectionError("refused")
            task = asyncio.create_task(node.follower_loop())
            await until(lambda: node.health()["last_error"] == "follower: ConnectionError: refused")
            l1.deposit(ADDRS[1], 500)
            l1.down = None
            await until(lambda: len(node.chain.queue) == 2)
            health = node.health()
            assert health["loops"]["follower"] and health["critical"] is None
            assert health["last_error"] is None
            node.stopping = True
            await task

        loop.run_until_complete(scenario())
    finally:
        loop.close()
        store.close()


def test_follower__l1_history_disagrees_with_itself__follower_stops_and_health_says_why(
    tmp_path: Path,
) -> None:
    node, l1, loop, store = started(tmp_path)
    try:
        client = TestClient(create_app(node))
        assert client.get("/health").status_code == 503  # no loop runs yet
        batch = l1.log[-1]
        assert isinstance(batch, L1Batch)
        l1.log.append(dataclasses.replace(batch, l1_block=len(l1.log) + 1))  # batch 0 again
        loop.run_until_complete(asyncio.wait_for(node.follower_loop(), 10))  # returns: stopped
        health = client.get("/health")
        assert health.status_code == 503
        facts = health.json()
        assert facts["loops"]["follower"] is False and facts["ok"] is False
        assert facts["critical"].startswith("follower: the L1 history disagrees with itself")
        assert "does not follow" in facts["critical"]
    finally:
        loop.close()
        store.close()
