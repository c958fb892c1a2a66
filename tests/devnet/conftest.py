"""Fixtures: real L1 processes on 127.0.0.1 (our py-evm node, and anvil for `anvil` tests).

Each node is started once per module and stopped by its PID at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.anvil import AnvilNotFound, find_anvil, run_anvil
from devnet.procs import L1Handle, run_l1node


@pytest.fixture(scope="module")
def l1node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[L1Handle]:
    log = Path(tmp_path_factory.mktemp("l1node")) / "l1node.log"
    with run_l1node(port=0, log_path=log) as handle:
        yield handle


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[L1Handle]:
    try:
        find_anvil()
    except AnvilNotFound as err:
        pytest.skip(str(err))
    log = Path(tmp_path_factory.mktemp("anvil")) / "anvil.log"
    with run_anvil(port=0, log_path=log) as handle:
        yield handle


@pytest.fixture(scope="module", params=["l1node", pytest.param("anvil", marks=pytest.mark.anvil)])
def l1(request: pytest.FixtureRequest) -> L1Handle:
    """Each web3 test runs against both L1s."""
    handle: L1Handle = request.getfixturevalue(request.param)
    return handle
