"""A real three-node NATS JetStream cluster on 127.0.0.1, started once for the session's cluster
tests and stopped node by node, by PID, at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devnet.jetstream import NatsCluster, run_nats_cluster


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with run_nats_cluster(tmp_path_factory.mktemp("nats"), size=3) as cluster:
        yield cluster
