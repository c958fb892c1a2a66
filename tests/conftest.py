"""Shared test setup: eth-hash's pysha3 backend for every library (as each entry point selects it),
and the state-machine vectors and exchange fixtures of `tests/stf` importable from every test
folder (the differential and service tests use the same ones).
"""

import sys
from pathlib import Path

from contracts.keccak import use_pysha3

use_pysha3()

sys.path.insert(0, str(Path(__file__).resolve().parent / "stf"))
