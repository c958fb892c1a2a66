"""The watcher, the fraud-proof builder and the challenger."""

import sequencer  # noqa: F401  (first: selects eth-hash's pysha3 backend before web3 hashes anything)
