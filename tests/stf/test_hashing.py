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


def test_use_pysha3__eth_hash_auto__hashes_with_pysha3_even_after_a_first_hash() -> None:
    import eth_hash.auto
    from eth_hash.backends import pycryptodome, pysha3

    from contracts.keccak import use_pysha3

    auto = eth_hash.auto.keccak
    saved = (auto.hasher, auto.preimage)
    try:
        auto.hasher = pycryptodome.keccak256  # as if eth-hash had chosen pycryptodome already
        use_pysha3()
        assert auto.hasher == pysha3.keccak256
        assert auto(b"abc") == keccak(b"abc")
        assert auto.new(b"ab").digest() == pysha3.preimage(b"ab").digest()
    finally:
        auto.hasher, auto.preimage = saved
