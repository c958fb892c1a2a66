"""Shared test setup.

Import `sequencer` first, so eth-hash's automatic backend is pysha3 for every library (web3 hashes
at import time, and the first hash fixes the backend). The state-machine vectors and exchange
fixtures in `tests/stf` are importable from every test folder (the differential and service
tests use the same ones).
"""

import sys
from pathlib import Path

import sequencer  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent / "stf"))
