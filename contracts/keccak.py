"""The keccak backend of every library that hashes through `eth_hash.auto` (web3, eth-account,
eth-utils). eth-hash would pick pycryptodome, about five times slower than pysha3 (safe-pysha3),
so each entry point (every `main`, the test suite) calls `use_pysha3()` first. The state machine
does not depend on it: `sequencer.stf.hashing` calls pysha3 directly.
"""

from __future__ import annotations


def use_pysha3() -> None:
    """Make `eth_hash.auto.keccak` hash with pysha3 from now on, whether or not it has hashed
    (and so chosen a backend) already."""
    from eth_hash.auto import keccak
    from eth_hash.backends import pysha3

    keccak.hasher = pysha3.keccak256  # type: ignore[method-assign]
    keccak.preimage = pysha3.preimage  # type: ignore[method-assign]
