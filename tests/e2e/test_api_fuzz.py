"""Schemathesis against the OpenAPI documents of a real sequencer and a real watcher (processes on
127.0.0.1, over anvil when installed, else the embedded L1): every phase (coverage's boundary
values, fuzzing, stateful), every check, and `api_fuzz_checks.error_in_the_documented_form`:
no server error, every answer as documented, every error in the one error body."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.anvil import AnvilNotFound, find_anvil
from devnet.deploy import DeployParams
from devnet.orchestrator import SEQ_A, WATCHER_1, Network
from devnet.procs import REPO_ROOT

HERE = Path(__file__).resolve().parent
RUN_TIMEOUT_S = 120
"""A run that has not ended by then fails the test (each takes seconds)."""


def _l1() -> str:
    try:
        find_anvil()
    except AnvilNotFound:
        return "embedded"
    return "anvil"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Network]:
    """A sequencer and a watcher on a fresh L1 with the devnet's markets."""
    net = Network.start(tmp_path / "net", l1=_l1(), params=DeployParams(challenge_window_seconds=600))
    try:
        net.start_sequencer("sequencer-a", SEQ_A)
        net.start_watcher("watcher-1", WATCHER_1)
        yield net
    finally:
        net.stop()


def schemathesis(url: str, max_examples: int) -> subprocess.CompletedProcess[str]:
    """One bounded `schemathesis run` against `url`'s OpenAPI document, with every check."""
    argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml")]
    argv += ["--no-color", "run", f"{url}/openapi.json", "--checks", "all"]
    argv += ["--max-examples", str(max_examples), "--request-timeout", "10"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.api_fuzz_checks", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )


@pytest.mark.e2e
def test_schemathesis__sequencer_and_watcher__no_server_error_every_error_documented(served: Network) -> None:
    for name, max_examples, least in (("sequencer-a", 25, 1000), ("watcher-1", 50, 20)):
        run = schemathesis(served.services[name].url, max_examples)
        assert run.returncode == 0, f"{name}:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
        counted = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
        assert counted is not None and counted[1] == counted[2], run.stdout[-2000:]
        assert int(counted[1]) >= least, run.stdout[-2000:]  # the run reached every operation
        for service in served.services.values():
            service.process.check_alive()  # nothing it was sent stopped a service
