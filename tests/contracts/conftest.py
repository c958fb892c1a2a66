"""Fixtures of the contract tests: a fresh eth-tester chain with the rollup deployed."""

from __future__ import annotations

import dataclasses

import pytest
from contracts_harness import Harness

from sequencer.stf.state import State


@pytest.fixture(scope="session")
def deployed() -> tuple[Harness, int]:
    """One chain with the contracts deployed, and eth-tester's snapshot of it just after."""
    base = Harness.create()
    return base, base.w3.provider.ethereum_tester.take_snapshot()  # type: ignore[attr-defined]


@pytest.fixture
def h(deployed: tuple[Harness, int]) -> Harness:
    """A fresh chain with Token, Rollup, Bridge and FraudVerifier deployed and wired: the session's
    deployment reverted to its snapshot (every account, balance, nonce and storage slot as after
    the deployment), with an empty honest L2 state."""
    base, snapshot = deployed
    tester = base.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    tester.revert_to_snapshot(snapshot)
    # the snapshot's head is as old as the session; a deployment made now has a head of now
    tester.mine_blocks(1)
    return dataclasses.replace(base, state=State())
