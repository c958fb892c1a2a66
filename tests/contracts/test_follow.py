"""The L1 follow loop the sequencer's follower and the watcher share (`contracts.follow`): bounded
windows, each event folded once, and the loop's errors sorted (transient, critical, unexpected)."""

from __future__ import annotations

import asyncio
import dataclasses
import io

import orjson
import pytest

import contracts.follow as follow
from contracts.follow import CriticalError, L1Cursor, LoopHealth, TransientError, drive
from contracts.logs import Logger
from sequencer.builder import build_batch
from sequencer.stf.chain import Chain
from sequencer.stf.l1types import L1Event
from tests.sequencer.test_chain import ADDRS, CONFIG, L2_TIME, FakeRollup


class Reader:
    """An L1 whose block n holds event n (1-based); `failures` are raised first, one per call."""

    def __init__(self, log: list[L1Event], failures: list[Exception] | None = None) -> None:
        self.log = log
        self.failures = failures or []
        self.reads: list[tuple[int, int]] = []

    def head_block(self) -> int:
        if self.failures:
            raise self.failures.pop(0)
        return len(self.log)

    def events(self, a: int, b: int) -> list[L1Event]:
        self.reads.append((a, b))
        return self.log[max(a, 1) - 1 : b]


def history() -> list[L1Event]:
    """Two deposits and a batch consuming them."""
    l1, chain = FakeRollup(), Chain(CONFIG)
    for addr in ADDRS[:2]:
        chain.apply_event(l1.deposit(addr, 1_000))
    built = build_batch(chain.state, chain.queue, [], CONFIG, l2_time=L2_TIME)
    assert built is not None
    return [*l1.queue, l1.append(built)]


def test_cursor__long_history__bounded_windows_each_event_folded_once() -> None:
    reader, chain = Reader(history()), Chain(CONFIG)
    cursor = L1Cursor(1, window_blocks=2)

    def fold(events: list[L1Event]) -> None:
        for event in events:
            chain.apply_event(event)
            cursor.mark(event)

    folded = [cursor.fold(cursor.read(reader), fold) for _ in range(3)]
    assert folded == [2, 1, 0] and reader.reads == [(1, 2), (3, 3)]
    assert cursor.caught_up and cursor.next_block == 4 and chain.valid_count == 1


def test_cursor__fold_fails_part_way__the_window_is_read_again_without_what_was_folded() -> None:
    reader, cursor = Reader(history()), L1Cursor(1)
    seen: list[L1Event] = []

    def fold_one_then_fail(events: list[L1Event]) -> None:
        seen.append(events[0])
        cursor.mark(events[0])
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cursor.fold(cursor.read(reader), fold_one_then_fail)
    assert cursor.next_block == 1  # the window is not passed
    window = cursor.read(reader)
    assert window.events == reader.log[1:]


def test_cursor__reader_fails__transient_and_nothing_moves() -> None:
    reader, cursor = Reader(history(), [ConnectionError("refused")]), L1Cursor(1)
    with pytest.raises(TransientError) as failed:
        cursor.read(reader)
    assert isinstance(failed.value.__cause__, ConnectionError)
    assert follow.describe(failed.value) == "ConnectionError: refused"
    assert (cursor.next_block, cursor.last_event) == (1, (-1, -1))


def test_cursor__batch_index_does_not_follow__critical() -> None:
    log = history()
    log.append(dataclasses.replace(log[-1], l1_block=len(log) + 1))  # batch 0 again
    reader, chain, cursor = Reader(log), Chain(CONFIG), L1Cursor(1)

    def fold(events: list[L1Event]) -> None:
        for event in events:
            chain.apply_event(event)
            cursor.mark(event)

    with pytest.raises(CriticalError) as failed:
        cursor.fold(cursor.read(reader), fold)
    assert "disagrees with itself" in str(failed.value) and "does not follow" in str(failed.value)


def run_loop(steps: list[Exception | None], monkeypatch: pytest.MonkeyPatch) -> tuple[LoopHealth, list[dict]]:  # type: ignore[type-arg]
    """Drive a loop whose steps raise `steps` in turn (None: a step that works); it stops when
    they run out or a step is critical. Returns its health and its log lines."""
    monkeypatch.setattr(follow, "BACKOFF_FIRST_SECONDS", 0.001)
    out, health = io.StringIO(), LoopHealth()
    remaining = list(steps)

    async def step() -> bool:
        error = remaining.pop(0)
        if error is not None:
            raise error
        return False

    asyncio.run(
        drive("follower", step, health, Logger("test", out), pause_seconds=0, running=lambda: bool(remaining))
    )
    return health, [orjson.loads(line) for line in out.getvalue().splitlines()]


def timed_out() -> TransientError:
    """A failed L1 read, as `L1Cursor.read` raises it."""
    cause = TransientError("L1 read failed")
    cause.__cause__ = TimeoutError("timed out")
    return cause


def test_drive__transient_errors__retried_with_backoff_and_the_loop_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cause = timed_out()
    health, lines = run_loop([cause, cause], monkeypatch)
    assert health.critical is None and health.loops == {"follower": False}
    assert health.last_error == "follower: TimeoutError: timed out"
    assert [(x["level"], x["event"], x["retry_in"]) for x in lines] == [
        ("warning", "loop_error", 0.001),
        ("warning", "loop_error", 0.002),
    ]


def test_drive__a_step_works_again__last_error_clears_and_recovery_is_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cause = timed_out()
    health, lines = run_loop([cause, None], monkeypatch)
    assert health.last_error is None and health.errors == {}
    events = [(x["level"], x["event"]) for x in lines]
    assert events == [("warning", "loop_error"), ("info", "loop_recovered")]


def test_loop_health__several_sources__last_error_is_the_latest_not_got_past() -> None:
    health = LoopHealth()
    health.fail("builder", "builder: TimeoutError")
    health.fail("poster", "append failed: nonce too low")
    assert health.last_error == "append failed: nonce too low"
    assert health.recover("poster") and health.last_error == "builder: TimeoutError"
    assert not health.recover("poster")
    health.recover("builder")
    assert health.last_error is None


def test_drive__critical_error__the_loop_stops_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    health, lines = run_loop([CriticalError("the L1 history disagrees with itself"), None, None], monkeypatch)
    assert health.critical == "follower: the L1 history disagrees with itself"
    assert health.loops == {"follower": False}
    (line,) = lines
    assert (line["level"], line["event"], line["loop"]) == ("critical", "loop_stopped", "follower")


def test_drive__unexpected_error__retried_and_logged_as_unexpected(monkeypatch: pytest.MonkeyPatch) -> None:
    health, lines = run_loop([KeyError("x")], monkeypatch)
    assert health.critical is None and health.last_error == "follower: KeyError: 'x'"
    (line,) = lines
    assert (line["level"], line["event"], line["unexpected"]) == ("error", "loop_error", True)
