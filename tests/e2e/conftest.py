"""Fixtures for end-to-end tests: real processes on 127.0.0.1, stopped by their own PIDs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.deploy import DeployParams
from devnet.orchestrator import Network
from tests.e2e.helpers import Clients


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    """An embedded L1 with the contracts deployed (window 600 s); services are started by the test."""
    net = Network.start(tmp_path / "net", params=DeployParams(challenge_window_seconds=600))
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture
def clients(network: Network) -> Clients:
    return Clients(network)
