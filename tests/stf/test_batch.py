"""Batch trees: merkletools' shape, our proofs, and the on-chain-style verifier."""

from __future__ import annotations

import hashlib

import pytest
from merkletools import MerkleTools

from sequencer.stf.batch import (
    batch_roots,
    merkle_proof,
    merkle_root,
    proof_length,
    root_leaf,
    tx_leaf,
    verify_merkle_proof,
)


def leaves_of(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


def manual_root(leaves: list[bytes]) -> bytes:
    level = list(leaves)
    while len(level) > 1:
        nxt = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


@pytest.mark.parametrize("count", range(1, 41))
def test_proofs__agree_with_merkletools_for_every_index(count: int) -> None:
    leaves = leaves_of(count)
    mt = MerkleTools(hash_type="sha256")
    mt.add_leaf([x.hex() for x in leaves])
    mt.make_tree()
    root = merkle_root(leaves)
    assert root.hex() == mt.get_merkle_root()
    assert root == manual_root(leaves)
    for i in range(count):
        proof = merkle_proof(leaves, i)
        assert len(proof) == proof_length(i, count)
        assert mt.validate_proof(mt.get_proof(i), leaves[i].hex(), root.hex())
        assert verify_merkle_proof(leaves[i], i, count, proof, root)
        # wrong index, wrong count, wrong leaf, wrong length: refused
        if count > 1:
            assert not verify_merkle_proof(leaves[i], (i + 1) % count, count, proof, root)
            assert not verify_merkle_proof(leaves[(i + 1) % count], i, count, proof, root)
        assert not verify_merkle_proof(leaves[i], i, count, [*proof, root], root)
        if proof:
            assert not verify_merkle_proof(leaves[i], i, count, proof[:-1], root)
            bad = bytes([proof[0][0] ^ 1]) + proof[0][1:]
            assert not verify_merkle_proof(leaves[i], i, count, [bad, *proof[1:]], root)
        if proof_length(i, count + 1) != len(proof):
            assert not verify_merkle_proof(leaves[i], i, count + 1, proof, root)
    assert not verify_merkle_proof(leaves[0], count, count, [], root)
    assert not verify_merkle_proof(leaves[0], -1, count, [], root)


def test_single_leaf__root_is_leaf_and_proof_empty() -> None:
    leaf = tx_leaf(b"\x02" * 146)
    assert merkle_root([leaf]) == leaf
    assert merkle_proof([leaf], 0) == []
    assert verify_merkle_proof(leaf, 0, 1, [], leaf)


def test_leaves__are_domain_separated() -> None:
    data = bytes(32)
    assert tx_leaf(data) == hashlib.sha256(b"\x00" + data).digest()
    assert root_leaf(data) == hashlib.sha256(b"\x01" + data).digest()
    assert tx_leaf(data) != root_leaf(data)


def test_batch_roots__trees_of_tx_and_root_leaves() -> None:
    txs = [bytes([i]) * (i + 1) for i in range(5)]
    roots = [bytes([i]) * 32 for i in range(5)]
    assert batch_roots(txs, roots) == (
        merkle_root([tx_leaf(t) for t in txs]),
        merkle_root([root_leaf(r) for r in roots]),
    )


def test_merkle_root__refuses_empty_and_unhashed_leaves() -> None:
    with pytest.raises(ValueError):
        merkle_root([])
    with pytest.raises(ValueError):
        merkle_root([b"short"])
