"""Health: when a service that follows the L1 calls itself healthy, and why not.

A service is healthy (`/health` 200) while it has no `Problem`; each problem has a code and a
message naming the limit it broke. The limits are settings of each service (`HealthLimits`). They
are judged from timestamps (since when the L1 has been asked without answering, since when work
waits to be sent), never from the outcome of a call in progress, so an L1 that hangs turns /health
to 503 after `l1_silence_s` however long the hanging call's own timeout, and /health answers 200
again as soon as the cause is gone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from contracts.follow import L1Cursor, LoopHealth
from sequencer.stf.l1types import L1Frozen

L1_SILENCE_LIMIT_S = 10.0
"""Default of `HealthLimits.l1_silence_s`."""
L1_LAG_LIMIT_BLOCKS = 100
"""Default of `HealthLimits.l1_lag_blocks`."""
SEND_STALL_LIMIT_S = 30.0
"""Default of `HealthLimits.send_stall_s`."""


@dataclass(frozen=True)
class HealthLimits:
    """When a service stops calling itself healthy."""

    l1_silence_s: float = L1_SILENCE_LIMIT_S
    """The L1 counts as not answering once it has been asked this long without answering a read
    (the read under way and the failed ones before it)."""
    l1_lag_blocks: int = L1_LAG_LIMIT_BLOCKS
    """The service counts as behind the L1 (not synced) while more L1 blocks than this wait to be
    folded."""
    send_stall_s: float = SEND_STALL_LIMIT_S
    """Sending to the L1 (batches, fraud proofs) counts as failing once work has waited this long
    without a success."""

    def facts(self) -> dict[str, float]:
        """The limits, as /health shows them."""
        return asdict(self)


@dataclass(frozen=True)
class Problem:
    """One reason a service is not healthy."""

    code: str
    """Machine-readable: `not_synced`, `l1_unreachable`, `behind_l1`, `posting_stalled`,
    `proof_stalled`, `loop_stopped`, `critical`, `rollup_frozen`."""
    message: str
    """What and how long, with the limit."""


def l1_silence(cursor: L1Cursor, limits: HealthLimits, now: float) -> Problem | None:
    """`l1_unreachable` once the L1 has been asked for longer than the limit without answering."""
    silent = cursor.silent_s(now)
    if silent <= limits.l1_silence_s:
        return None
    return Problem(
        "l1_unreachable",
        f"the L1 has not answered a read for {silent:.1f} s (limit {limits.l1_silence_s:g} s)",
    )


def rollup_frozen(frozen: L1Frozen | None) -> Problem | None:
    """`rollup_frozen` once the Rollup is frozen (protocol section 12): no batch will be appended
    again, nor proven wrong; accounts exit on L1 from the frozen state."""
    if frozen is None:
        return None
    return Problem(
        "rollup_frozen",
        f"the Rollup was frozen at L1 time {frozen.timestamp} after {frozen.batch_count} batches"
        f" (state root 0x{frozen.post_root.hex()}): no batch can be appended; accounts exit on L1",
    )


def send_stall(code: str, what: str, since: float | None, limits: HealthLimits, now: float) -> Problem | None:
    """`code` once `what` has waited since `since` (a `time.monotonic()` reading; None: nothing
    waits) for longer than the limit."""
    if since is None or now - since <= limits.send_stall_s:
        return None
    return Problem(code, f"{what} for {now - since:.1f} s (limit {limits.send_stall_s:g} s)")


def follow_problems(
    cursor: L1Cursor, loops: LoopHealth, critical: str | None, limits: HealthLimits, now: float
) -> list[Problem]:
    """The problems every service that follows the L1 can have: a critical error, a loop that does
    not run, an L1 that does not answer, a service behind the L1."""
    problems = []
    if critical is not None:
        problems.append(Problem("critical", critical))
    problems += [
        Problem("loop_stopped", f"the {name} loop is not running")
        for name, running in loops.loops.items()
        if not running
    ]
    silence = l1_silence(cursor, limits, now)
    if silence is not None:
        problems.append(silence)
    lag = cursor.lag_blocks
    if lag > limits.l1_lag_blocks:
        problems.append(
            Problem("behind_l1", f"{lag} L1 blocks not folded yet (limit {limits.l1_lag_blocks})")
        )
    return problems


def l1_facts(cursor: L1Cursor, now: float) -> dict[str, Any]:
    """Where the service is in the L1, as /health shows it."""
    return {
        "head": cursor.l1_head,
        "next_block": cursor.next_block,
        "silent_s": round(cursor.silent_s(now), 3),
        "reorgs": cursor.reorgs,
        "last_fork": cursor.last_fork,
    }


def report(problems: list[Problem], loops: LoopHealth, critical: str | None, **facts: Any) -> dict[str, Any]:
    """A /health body: `ok` (no problem), the `reasons` (code and message each), the loops, the
    latest error not got past yet, the critical error, and the service's own `facts`."""
    return {
        "ok": not problems,
        "reasons": [asdict(p) for p in problems],
        **facts,
        "loops": dict(loops.loops),
        "last_error": loops.last_error,
        "critical": critical,
    }
