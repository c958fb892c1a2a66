"""The batch clock: the `l2_time` the next batch declares, and what admission plans with.

A batch's clock is the later of the tip's and the wall clock, the latter capped at
`L2_TIME_ALLOWANCE_SECONDS` past the L1 head only on an L1 whose clock was found behind ours
(`choose_l2_time`); within that, the batch takes the pending transactions whose admission clocks
suit one clock (`sequencer.builder.batch_clock`), no older than the Rollup's lag limit accepts.
The Rollup's refusals of a clock (`REFUSED_AHEAD`, `REFUSED_BEHIND`) move it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sequencer.builder import batch_clock
from sequencer.mempool import PendingTx
from sequencer.stf.chain import Chain

L2_TIME_ALLOWANCE_SECONDS = 1
"""How far past the L1 head's timestamp a batch's clock may run. Every block is at least one
second after its parent, so a clock at most one second past the head is never ahead of the block
that includes the append (the Rollup refuses `l2_time > block.timestamp`), whatever the L1."""

LAG_SLACK_SECONDS = 60
"""A batch's clock stays this far inside the Rollup's lag limit (`MAX_L2_TIME_LAG_SECONDS`) behind
the L1 head, so that the block which includes the append, seconds later, still accepts it."""

REFUSED_AHEAD = "rollup: l2_time ahead of L1"
"""The Rollup's refusal of a clock past the append's block."""
REFUSED_BEHIND = "rollup: l2_time behind L1"
"""The Rollup's refusal of a clock more than `MAX_L2_TIME_LAG_SECONDS` behind the append's block."""


def choose_l2_time(tip_l2_time: int, now: float, head_timestamp: int, *, follow_head: bool = False) -> int:
    """The clock of the next batch (protocol section 8): the later of the tip's `l2_time` and the
    wall clock `now`; with `follow_head`, the wall clock is capped at `head_timestamp +
    L2_TIME_ALLOWANCE_SECONDS`.

    The embedded L1 and anvil stamp a block `max(parent + 1, wall clock)` and Ethereum a slot's
    start, which is after the moment a transaction is sent, so the wall clock is not ahead of the
    append's block on them — and it is what the oracle committee signs its prices with, so a batch
    clock behind it would refuse fresh prices. Only after the Rollup refused a clock as ahead of
    L1 (an L1 whose clock runs behind ours) does the node follow the head, until the Rollup
    refuses a clock as behind.
    """
    clock = int(now)
    if follow_head:
        clock = min(clock, head_timestamp + L2_TIME_ALLOWANCE_SECONDS)
    return max(tip_l2_time, clock)


class L2Clock:
    """The sequencer's batch clock, over the chain's tip and the wall clock."""

    def __init__(self, chain: Chain, wall: Callable[[], float] = time.time) -> None:
        self.chain = chain
        self.wall = wall
        """The wall clock (unix seconds); batch clocks and order checks read it."""
        self.last_head_timestamp: int | None = None
        """The L1 head's timestamp when the last batch clock was chosen."""
        self.max_lag_seconds: int | None = None
        """The Rollup's `MAX_L2_TIME_LAG_SECONDS` (None: unknown, no floor on the batch clock)."""
        self.min_batch_clock = 0
        """No batch clock before this: the wall clock of the last attempt the Rollup refused as
        behind (the transactions' admission clocks were too old for it)."""
        self.follows_head = False
        """Whether the next batch's clock is capped by the L1 head (see `choose_l2_time`): set
        after the Rollup found a clock ahead of its block, cleared after one found it behind."""

    def upper(self, head_timestamp: int) -> int:
        """The latest clock the batch about to be built may have, given the L1 head's timestamp
        (`choose_l2_time`); remembers the head for `estimate`."""
        self.last_head_timestamp = head_timestamp
        return choose_l2_time(
            self.chain.tip_l2_time, self.wall(), head_timestamp, follow_head=self.follows_head
        )

    def plan(self, pending: Sequence[PendingTx], upper: int, max_txs: int) -> tuple[int, int]:
        """The next batch's clock and how many pending transactions it takes (`batch_clock`):
        the clock its transactions were admitted with, within what the L1 accepts."""
        floor = self.min_batch_clock
        lag, head = self.max_lag_seconds, self.last_head_timestamp
        if lag is not None and head is not None:
            # the append's block is stamped near the wall clock even when the head is idle and old
            floor = max(floor, max(head, upper) - lag + min(LAG_SLACK_SECONDS, lag // 2))
        floor = min(floor, upper)  # never past what the L1 allows now
        return batch_clock(pending, tip=self.chain.tip_l2_time, upper=upper, max_txs=max_txs, floor=floor)

    def estimate(self) -> int:
        """The clock a batch built now would have (the last L1 head seen stands for the head):
        what admission plans transactions with."""
        head = self.last_head_timestamp
        if head is None:
            return max(self.chain.tip_l2_time, int(self.wall()))
        return choose_l2_time(self.chain.tip_l2_time, self.wall(), head, follow_head=self.follows_head)

    def refused(self, reason: str | None) -> None:
        """Learn from the Rollup's refusal of an append (its revert reason, if any)."""
        if reason == REFUSED_BEHIND:  # following an idle L1's head fell too far behind
            self.follows_head = False
            self.min_batch_clock = max(self.min_batch_clock, int(self.wall()))  # no older planned clock
        elif reason == REFUSED_AHEAD:  # an L1 whose clock is behind ours
            self.follows_head = True
