"""The two hash functions of the protocol: Keccak-256 (eth-hash, pysha3 backend) and SHA-256.

The pysha3 backend is selected explicitly: eth-hash's automatic choice prefers pycryptodome,
which is about five times slower. `keccak` calls the very function that eth-hash's pysha3 backend
calls, without the backend's extra layers.
"""

from __future__ import annotations

import hashlib
from typing import Final

import sha3
from eth_hash.backends import pysha3 as _pysha3_backend

_BACKEND = _pysha3_backend.backend
"""eth-hash's pysha3 backend object, chosen explicitly (never `eth_hash.auto`)."""

_keccak_256 = sha3.keccak_256
"""`sha3.keccak_256` (safe-pysha3): the function the pysha3 backend calls."""

KECCAK_BACKEND: Final[str] = type(_BACKEND).__module__.rsplit(".", 1)[-1]
"""Name of the eth-hash backend in use ("pysha3")."""

_sha256 = hashlib.sha256


def keccak(data: bytes) -> bytes:
    """Keccak-256 of `data` (32 bytes)."""
    return _keccak_256(data).digest()  # type: ignore[no-any-return]


def keccak_via_backend(data: bytes) -> bytes:
    """Keccak-256 through eth-hash's backend interface (slower; for cross-checks)."""
    return _BACKEND.keccak256(data)


def sha256(data: bytes) -> bytes:
    """SHA-256 of `data` (32 bytes), as the EVM's sha256 precompile computes it."""
    return _sha256(data).digest()
