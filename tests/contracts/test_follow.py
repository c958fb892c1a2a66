"""The L1 follow loop the sequencer's follower and the watcher share (`contracts.follow`): bounded
windows, each event folded once, and the loop's errors sorted (transient, critical, unexpected)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Callable

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

    def block_hash(self, number: int) -> bytes | None:
        return number.to_bytes(32, "big") if number <= len(self.log) else None

    def events(self, a: int, b: int) -> list[L1Event]:
        self.reads.append((a, b))
        return self.log[max(a, 1) - 1 : b]


def no_reorg(l1_block: int) -> None:
    raise AssertionError(f"no reorganisation expected, got one to block {l1_block}")


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

    folded = [cursor.fold(cursor.read(reader), fold, no_reorg) for _ in range(3)]
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
        cursor.fold(cursor.read(reader), fold_one_then_fail, no_reorg)
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
        cursor.fold(cursor.read(reader), fold, no_reorg)
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


# ---- reorganisations of the L1 ----


def block_hash(number: int, forks: list[int]) -> bytes:
    """The hash of block `number` of a fake L1 reorganised after each block of `forks`: it
    changes with every reorganisation that replaced the block."""
    era = sum(1 for kept in forks if kept < number)
    return number.to_bytes(16, "big") + era.to_bytes(16, "big")


class ForkingReader(Reader):
    """A `Reader` whose blocks have hashes, and whose blocks after a block can be replaced."""

    def __init__(self, log: list[L1Event]) -> None:
        super().__init__(log)
        self.forks: list[int] = []
        self.during_events: Callable[[], None] = lambda: None
        """Runs inside `events` (a reorganisation during a read)."""

    def block_hash(self, number: int) -> bytes | None:
        return block_hash(number, self.forks) if number <= len(self.log) else None

    def events(self, a: int, b: int) -> list[L1Event]:
        out = super().events(a, b)
        self.during_events()
        return out

    def reorg(self, keep: int, events: list[L1Event]) -> None:
        """Replace every block after `keep` with one block per event of `events`."""
        self.forks.append(keep)
        self.log[keep:] = [dataclasses.replace(e, l1_block=keep + 1 + i) for i, e in enumerate(events)]


def follower(reader: Reader, window_blocks: int = 1) -> tuple[L1Cursor, Chain, Callable[[], int]]:
    """A cursor and a chain following `reader` as a service does: `poll` reads, folds (or
    rewinds) and settles; returns how many events it folded."""
    chain, cursor = Chain(CONFIG), L1Cursor(1, window_blocks=window_blocks)

    def fold(events: list[L1Event]) -> None:
        for event in events:
            chain.apply_event(event)
            cursor.mark(event)

    def poll() -> int:
        folded = cursor.fold(cursor.read(reader), fold, chain.rewind)
        chain.settle(cursor.settled_block)
        return folded

    return cursor, chain, poll


def test_cursor__last_blocks_reorganised__rewound_to_the_fork_then_the_new_blocks_folded() -> None:
    log = history()  # deposits in blocks 1 and 2, their batch in block 3
    reader = ForkingReader(list(log))
    cursor, chain, poll = follower(reader)
    while not cursor.caught_up or cursor.next_block <= len(log):
        poll()
    assert len(chain.batches) == 1 and cursor.reorgs == 0
    other = FakeRollup()  # another history after block 1: a smaller second deposit, no batch
    reader.reorg(1, [other.deposit(ADDRS[0], 1_000), other.deposit(ADDRS[1], 10)][1:])
    assert poll() == 0
    assert (cursor.reorgs, cursor.last_fork, cursor.next_block) == (1, 1, 2)
    assert chain.batches == [] and sorted(chain.queue) == [0]
    while poll() or not cursor.caught_up:
        pass
    assert [e.amount for e in chain.queue.values()] == [1_000, 10]  # type: ignore[union-attr]
    assert chain.batches == [] and cursor.tips == {b: block_hash(b, [1]) for b in (0, 1, 2)}


def test_cursor__reorganised_while_read__transient_and_nothing_folded() -> None:
    reader = ForkingReader(history())
    cursor, chain, poll = follower(reader, window_blocks=10)
    reader.during_events = lambda: reader.forks.append(2)
    with pytest.raises(TransientError, match="reorganised block 3 while it was read"):
        poll()
    assert (cursor.next_block, chain.queue, cursor.reorgs) == (1, {}, 0)
    reader.during_events = lambda: None
    assert poll() == 3 and len(chain.batches) == 1


def test_cursor__reorganised_deeper_than_remembered__critical(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "REWIND_LIMIT_BLOCKS", 2)
    log = history()
    log += [dataclasses.replace(log[0], l1_block=4 + i, index=3 + i) for i in range(3)]
    reader = ForkingReader(log)
    cursor, chain, poll = follower(reader)
    while not cursor.caught_up or cursor.next_block <= len(log):
        poll()
    assert list(cursor.tips) == [4, 5, 6] and cursor.settled_block == 4
    assert [f.event.l1_block for f in chain.journal] == [5, 6]
    reader.reorg(3, [])
    with pytest.raises(CriticalError, match="reorganised block 4, deeper than the 2 blocks"):
        poll()
