"""Shared test setup: import `sequencer` first, so eth-hash's automatic backend is pysha3 for
every library (web3 hashes at import time, and the first hash fixes the backend)."""

import sequencer  # noqa: F401
