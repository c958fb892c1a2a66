"""Short garbage-collector pauses for the sequencer's process.

Every request, round and batch shares one event loop, so a collection of the cyclic garbage
collector delays every acknowledgement behind it. A collection walks every object of the
generations it collects, and a loaded node holds a large heap (resting orders, the state tree,
the mempool), so a full collection of all of it is a long pause; CPython starts one whenever the
objects promoted since the last one reach a quarter of the heap.

So (`quiet_gc`):
- what is alive at start-up (modules, the chain state, the books) is frozen out of collections
  (`gc.freeze`), and so is what is alive after every full collection: a full collection walks
  only the objects that reached the oldest generation since the previous one;
- full collections are considered after every collection of the middle generation (threshold
  1 instead of 10), so each walks one middle collection's survivors: many short pauses instead
  of a few long ones.

What a freeze costs: an object frozen while alive is never walked again, so if it later becomes
part of a reference cycle that nothing else refers to (a closed connection's objects, say), that
cycle is not freed. `full_collection` unfreezes everything, collects, and freezes again; the node
runs it every `gc_full_collection_s` (default: hourly) and logs what it freed and how long it
held the loop. It is the one long pause the scheme keeps. Objects that are not in a cycle are
freed by reference counting either way.

`rollup_gc_pause_seconds{generation}` counts every collection's pause.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from prometheus_client import Histogram

from contracts.logs import get_logger
from sequencer.metrics import REGISTRY

log = get_logger("sequencer")

GC_PAUSE_SECONDS = Histogram(
    "rollup_gc_pause_seconds",
    "Pauses of the cyclic garbage collector, by the oldest generation collected",
    ["generation"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    registry=REGISTRY,
)

THRESHOLDS = (700, 10, 1)
"""`gc.set_threshold`: CPython's defaults except the last (full collections considered after
every middle collection, not every tenth)."""


class _PauseTimer:
    """The `gc.callbacks` entry: times each collection, and freezes what a full one left."""

    def __init__(self) -> None:
        self.started = 0.0
        self.pauses = [GC_PAUSE_SECONDS.labels(generation=str(g)) for g in range(3)]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        generation = info["generation"]
        self.pauses[generation].observe(time.perf_counter() - self.started)
        if generation == 2:
            gc.freeze()


def quiet_gc() -> None:
    """Collect and freeze the heap as it is now, and set the thresholds and the freeze after each
    full collection (module docstring). Idempotent."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    if not any(isinstance(callback, _PauseTimer) for callback in gc.callbacks):
        gc.callbacks.append(_PauseTimer())


def full_collection() -> tuple[int, float]:
    """Collect the whole heap, frozen part included, then freeze what is left: frees the cycles
    that freezing kept. Returns (objects freed, seconds the collection took)."""
    started = time.perf_counter()
    gc.unfreeze()
    freed = gc.collect()
    gc.freeze()
    return freed, time.perf_counter() - started


async def full_collections(every_s: float) -> None:
    """Run `full_collection` every `every_s` seconds, forever, logging each."""
    while True:
        await asyncio.sleep(every_s)  # a period, not a wait for a condition
        freed, seconds = full_collection()
        log.info("gc_full_collection", freed=freed, ms=round(seconds * 1000, 1), frozen=gc.get_freeze_count())
