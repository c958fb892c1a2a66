"""The demo scenario, end to end with real processes, on the embedded L1 and on anvil."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.demo import run_demo

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def check_summary(summary: dict[str, object]) -> None:
    """What the demo must show: two markets traded (fills in both, a bundle, a cancel), a
    liquidation, the set's leader killed under orders with nothing acknowledged lost, a fill's
    fraud proven once, later batches reverted, slash, payout."""
    assert summary["markets"] == 2
    assert (
        isinstance(summary["fills"], int) and summary["fills"] >= 7
    )  # 2 trades, 2 legs, 2 for the long, 1 on B
    assert summary["liquidations"] >= 1
    applied = summary["transactions_applied"]
    assert isinstance(applied, dict)
    assert applied["bundle_fill"] == 1 and applied["cancel"] == 1 and applied["oracle_update"] >= 2
    assert summary["fraud_tx_types"] == ["fill"]
    assert summary["frauds_proven"] == 1
    assert summary["sequencers_slashed"] == 1
    assert isinstance(summary["batches_reverted"], int) and summary["batches_reverted"] >= 1
    assert summary["challenger_reward_wei"] == 10**18 // 2  # half of the 1 ETH bond
    assert summary["withdrawals_finalized"] == 1
    assert summary["withdrawn_amount"] == 1_234 * 10**6
    assert summary["second_claim_refused"] is True
    assert summary["final_state_root_agrees"] is True
    assert summary["sequencer_set"] == 3 and summary["leader_changes"] >= 2
    assert summary["acked_orders_lost"] == 0
    assert isinstance(summary["failover_ms"], float) and 0 < summary["failover_ms"] < 10_000
    # two watchers raced on the one fraud: exactly one proof won, and both agree on the root
    assert summary["watcher_proofs_won"] in ([1, 0], [0, 1])


def test_demo__embedded_l1__whole_story(tmp_path: Path) -> None:
    check_summary(run_demo(tmp_path / "demo", l1="embedded", window=10))


@pytest.mark.anvil
def test_demo__anvil__same_services_unchanged(tmp_path: Path) -> None:
    check_summary(run_demo(tmp_path / "demo", l1="anvil", window=10))
