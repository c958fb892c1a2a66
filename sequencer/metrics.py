"""Prometheus metrics of the sequencer (one registry per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

TXS_ACCEPTED = Counter("rollup_txs_accepted_total", "Transactions acknowledged", ["type"], registry=REGISTRY)
TXS_REJECTED = Counter("rollup_txs_rejected_total", "Transactions refused", ["code"], registry=REGISTRY)
BATCHES_POSTED = Counter(
    "rollup_batches_posted_total", "Batches appended on L1 by this node", registry=REGISTRY
)
BATCHES_SUPERSEDED = Counter(
    "rollup_batches_superseded_total",
    "Batches the Rollup refused because another batch had already extended the root they were built on",
    registry=REGISTRY,
)
BATCH_POST_FAILURES = Counter("rollup_batch_post_failures_total", "Failed batch postings", registry=REGISTRY)
BATCH_TXS = Histogram(
    "rollup_batch_txs", "Transactions per posted batch", buckets=(1, 4, 16, 64, 128, 256), registry=REGISTRY
)
PENDING = Gauge(
    "rollup_mempool_pending", "Acknowledged transactions not yet in an L1 batch", registry=REGISTRY
)
L1_BATCHES = Gauge("rollup_l1_batches", "Batches on L1 (the tip index + 1)", registry=REGISTRY)
REVERTS_SEEN = Counter("rollup_reverts_seen_total", "L1 batch reverts observed", registry=REGISTRY)
L1_REORGS = Counter("rollup_l1_reorgs_total", "L1 reorganisations rewound", registry=REGISTRY)
ADMIT_SECONDS = Histogram(
    "rollup_admit_seconds",
    "Time to admit one transaction (decode, verify, plan, durable log)",
    buckets=(0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1),
    registry=REGISTRY,
)
ADMISSION_ROUND_ITEMS = Histogram(
    "rollup_admission_round_items",
    "Items (orders, transactions, cancels) admitted by one admission round, i.e. one durable commit",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
ADMISSION_SIGNATURE_WAIT_SECONDS = Histogram(
    "rollup_admission_signature_wait_seconds",
    "How long admission waited for the first queued request's signers from the signature worker",
    buckets=(0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1),
    registry=REGISTRY,
)
TXS_DROPPED = Counter(
    "rollup_txs_dropped_total",
    "Acknowledged transactions dropped because they no longer applied (by error code)",
    ["code"],
    registry=REGISTRY,
)
CLUSTER_LEADER = Gauge(
    "rollup_cluster_leader", "1 while this member of the sequencer set leads, else 0", registry=REGISTRY
)
CLUSTER_LOG_POSITION = Gauge(
    "rollup_cluster_log_position",
    "Last position of the set's log this member applied or wrote",
    registry=REGISTRY,
)
CLUSTER_LEADER_CHANGES = Counter(
    "rollup_cluster_leader_changes_total", "Lease holders this member has seen take over", registry=REGISTRY
)
CLUSTER_APPEND_SECONDS = Histogram(
    "rollup_cluster_append_seconds",
    "Time from publishing an entry to the set's log to its acknowledgement by a quorum of replicas",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    registry=REGISTRY,
)
CLUSTER_ENTRY_COMMITS = Histogram(
    "rollup_cluster_entry_commits",
    "Commits (admission rounds) the leader put in one entry of the set's log",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
