"""Benchmark of the state machine (not a test): `.venv/bin/python tests/stf/bench_stf.py [LEAVES ...]`.

Prints, for trees of the given sizes: SMT updates/s (2 writes + root, as a transaction does),
signature-pre-verified transfers/s with a state root after every transaction, full `apply_tx`
(decode + signature + root) per second, and the raw keccak rate measured in the same run (the
floor: a transfer costs about 2 * (depth + 2) keccaks). One core; the machine may be shared.
"""

from __future__ import annotations

import random
import sys
import time

import sha3

from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.eip712 import address_of, sign_transfer
from sequencer.stf.hashing import keccak
from sequencer.stf.smt import SparseMerkleTree
from sequencer.stf.state import State, copy_state, set_account, state_root
from sequencer.stf.transition import apply_decoded, apply_tx
from sequencer.stf.types import Account, ChainConfig, L1Context


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>9,.0f}/s"


def bench_smt(leaves: int, pairs: int = 20_000) -> None:
    tree = SparseMerkleTree()
    keys = [keccak(i.to_bytes(8, "big")) for i in range(leaves)]
    for key in keys:
        tree.set(key, b"\x01" * 64)
    _ = tree.root
    rng = random.Random(1)
    picks = [keys[rng.randrange(leaves)] for _ in range(2 * pairs)]
    values = [rng.randbytes(64) for _ in range(2 * pairs)]
    t0 = time.perf_counter()
    for i in range(pairs):
        tree.set(picks[2 * i], values[2 * i])
        tree.set(picks[2 * i + 1], values[2 * i + 1])
        _ = tree.root
    dt = time.perf_counter() - t0
    per_pair = dt / pairs * 1e6
    print(f"{leaves:>7} leaves  SMT updates (2 sets + root) {rate(2 * pairs, dt)}  ({per_pair:.1f} us/pair)")


def bench_transfers(leaves: int, count: int = 10_000) -> None:
    config = ChainConfig(31337, b"\x11" * 20)
    ctx = L1Context(0, {})
    rng = random.Random(7)
    signers = [(i + 1).to_bytes(32, "big") for i in range(200)]
    addresses = [address_of(k) for k in signers]
    state = State()
    for _ in range(leaves):
        set_account(state, rng.randbytes(20), Account(10**18, 0))
    for a in addresses:
        set_account(state, a, Account(10**30, 0))
    state_root(state)
    nonces = [0] * len(signers)
    txs = []
    for i in range(count):
        s = rng.randrange(len(signers))
        to = addresses[(s + 1) % len(signers)] if i % 2 else rng.randbytes(20)
        txs.append(sign_transfer(signers[s], to, 1000, nonces[s], config))
        nonces[s] += 1
    raws = [encode_tx(t) for t in txs]
    hashes = [tx_hash(r) for r in raws]
    twin = copy_state(state)
    t0 = time.perf_counter()
    for tx, h in zip(txs, hashes, strict=True):
        apply_decoded(state, tx, ctx, config, signer_verified=True, tx_hash=h)
    dt = time.perf_counter() - t0
    print(f"{leaves:>7} leaves  transfers, pre-verified, root/tx  {rate(count, dt)}")
    t0 = time.perf_counter()
    for raw in raws:
        apply_tx(twin, raw, ctx, config)
    dt = time.perf_counter() - t0
    print(f"{leaves:>7} leaves  apply_tx with signature check    {rate(count, dt)}")
    assert state_root(state) == state_root(twin)


def bench_keccak(n: int = 300_000) -> None:
    k, data = sha3.keccak_256, b"x" * 64
    t0 = time.perf_counter()
    for _ in range(n):
        k(data).digest()
    print(f"                keccak256(64 B) raw                {rate(n, time.perf_counter() - t0)}")


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    for size in sizes:
        bench_keccak()
        bench_smt(size)
        bench_transfers(size)
