"""The batch clock a sequencer declares (`l2_time`) and its retry after the Rollup refuses one."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from contracts.l1 import Mined
from sequencer.l2clock import (
    L2_TIME_ALLOWANCE_SECONDS,
    REFUSED_AHEAD,
    REFUSED_BEHIND,
    choose_l2_time,
)
from sequencer.node import SequencerNode
from sequencer.stf.eip712 import sign_transfer
from sequencer.store import Store
from tests.sequencer.test_api import FakeL1
from tests.sequencer.test_chain import ADDRS, CONFIG, KEYS, FakeRollup

NOW = 1_800_000_000.7


def test_choose_l2_time__fresh_head__the_wall_clock() -> None:
    assert choose_l2_time(0, NOW, int(NOW) - 1) == int(NOW)


def test_choose_l2_time__head_behind_the_wall_clock__capped_past_the_head_only_when_following() -> None:
    head = int(NOW) - 100
    assert choose_l2_time(0, NOW, head, follow_head=True) == head + L2_TIME_ALLOWANCE_SECONDS
    assert choose_l2_time(0, NOW, head) == int(NOW)


def test_choose_l2_time__tip_later__never_goes_back() -> None:
    assert choose_l2_time(int(NOW) + 30, NOW, int(NOW), follow_head=True) == int(NOW) + 30
    assert choose_l2_time(int(NOW) + 30, NOW, int(NOW)) == int(NOW) + 30


class Refused(Exception):
    """What the bindings raise on a revert: the Rollup's reason in `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Rollup.append_batch reverted: {reason}")
        self.reason = reason


class ClockL1(FakeL1):
    """A fake L1 with a stale head that refuses the first appends for their clock."""

    def __init__(self, rollup: FakeRollup, head: int, refusals: list[str]) -> None:
        super().__init__(rollup)
        self.head = head
        self.refusals = refusals
        self.clocks: list[int] = []

    def head_timestamp(self) -> int:
        return self.head

    def append_batch(
        self,
        txs: list[bytes],
        roots: list[bytes],
        prev_root: bytes,
        queue_start: int,
        queue_end: int,
        l2_time: int,
    ) -> Mined:
        self.clocks.append(l2_time)
        if self.refusals:
            raise Refused(self.refusals.pop(0))
        return super().append_batch(txs, roots, prev_root, queue_start, queue_end, l2_time)


@contextlib.contextmanager
def started_node(tmp_path: Path, l1: ClockL1) -> Iterator[tuple[SequencerNode, Callable[[Any], Any]]]:
    """A node over `l1` with a fresh log, started on its own event loop; yields it and the
    loop's `run_until_complete`; the loop and the log are closed after."""
    store = Store(tmp_path / "seq.sqlite")
    node = SequencerNode(CONFIG, store, l1, l1, start_block=1)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(node.start())
        yield node, loop.run_until_complete
    finally:
        loop.close()
        store.close()


def test_build_and_post__idle_l1__the_wall_clock_goes_through(tmp_path: Path) -> None:
    stale_head = int(time.time()) - 3_600  # an automine L1 idle for an hour: its next block is now
    l1 = ClockL1(FakeRollup(), stale_head, [])
    l1.deposit(ADDRS[0], 1_000)
    with started_node(tmp_path, l1) as (node, run):
        assert run(node.poster.build_and_post())
        assert l1.clocks[0] >= stale_head + 3_600  # the wall clock, never held back by the head
        assert not node.l2clock.follows_head


def test_build_and_post__clock_refused_as_ahead__follows_the_head_until_refused_as_behind(
    tmp_path: Path,
) -> None:
    head = int(time.time()) - 120  # an L1 whose clock runs two minutes behind ours
    l1 = ClockL1(FakeRollup(), head, [REFUSED_AHEAD])
    l1.deposit(ADDRS[0], 1_000)
    with started_node(tmp_path, l1) as (node, run):
        assert not run(node.poster.build_and_post())  # refused: nothing appended
        assert l1.clocks[0] >= head + 120  # the wall clock first
        assert node.l2clock.follows_head
        assert run(node.poster.build_and_post())
        assert l1.clocks[1] == head + L2_TIME_ALLOWANCE_SECONDS
        assert l1.rollup.batches[-1].header.l2_time == l1.clocks[1]
        assert node.l2clock.follows_head  # it keeps following an L1 that runs behind
        l1.refusals.append(REFUSED_BEHIND)
        node.intake.submit(sign_transfer(KEYS[0], ADDRS[1], 5, 0, CONFIG))
        assert not run(node.poster.build_and_post())
        assert not node.l2clock.follows_head  # following fell too far behind: back to the wall clock
        assert run(node.poster.build_and_post())
        assert l1.clocks[-1] >= head + 120


def test_build_and_post__backlog__each_batch_at_its_transactions_admission_clock(tmp_path: Path) -> None:
    t0 = int(time.time())
    l1 = ClockL1(FakeRollup(), t0, [])
    l1.deposit(ADDRS[0], 1_000)
    with started_node(tmp_path, l1) as (node, run):
        assert run(node.poster.build_and_post())  # the deposit
        node.l2clock.wall = lambda: float(t0 + 1)
        node.intake.submit(sign_transfer(KEYS[0], ADDRS[1], 5, 0, CONFIG))
        node.l2clock.wall = lambda: float(t0 + 4)
        node.intake.submit(sign_transfer(KEYS[0], ADDRS[1], 6, 1, CONFIG))
        node.l2clock.wall = lambda: float(t0 + 60)  # the builder gets to them a minute later
        # a transfer was checked at its own clock: the first batch takes it alone, at that clock
        assert run(node.poster.build_and_post())
        assert run(node.poster.build_and_post())
        assert l1.clocks[1:] == [t0 + 1, t0 + 4]
        assert [len(b.txs) for b in l1.rollup.batches[1:]] == [1, 1]
        assert len(node.mempool) == 0
