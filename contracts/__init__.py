"""Vyper sources, their cached build, and typed web3 bindings."""

import sequencer  # noqa: F401  (first: selects eth-hash's pysha3 backend before web3 hashes anything)
