"""Batch trees (protocol section 4), built with `merkletools` (sha256).

Leaves are domain-separated: `sha256(TX_LEAF_TAG || tx)` and `sha256(ROOT_LEAF_TAG || post_root)`.
Each level hashes pairs `sha256(left || right)`; an odd last node is carried up unhashed; the
root of one leaf is the leaf. A proof lists the siblings from the leaf up, skipping the levels
where the node is carried up, so its length is fixed by `(index, count)`.
"""

from __future__ import annotations

from collections.abc import Sequence

from merkletools import MerkleTools

from sequencer.stf.constants import ROOT_LEAF_TAG, TX_LEAF_TAG
from sequencer.stf.hashing import sha256


def tx_leaf(raw: bytes) -> bytes:
    """Leaf of the transaction tree."""
    return sha256(TX_LEAF_TAG + raw)


def root_leaf(root: bytes) -> bytes:
    """Leaf of the state-root tree."""
    return sha256(ROOT_LEAF_TAG + root)


def _tree(leaves: Sequence[bytes]) -> MerkleTools:
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if any(len(leaf) != 32 for leaf in leaves):
        raise ValueError("leaves are 32-byte hashes")
    tree = MerkleTools(hash_type="sha256")
    tree.add_leaf([leaf.hex() for leaf in leaves], do_hash=False)
    tree.make_tree()
    return tree


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root over pre-hashed 32-byte leaves (at least one)."""
    return bytes.fromhex(str(_tree(leaves).get_merkle_root()))


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Siblings of leaf `index`, from the leaf up, skipping carried-up levels."""
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index out of range")
    proof = _tree(leaves).get_proof(index)
    return [bytes.fromhex(str(next(iter(step.values())))) for step in proof]


def proof_length(index: int, count: int) -> int:
    """Number of siblings in the proof of leaf `index` of a tree of `count` leaves."""
    length = 0
    while count > 1:
        if not (index == count - 1 and count % 2 == 1):
            length += 1
        index //= 2
        count = (count + 1) // 2
    return length


def verify_merkle_proof(leaf: bytes, index: int, count: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True iff `proof` shows `leaf` at `index` of a `count`-leaf tree with root `root`.

    At each level of width `w` with position `idx`, a sibling exists unless `idx == w - 1` and
    `w` is odd; the proof must have exactly one entry per level with a sibling.
    """
    if not 0 <= index < count:
        return False
    node = leaf
    used = 0
    width = count
    while width > 1:
        if not (index == width - 1 and width % 2 == 1):
            if used >= len(proof):
                return False
            sibling = proof[used]
            used += 1
            node = sha256(sibling + node) if index % 2 else sha256(node + sibling)
        index //= 2
        width = (width + 1) // 2
    return used == len(proof) and node == root


def batch_roots(txs: Sequence[bytes], roots: Sequence[bytes]) -> tuple[bytes, bytes]:
    """`(tx_root, roots_root)` of a batch's transactions and per-transaction post roots."""
    return merkle_root([tx_leaf(tx) for tx in txs]), merkle_root([root_leaf(r) for r in roots])
