"""The sequencer's collector settings: full collections walk only what is new, every pause is
counted, and the periodic whole-heap collection frees a cycle that a freeze kept."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from sequencer.gcpause import THRESHOLDS, _PauseTimer, full_collection, quiet_gc
from sequencer.metrics import REGISTRY


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def collector() -> Iterator[None]:
    """Put the interpreter's collector back as it was (other tests share the process)."""
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.callbacks[:] = callbacks
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def _pauses(generation: int) -> float:
    value = REGISTRY.get_sample_value("rollup_gc_pause_seconds_count", {"generation": str(generation)})
    return 0.0 if value is None else value


def test_quiet_gc__heap_frozen_thresholds_set_one_timer_however_often_called(collector: None) -> None:
    quiet_gc()
    quiet_gc()
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert sum(isinstance(c, _PauseTimer) for c in gc.callbacks) == 1


def test_full_collection__counted_and_what_survives_is_frozen(collector: None) -> None:
    quiet_gc()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    before, young = _pauses(2), _pauses(0)
    gc.collect()
    assert _pauses(2) == before + 1 and _pauses(0) == young
    assert gc.get_freeze_count() > 0  # the collection's survivors are frozen after it


def test_cycle_kept_by_a_freeze__freed_by_full_collection(collector: None) -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    quiet_gc()  # the cycle is alive: frozen
    del a, b
    gc.collect()
    assert gone() is not None  # an ordinary full collection does not walk frozen objects
    freed, seconds = full_collection()
    assert gone() is None
    assert freed >= 2 and seconds >= 0
    assert gc.get_freeze_count() > 0  # what is left is frozen again
