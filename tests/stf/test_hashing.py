"""Hash functions: the explicit pysha3 backend and known vectors."""

from __future__ import annotations

import hashlib

from eth_hash.backends.pycryptodome import keccak256 as pycryptodome_keccak

from sequencer.stf.hashing import KECCAK_BACKEND, keccak, keccak_via_backend, sha256


def test_keccak_backend__is_pysha3() -> None:
    assert KECCAK_BACKEND == "pysha3"


def test_keccak__known_vectors() -> None:
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"


def test_keccak__agrees_with_backend_api_and_pycryptodome() -> None:
    for n in (0, 1, 31, 32, 64, 135, 136, 137, 300):
        data = bytes(range(256)) * 2
        assert keccak(data[:n]) == keccak_via_backend(data[:n]) == pycryptodome_keccak(data[:n])


def test_sha256__is_hashlib() -> None:
    assert sha256(b"abc") == hashlib.sha256(b"abc").digest()


def test_eth_hash_auto__after_importing_sequencer__uses_pysha3() -> None:
    import eth_hash.auto

    import sequencer  # noqa: F401  (selects the backend)

    eth_hash.auto.keccak(b"")  # the automatic backend resolves on first use
    chosen = eth_hash.auto.keccak.hasher.__self__  # the resolved backend's bound keccak256
    assert type(chosen).__module__ == "eth_hash.backends.pysha3"
