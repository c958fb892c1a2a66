"""`python -m devnet.bench_cluster` on the session's cluster: every round appended, fenced, and
read by every follower, and the figures reported."""

from __future__ import annotations

from devnet.bench_cluster import bench_cluster
from devnet.jetstream import NatsCluster


def test_bench_cluster__existing_cluster__reports_rate_and_latencies(nats_cluster: NatsCluster) -> None:
    figures = bench_cluster(rounds=40, followers=2, urls=nats_cluster.urls)
    assert figures["cluster_rounds"] == 40
    assert figures["cluster_round_bytes"] > 60_000
    assert figures["cluster_rounds_per_s"] > 0
    assert 0 < figures["cluster_append_ms_p50"] <= figures["cluster_append_ms_p99"]
    assert figures["cluster_followers_behind_ms"] >= 0
    assert figures["cluster_servers_cpu_share"] is None  # not our processes: not measured
