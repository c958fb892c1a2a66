"""Following the L1: one cursor over its events and one driver loop, for every service that does.

The sequencer's follower and the watcher both read the L1 the same way: `L1Cursor` reads at most
`POLL_RANGE_BLOCKS` blocks at a time (catching up shows progress and memory stays bounded),
skips the events already folded (a fold that failed part-way reads its window again) and moves
on only once a whole window is folded. `drive` runs a service's step until it stops, with the
errors sorted as in the OP Stack: a `TransientError` is retried with backoff, a `CriticalError`
stops the loop and says why (in its `LoopHealth` and a `critical` log line), and any other
exception is retried with backoff too, but logged as unexpected. A loop's error stays in its
`LoopHealth` until the loop's next step succeeds (`loop_recovered`), no longer.

The L1 may reorganise its recent blocks. The cursor remembers the hash of the last block of each
window it folded (and of the block before the first), back to `REWIND_LIMIT_BLOCKS` below the
newest; each read first checks that the newest one is still on the L1. When it is not, the read
finds the newest remembered block that still is (the common ancestor, or a block before it),
the service takes back everything it folded after that block (`fold`'s `rewind`), and the cursor
reads on from there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import islice

from contracts.logs import Logger
from sequencer.stf.errors import InvalidBatch
from sequencer.stf.l1types import L1Event, L1Reader

POLL_RANGE_BLOCKS = 5_000
"""Most L1 blocks read in one poll."""

BACKOFF_FIRST_SECONDS = 0.1
"""Pause after the first failed step of a loop; it doubles with each failure in a row."""
BACKOFF_MAX_SECONDS = 5.0
"""Longest pause between two failed steps."""
REWIND_LIMIT_BLOCKS = 1_024
"""How deep below the newest block it folded a service can rewind; a deeper reorganisation of the
L1 is a `CriticalError` (restarted, the service derives everything again)."""


class TransientError(Exception):
    """A failure that may pass (the L1 unreachable or slow, a lost race): retried with backoff."""


class CriticalError(Exception):
    """A failure that retrying cannot fix (the L1 history disagrees with itself): the loop stops
    and says why; an operator must look."""


def describe(exc: BaseException) -> str:
    """`Type: message` of an error, or of the error a transient or critical one wraps."""
    cause = exc.__cause__ if isinstance(exc, TransientError | CriticalError) else None
    shown = cause if cause is not None else exc
    return f"{type(shown).__name__}: {shown}"


@dataclass(frozen=True)
class Window:
    """What one read of the L1 found."""

    head: int
    """The L1 head block (as deep as the reader's confirmations)."""
    last: int
    """The last block read (below `head` while catching up); the window is nothing when it is
    before the cursor's next block."""
    events: list[L1Event]
    """The window's events not folded yet, in L1 order."""
    last_hash: bytes | None = None
    """The hash of block `last` when the window holds new blocks; None when it holds none."""
    fork: int | None = None
    """Set when the L1 no longer holds the blocks last folded: the newest remembered block it still
    holds, to rewind to (the window then holds no events)."""


@dataclass
class L1Cursor:
    """Where a service is in the L1: the next block to read and the last event folded."""

    next_block: int
    l1_head: int = -1
    """The L1 head as of the last fold (-1: not read yet)."""
    last_event: tuple[int, int] = (-1, -1)
    """(block, log index) of the last event folded."""
    window_blocks: int = POLL_RANGE_BLOCKS
    """Most blocks read at once."""
    answered_at: float | None = None
    """`time.monotonic()` when the L1 last answered a whole read; None before the first."""
    asking_since: float | None = None
    """`time.monotonic()` when the reads that have not been answered yet began (the one under way,
    and the failed ones before it); None while the last read was answered."""
    tips: dict[int, bytes] = field(default_factory=dict)
    """Hash of each remembered block (the last of each window folded, and the block before the
    first), oldest first: the blocks a reorganisation can be rewound to."""
    reorgs: int = 0
    """L1 reorganisations met and rewound."""
    last_fork: int | None = None
    """The block the last of them was rewound to; None before the first."""

    def __post_init__(self) -> None:
        if self.l1_head < 0:
            self.l1_head = self.next_block - 1

    @property
    def caught_up(self) -> bool:
        """Whether every block up to the last head seen is folded."""
        return self.next_block > self.l1_head

    @property
    def lag_blocks(self) -> int:
        """L1 blocks up to the last head seen that are not folded yet."""
        return max(0, self.l1_head - self.next_block + 1)

    def silent_s(self, now: float) -> float:
        """Seconds the L1 has been asked without answering (0 while the last read was answered, as
        while a service folds what it read); `now` is a `time.monotonic()` reading. It grows while
        a read hangs, however long the read's own timeout."""
        return 0.0 if self.asking_since is None else now - self.asking_since

    @property
    def settled_block(self) -> int:
        """The oldest block the service may still be rewound to: what it folded up to it stays."""
        return next(iter(self.tips), self.next_block - 1)

    def read(self, reader: L1Reader) -> Window:
        """Read the L1 head and the next window's events (blocking I/O: run it off the event
        loop), or find that the L1 reorganised what was folded (`Window.fork`). Any failure of the
        reader is a `TransientError`; a reorganisation deeper than the remembered blocks is a
        `CriticalError`."""
        if self.asking_since is None:
            self.asking_since = time.monotonic()
        try:
            if not self.tips and self.next_block > 0:  # the first read: remember where it starts
                start_hash = reader.block_hash(self.next_block - 1)
                if start_hash is not None:
                    self.tips[self.next_block - 1] = start_hash
            head = reader.head_block()
            last = min(head, self.next_block + self.window_blocks - 1)
            fresh = last >= self.next_block
            last_hash = reader.block_hash(last) if fresh else None
            events = reader.events(self.next_block, last) if fresh else []
            fork = self._fork(reader)
            if fork is None and fresh and reader.block_hash(last) != last_hash:
                raise TransientError(f"the L1 reorganised block {last} while it was read")
        except CriticalError:
            raise
        except Exception as exc:
            raise TransientError(f"L1 read failed: {exc}") from exc
        self.answered_at, self.asking_since = time.monotonic(), None
        if fork is not None:
            return Window(head, last, [], fork=fork)
        fresh_events = [e for e in events if (e.l1_block, e.log_index) > self.last_event]
        return Window(head, last, fresh_events, last_hash)

    def _fork(self, reader: L1Reader) -> int | None:
        """None while the L1 still holds the newest remembered block; else the newest remembered
        block it still holds (every block up to it is unchanged: a block's hash covers its
        ancestors)."""
        if not self.tips:
            return None
        blocks = list(self.tips)
        if reader.block_hash(blocks[-1]) == self.tips[blocks[-1]]:
            return None
        for block in reversed(blocks[:-1]):
            if reader.block_hash(block) == self.tips[block]:
                return block
        raise CriticalError(
            f"the L1 reorganised block {blocks[0]}, deeper than the {REWIND_LIMIT_BLOCKS} blocks a "
            "node rewinds: restart it to derive the chain again"
        )

    def mark(self, event: L1Event) -> None:
        """Record that `event` is folded (a window read again skips it)."""
        self.last_event = (event.l1_block, event.log_index)

    def fold(
        self, window: Window, fold: Callable[[list[L1Event]], None], rewind: Callable[[int], None]
    ) -> int:
        """Fold a window's events with `fold` (which calls `mark` as it goes), then move past the
        window; returns how many events there were. An `InvalidBatch` out of a fold is the L1
        history disagreeing with itself (a derivation records a wrong batch as fraud, it never
        raises it): a `CriticalError`. A window that found the L1 reorganised (`Window.fork`)
        has `rewind` take back what was folded after the fork, and the next read starts after it."""
        self.l1_head = window.head
        if window.fork is not None:
            rewind(window.fork)
            self._rewound(window.fork)
            return 0
        if window.events:
            try:
                fold(window.events)
            except InvalidBatch as exc:
                raise CriticalError(f"the L1 history disagrees with itself: {exc}") from exc
        if window.last_hash is not None:
            self._remember(window.last, window.last_hash)
        self.next_block = max(self.next_block, window.last + 1)  # only once the whole window is folded
        return len(window.events)

    def _remember(self, block: int, block_hash: bytes) -> None:
        """Remember a folded block's hash; forget those not needed to rewind `REWIND_LIMIT_BLOCKS`
        (the newest of the blocks that deep stays, as the oldest point to rewind to)."""
        self.tips[block] = block_hash
        while len(self.tips) >= 2:
            oldest, second = list(islice(self.tips, 2))
            if second > block - REWIND_LIMIT_BLOCKS:
                return
            del self.tips[oldest]

    def _rewound(self, fork: int) -> None:
        """Read on after `fork`, whose later blocks the service has taken back."""
        self.next_block = min(self.next_block, fork + 1)
        self.last_event = min(self.last_event, (fork + 1, -1))
        for block in [b for b in self.tips if b > fork]:
            del self.tips[block]
        self.reorgs += 1
        self.last_fork = fork


@dataclass
class LoopHealth:
    """What a service's driver loops say about themselves (its /health)."""

    loops: dict[str, bool] = field(default_factory=dict)
    """Each loop's name, and whether it is running."""
    errors: dict[str, str] = field(default_factory=dict)
    """The error each source (a loop, or a part such as the poster) met and has not got past yet,
    the latest last; a source's entry goes when that source next succeeds."""
    critical: str | None = None
    """Why a loop stopped for good, naming the loop; None while none did."""
    name_errors: bool = True
    """Prefix a loop's errors with the loop's name (a service with several loops)."""

    @property
    def last_error(self) -> str | None:
        """The latest error that a source has not got past yet; None once every one works again."""
        return next(reversed(self.errors.values()), None)

    def fail(self, source: str, error: str) -> None:
        """`source` met `error` (it becomes the latest)."""
        self.errors.pop(source, None)
        self.errors[source] = error

    def recover(self, source: str) -> bool:
        """`source` succeeded: its error is gone; returns whether it had one."""
        return self.errors.pop(source, None) is not None


async def drive(
    name: str,
    step: Callable[[], Awaitable[bool]],
    health: LoopHealth,
    log: Logger,
    *,
    pause_seconds: float,
    error_event: str = "loop_error",
    running: Callable[[], bool] = lambda: True,
) -> None:
    """Run `step` while `running()`: after a step that returns True (nothing left to do now), wait
    `pause_seconds`; after a failure, wait with backoff and go on, unless it was a
    `CriticalError`, which stops the loop."""
    backoff = BACKOFF_FIRST_SECONDS
    health.loops[name] = True
    try:
        while running():
            try:
                idle = await step()
                backoff = BACKOFF_FIRST_SECONDS
                if health.recover(name):
                    log.info("loop_recovered", loop=name)
            except asyncio.CancelledError:
                raise
            except CriticalError as exc:
                health.critical = f"{name}: {exc}"
                log.critical("loop_stopped", loop=name, error=describe(exc))
                return
            except Exception as exc:
                error = describe(exc)
                error = f"{name}: {error}" if health.name_errors else error
                health.fail(name, error)
                if isinstance(exc, TransientError):
                    log.warning(error_event, loop=name, error=error, retry_in=backoff)
                else:
                    log.error(error_event, loop=name, error=error, retry_in=backoff, unexpected=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
                continue
            if idle and pause_seconds:
                await asyncio.sleep(pause_seconds)
    finally:
        health.loops[name] = False
