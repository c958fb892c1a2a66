"""Fixtures of the contract tests: a fresh eth-tester chain with the rollup deployed."""

from __future__ import annotations

import pytest
from contracts_harness import Harness


@pytest.fixture
def h() -> Harness:
    """A fresh chain with Token, Rollup, Bridge and FraudVerifier deployed and wired."""
    return Harness.create()
