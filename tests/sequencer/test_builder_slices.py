"""Batch building in slices: the stepped builder builds exactly what the one-go builder builds, and
the node serves the event loop between slices while it builds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import sequencer.poster as poster_module
from sequencer.builder import build_batch, build_batch_steps
from sequencer.node import NodeOptions, SequencerNode
from sequencer.stf.eip712 import sign_transfer
from sequencer.store import Store
from tests.sequencer.test_api import SEQ_KEY, FakeL1
from tests.sequencer.test_chain import ADDRS, CONFIG, KEYS, L2_TIME, FakeRollup


def started_node(path: Path) -> tuple[SequencerNode, asyncio.AbstractEventLoop]:
    l1 = FakeL1(FakeRollup())
    l1.deposit(ADDRS[0], 1000)
    node = SequencerNode(
        CONFIG, Store(path), l1, l1, start_block=1, options=NodeOptions(), receipt_key=SEQ_KEY
    )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(node.start())
    assert loop.run_until_complete(node.poster.build_and_post())  # the deposit
    for nonce in range(6):
        node.intake.submit(sign_transfer(KEYS[0], ADDRS[1], 5, nonce, CONFIG))
    return node, loop


def test_build_batch_steps__one_pause_per_transaction__same_batch_as_build_batch(tmp_path: Path) -> None:
    node, loop = started_node(tmp_path / "s.sqlite")
    chain, pending = node.chain, node.mempool.pending
    steps = build_batch_steps(chain.state, chain.queue, pending, CONFIG, l2_time=L2_TIME, max_txs=4)
    pauses = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            stepped = done.value
            break
        pauses += 1
    assert pauses == 4
    whole = build_batch(chain.state, chain.queue, pending, CONFIG, l2_time=L2_TIME, max_txs=4)
    assert stepped is not None and whole is not None
    assert (stepped.txs, stepped.roots, stepped.included, stepped.skipped, stepped.queue_end) == (
        whole.txs,
        whole.roots,
        whole.included,
        whole.skipped,
        whole.queue_end,
    )
    loop.close()


def test_build_and_post__long_build__the_loop_runs_between_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, loop = started_node(tmp_path / "s.sqlite")
    monkeypatch.setattr(poster_module, "BUILD_SLICE_SECONDS", 0.0)  # a turn of the loop after each tx
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while node.mempool.pending:
            turns += 1
            await asyncio.sleep(0)

    async def both() -> bool:
        posted, _ = await asyncio.gather(node.poster.build_and_post(), other_work())
        return posted

    assert loop.run_until_complete(both())
    assert turns >= 6 and not node.mempool.pending
    loop.close()
