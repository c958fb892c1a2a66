"""The event-loop monitor: a held loop is counted, timed and located; a healthy one is not."""

from __future__ import annotations

import asyncio
import time

from sequencer.stall import LoopMonitor


def hold_the_loop(seconds: float) -> None:
    """A synchronous computation on the loop thread (what a stall is)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _run(hold: float, threshold: float = 0.02) -> LoopMonitor:
    monitor = LoopMonitor(interval=0.005, threshold=threshold)
    monitor.start()
    try:
        await asyncio.sleep(0.05)
        if hold:
            hold_the_loop(hold)
        deadline = time.monotonic() + 5
        while hold and monitor.stalls == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)  # the heartbeat reports the stall on its next beat
        await asyncio.sleep(0.05)
    finally:
        await monitor.stop()
    return monitor


def test_monitor__loop_held_150ms__one_stall_timed_and_located() -> None:
    monitor = asyncio.run(_run(0.15))
    assert monitor.stalls == 1
    assert monitor.last is not None
    ms, where = monitor.last
    assert 120 <= ms < 1000
    assert any("hold_the_loop" in frame for frame in where), where


def test_monitor__healthy_loop__no_stall() -> None:
    monitor = asyncio.run(_run(0.0, threshold=0.5))  # a busy CI machine may pause us briefly
    assert monitor.stalls == 0
    assert monitor.last is None
