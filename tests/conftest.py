"""Shared test setup: eth-hash's pysha3 backend for every library (as each entry point selects it),
and the state-machine vectors and exchange fixtures of `tests/stf` importable from every test
folder (the differential and service tests use the same ones).
"""

import sys
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadFileScheduling

from contracts.keccak import use_pysha3

use_pysha3()

sys.path.insert(0, str(Path(__file__).resolve().parent / "stf"))


E2E_FOLDER = "tests/e2e/"
RUN_TOGETHER = {
    "tests/e2e/test_bench.py": "timed",
    "tests/e2e/test_l1_outage.py": "timed",
    "tests/cluster/test_batch_log.py": "nats",
    "tests/cluster/test_bench_cluster.py": "nats",
    "tests/cluster/test_lease.py": "nats",
    "tests/cluster/test_log.py": "nats",
    "tests/cluster/test_renewer.py": "nats",
    "tests/cluster/test_replication.py": "nats",
}
"""Test files that `make unit` (`pytest -n 2 --dist loadfile`) hands to one worker as one group,
which it runs one test at a time (every other file is a group of its own): "timed" time answers,
and the bench loads both cores, so no two of them run side by side; "nats" use the session's NATS
cluster, started once instead of once per worker."""


def _group(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return RUN_TOGETHER.get(path, path)


class GroupedFileScheduling(LoadFileScheduling):
    """xdist's `--dist loadfile`, with the files of `RUN_TOGETHER` merged into their groups."""

    def _split_scope(self, nodeid: str) -> str:
        return _group(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> GroupedFileScheduling | None:
    if config.getvalue("dist") != "loadfile":
        return None
    return GroupedFileScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a worker of `pytest -n`: the end-to-end tests first, the groups of `RUN_TOGETHER` among
    them before the files, so that the longest work is handed out first (with
    `--no-loadscope-reorder`, groups are handed out in this order)."""
    if not hasattr(config, "workerinput"):
        return

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        if not path.startswith(E2E_FOLDER):
            return 2
        return 0 if path in RUN_TOGETHER else 1

    items.sort(key=rank)
