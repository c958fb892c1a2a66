"""The embedded L1, deployment, the orchestrator and the rollup CLI."""

import sequencer  # noqa: F401  (first: selects eth-hash's pysha3 backend before web3 hashes anything)
