"""The sequencer service and, in `sequencer.stf`, the state machine.

Importing this package selects eth-hash's pysha3 backend for every library that hashes through
`eth_hash.auto` (web3, eth-account, eth-utils): its automatic choice would take pycryptodome,
about five times slower. The choice is made lazily on the first hash, so setting it here, before
any of our code hashes, is enough. `sequencer.stf.hashing` calls pysha3 directly either way.
"""

import os

os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
