"""`rollup demo --scenario escape` end to end with real processes: the sequencer stops, the Rollup
is frozen, and every trader gets its money out on L1 from L1 data alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.demo_escape import DEPOSITS, run_escape_demo

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

UNIT = 10**6


def test_escape_demo__sequencers_gone__every_trader_exits_once_within_what_the_bridge_held(
    tmp_path: Path,
) -> None:
    s = run_escape_demo(tmp_path / "demo")
    assert s["frozen"] is True and s["frozen_batch_count"] > 0
    assert s["early_freeze_refused"] in ("rollup: no overdue queue entry", "rollup: escape delay not passed")
    assert (
        s["accounts_exited"] == 3 and s["second_exit_refused"] is True and s["second_payout_refused"] is True
    )
    maker, taker, leveraged = s["equities"]
    # the price fell: the maker (short) gained, the longs lost, nobody went below zero
    assert maker > DEPOSITS[0] * UNIT and 0 < leveraged < DEPOSITS[2] * UNIT
    assert taker < DEPOSITS[1] * UNIT - s["withdrawals_claimed"]
    assert s["paid"] == s["equities"] and s["paid_total"] == s["claims_total"] == s["exit_pool"]
    assert s["withdrawals_claimed"] == 1_000 * UNIT and s["refunded"] == 500 * UNIT
    paid_out = s["paid_total"] + s["withdrawals_claimed"] + s["refunded"]
    assert paid_out <= s["bridge_held_before"]
    assert s["bridge_held_after"] == s["bridge_held_before"] - paid_out  # what is left: the insurance fund
    assert s["bridge_held_after"] == s["insurance"]
    assert s["watcher_health"] == "rollup_frozen"
