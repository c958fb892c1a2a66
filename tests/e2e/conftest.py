"""Fixtures for end-to-end tests: real processes on 127.0.0.1, stopped by their own PIDs. When
such a test fails, its report ends with each service's notable log events (a CI run keeps no
files), newest last."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.deploy import DeployParams
from devnet.orchestrator import Network
from tests.e2e.helpers import Clients

NOTABLE_LEVELS = {"warning", "error", "critical"}
NOTABLE_EVENTS = {"leading", "leadership_gained", "deposed", "synced", "mempool_rebased", "l1_reorg"}
"""Info events worth a line in a failed test's report, besides every warning and error."""
ROUTINE_EVENTS = {"forward_failed"}
"""Warnings every failover brings by the dozen: left out of the report."""
NOTABLE_PER_SERVICE = 12
"""The last this many notable events of each service go into the report."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    net = getattr(item, "funcargs", {}).get("network")
    if report.failed and call.when == "call" and isinstance(net, Network):
        report.sections.append(("service events (the last of each)", notable_events(net)))
    return report


def notable_events(net: Network) -> str:
    """The last `NOTABLE_PER_SERVICE` warnings, errors and `NOTABLE_EVENTS` of every service's log."""
    lines: list[str] = []
    for service in net.services.values():
        try:
            text = service.process.log_path.read_text(errors="replace")
        except OSError as exc:
            lines.append(f"{service.name}: log unreadable ({exc})")
            continue
        notable = []
        for raw in text.splitlines():
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(event, dict) or event.get("event") in ROUTINE_EVENTS:
                continue
            if event.get("level") in NOTABLE_LEVELS or event.get("event") in NOTABLE_EVENTS:
                notable.append(raw[:300])
        lines.extend(f"{service.name}: {raw}" for raw in notable[-NOTABLE_PER_SERVICE:])
    return "\n".join(lines)


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
