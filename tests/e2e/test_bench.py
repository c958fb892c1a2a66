"""`rollup bench --quick` runs every benchmark and ends with one JSON line; proofs and escape exits
stay under 1M gas."""

from __future__ import annotations

import json

import pytest

from devnet.bench import main

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_bench__quick__json_line_with_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--quick"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = json.loads(last)
    for key in (
        "stf_txs_per_s",
        "watcher_txs_per_s",
        "l1_gas_per_tx",
        "fraud_proof_gas",
        "http_txs_accepted_per_s",
        "stf_fills_per_s",
        "stf_fills_floor_tree_only_per_s",
        "orders_accepted_per_s",
        "orders_floor_per_s",
        "order_ack_p99_ms",
        "order_ack_floor_ms",
        "order_ack_server_cpu_share",
        "orders_l1_cpu_share",
        "orders_server_helpers_cpu_share",
        "orders_dropped_after_ack",  # the bench fails before printing unless it is 0
        "orders_accepted_per_s_replicated",
        "order_ack_p99_ms_replicated",
        "failover_ms",
        "failover_to_batch_ms",
        "orders_replicated_ratio",
    ):
        assert key in figures
    assert figures["acked_orders_lost"] == 0 and figures["failovers"] == 1
    assert figures["orders_l1"] in ("anvil", "embedded")
    assert figures["keccak_backend"] == "pysha3"
    # gas is deterministic (not a timing): every transaction type's proof fits the goal
    assert set(figures["fraud_proof_gas"]) >= {
        "deposit",
        "transfer",
        "withdraw",
        "undecodable",
        "bad_signature",
        "deposit_with_positions",
        "transfer_with_positions",
        "withdraw_with_positions",
        "l1message",
        "cancel",
        "oracle_update",
        "funding",
        "fill",
        "bundle_fill",
        "liquidate",
        "deleverage",
        "forced_withdraw",
        "forced_transfer",
        "forced_cancel",
        "forced_refused",
    }
    assert all(0 < gas < 1_000_000 for gas in figures["fraud_proof_gas"].values())
    # an exit from a frozen Rollup (16 markets, 8 positions) too, registration and payout alike
    assert set(figures["escape_exit_gas_detail"]) >= {"register_8_positions_short", "pay_8_positions_short"}
    assert 0 < figures["escape_exit_gas"] == max(figures["escape_exit_gas_detail"].values()) < 1_000_000
    assert 0 < figures["l1_gas_per_tx"] < 30_000
