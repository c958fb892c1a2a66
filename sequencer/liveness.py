"""Liveness: whether the sequencer is healthy, and whether it may acknowledge, judged against its
limits (`contracts.health.HealthLimits`).

The node is unhealthy (`/health` 503 with the reasons) while it has not caught up with the L1, while
the L1 has been asked for `l1_silence_s` without answering a read, while it is more than
`l1_lag_blocks` behind the L1, while work has waited `send_stall_s` without a batch appended, while
a loop does not run, after a critical error, or once the Rollup is frozen (`rollup_frozen`: no
batch can be appended again, so writes are refused for good). While the L1 is away it keeps
acknowledging only within two bounds it states in /health: `max_pending` transactions not yet on
the L1, and the two time limits; past either it refuses (`overloaded`, `l1_unavailable`) rather
than pile up work it may have to drop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from contracts.follow import L1Cursor, LoopHealth
from contracts.health import (
    HealthLimits,
    Problem,
    follow_problems,
    l1_facts,
    l1_silence,
    report,
    rollup_frozen,
    send_stall,
)
from sequencer.errors import L1Unavailable
from sequencer.poster import Poster

POSTING_STALLED = "posting_stalled"
"""The problem code of work waiting too long for a batch."""
ROLLUP_FROZEN = "rollup_frozen"
"""The problem code of a frozen Rollup (protocol section 12)."""


class Liveness:
    """Judges one node: its L1 cursor, its poster and its loops, against `limits`."""

    def __init__(
        self,
        limits: HealthLimits,
        cursor: L1Cursor,
        poster: Poster,
        loops: LoopHealth,
        *,
        synced: Callable[[], bool],
        critical: Callable[[], str | None],
        pending: Callable[[], int],
        max_pending: int,
    ) -> None:
        self.limits = limits
        self.cursor = cursor
        self.poster = poster
        self.loops = loops
        self.synced = synced
        self.critical = critical
        """Why the node stopped (a loop, or a batch it cannot read); None while nothing did."""
        self.pending = pending
        """Transactions acknowledged and not yet on the L1."""
        self.max_pending = max_pending

    def _frozen(self) -> Problem | None:
        return rollup_frozen(self.poster.chain.frozen)

    def _stall(self, now: float) -> Problem | None:
        waiting = self.poster.unposted_since
        return send_stall(POSTING_STALLED, "no batch appended with work waiting", waiting, self.limits, now)

    def check_admission(self) -> None:
        """Raise `L1Unavailable` while the L1 has not answered, or no batch could be posted, for
        longer than the limits (cheap: every request asks)."""
        now = time.monotonic()
        problem = self._frozen() or l1_silence(self.cursor, self.limits, now) or self._stall(now)
        if problem is not None:
            raise L1Unavailable(f"not acknowledging: {problem.message}")

    def problems(self, now: float) -> list[Problem]:
        """Every reason the node is not healthy now."""
        problems = []
        if not self.synced():
            problems.append(
                Problem(
                    "not_synced",
                    f"catching up with the L1 (block {self.cursor.next_block - 1} of {self.cursor.l1_head})",
                )
            )
        problems += follow_problems(self.cursor, self.loops, self.critical(), self.limits, now)
        for problem in (self._stall(now), self._frozen()):
            if problem is not None:
                problems.append(problem)
        return problems

    def health(self) -> dict[str, Any]:
        """The /health body (see `contracts.health.report`)."""
        now = time.monotonic()
        problems = self.problems(now)
        admitting = self.synced() and not any(
            p.code in {"l1_unreachable", POSTING_STALLED, ROLLUP_FROZEN} for p in problems
        )
        since = self.poster.unposted_since
        return report(
            problems,
            self.loops,
            self.critical(),
            synced=self.synced(),
            admitting=admitting,
            pending=self.pending(),
            max_pending=self.max_pending,
            unposted_s=None if since is None else round(now - since, 3),
            l1=l1_facts(self.cursor, now),
            limits=self.limits.facts(),
        )
