"""Event-loop stalls: how late the loop runs its callbacks, and what held it when it was late.

Every request, the admission rounds, the builder and the follower share one event loop, so
anything that holds it (a long computation, a blocking call, a garbage collection) delays every
acknowledgement behind it. `LoopMonitor` measures that delay and names its cause:

- a heartbeat task on the loop sleeps `interval` seconds and records how late it woke
  (`rollup_loop_lag_seconds`): the wait a request that arrived at that moment had before the
  loop could even read it;
- a watchdog thread looks at the heartbeat; when the loop has not beaten for `threshold`
  seconds it takes the loop thread's Python stack once (`sys._current_frames`, no tracing cost
  while the loop is healthy) and, when the loop beats again, logs `loop_stalled` with how long
  the stall lasted and where the loop was (`rollup_loop_stalls_total`).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time

from prometheus_client import Counter, Histogram

from contracts.logs import get_logger
from sequencer.metrics import REGISTRY

LOOP_LAG = Histogram(
    "rollup_loop_lag_seconds",
    "How late the event loop woke a task that slept (a request's wait before it is even read)",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    registry=REGISTRY,
)
LOOP_STALLS = Counter(
    "rollup_loop_stalls_total", "Times the event loop was held past the stall threshold", registry=REGISTRY
)

log = get_logger("sequencer")


class LoopMonitor:
    """Heartbeat on the loop and a watchdog thread beside it (see the module docstring)."""

    def __init__(self, *, interval: float = 0.01, threshold: float = 0.02, frames: int = 8) -> None:
        self.interval = interval
        """Seconds the heartbeat sleeps between beats."""
        self.threshold = threshold
        """A loop that has not beaten for this long (beyond `interval`) is stalled."""
        self.frames = frames
        """Innermost frames of the loop thread's stack logged with a stall."""
        self.beat = time.perf_counter()
        self.stalls = 0
        """Stalls seen so far."""
        self.last: tuple[float, list[str]] | None = None
        """The last stall: its milliseconds and where the loop was."""
        self._stack: list[str] | None = None
        self._stalled_since = 0.0
        self._loop_thread = 0
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start on the running loop (call from a coroutine on it)."""
        self._loop_thread = threading.get_ident()
        self.beat = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._heartbeat())
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the heartbeat and the watchdog."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)

    async def _heartbeat(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            now = time.perf_counter()
            LOOP_LAG.observe(max(0.0, now - before - self.interval))
            self.beat = now
            if self._stack is not None:
                self._report(now)

    def _report(self, now: float) -> None:
        stack, self._stack = self._stack or [], None
        ms = round((now - self._stalled_since) * 1000, 1)
        self.stalls += 1
        self.last = (ms, stack)
        LOOP_STALLS.inc()
        log.warning("loop_stalled", ms=ms, where=stack)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            since = self.beat
            if self._stack is None and time.perf_counter() - since > self.interval + self.threshold:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is None:
                    continue
                # the innermost frames only, without reading source lines: quick, no file I/O
                where: list[str] = []
                while frame is not None and len(where) < self.frames:
                    code = frame.f_code
                    where.append(f"{code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} {code.co_name}")
                    frame = frame.f_back
                if self.beat != since:  # the loop beat while we looked: not the stalled stack
                    continue
                self._stalled_since = since
                self._stack = where[::-1]  # outermost first, as a traceback reads
