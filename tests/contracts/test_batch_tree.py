"""The batch trees' soundness does not rest on an accident: it rests on the invariant held here.

Leaves are domain-separated (`sha256(0x00 || tx)`, `sha256(0x01 || post_root)`) but inner nodes are
plain `sha256(left || right)`, so a 63-byte transaction `tx` with `0x00 || tx == left || right` has
an inner node for its leaf hash. A proof is still sound because the verifier (`merkle.verify`, and
`sequencer.stf.batch.verify_merkle_proof`) takes the proof's length and its left/right pattern from
`(index, count)`, and `count` is the batch's committed `tx_count` (bound by the header hash), never a
number the prover supplies. Walking down from the root, each hash the verifier makes must then be the
real node at the verifier's own position (else sha256 collides), so the one leaf accepted at
`(i, tx_count)` is the real leaf `i`: an inner node is never taken for a leaf.

The tests, for random counts 1..256 and indexes, against `merkle.vy` (through a test-only contract,
`tests/contracts/vyper/BatchTreeHarness.vy`, and through the Rollup's own `prove_tx_fraud`) and the
Python verifier:

(a) a valid proof (merkletools') has exactly the length fixed by `(i, n)` and both verifiers accept it;
(b) no proof of another length is accepted; a proof moved to another index is accepted only when it
    then shows that index's real leaf; a proof read with another count is accepted only when that
    count gives the same hashing pattern (the same statement about the same leaf), which is why the
    count must be the committed one;
(c) an inner node is refused as a leaf at every index of its tree, and the Rollup refuses a 63-byte
    transaction whose leaf equals an inner node (while a prover-chosen count would have accepted it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

import pytest
from contracts_harness import Harness, deploy_test_contract
from contracts_harness import tester_web3 as fresh_chain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from merkletools import MerkleTools
from web3.contract import Contract

from contracts.bindings import Sender, TransactionReverted
from sequencer.stf.batch import (
    merkle_proof,
    merkle_root,
    proof_length,
    root_leaf,
    tx_leaf,
    verify_merkle_proof,
)
from sequencer.stf.constants import MAX_BATCH_TXS

MAX_PROOF_LENGTH = proof_length(0, MAX_BATCH_TXS)
"""8: the longest proof of a batch (`merkle.vy`'s `MAX_PROOF_LENGTH`, the bound of its proof arrays)."""

SETTINGS = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def tree() -> Contract:
    """`merkle.vy` exposed as views (the functions `append_batch` and `prove_tx_fraud` call)."""
    w3 = fresh_chain()
    return deploy_test_contract(w3, Sender.unlocked(w3.eth.accounts[0]), "BatchTreeHarness")


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """The tree as merkletools builds it, leaves first, root last."""
    mt = MerkleTools(hash_type="sha256")
    mt.add_leaf([leaf.hex() for leaf in leaves], do_hash=False)
    mt.make_tree()
    return [[bytes(node) for node in level] for level in reversed(mt.levels)]


def _path(levels: list[list[bytes]], level: int, position: int) -> list[bytes]:
    """The real siblings of the node at `(level, position)`, from it up (carried levels skipped)."""
    siblings = []
    for x in range(level, len(levels) - 1):
        width = len(levels[x])
        if not (position == width - 1 and width % 2 == 1):
            siblings.append(levels[x][position ^ 1])
        position //= 2
    return siblings


def _inner_nodes(levels: list[list[bytes]]) -> list[tuple[int, int, bytes, list[bytes]]]:
    """Every node made by hashing two children (not a leaf, not a node carried up unhashed):
    `(level, position, hash, real path to the root)`."""
    out = []
    for level in range(1, len(levels)):
        below = len(levels[level - 1])
        for position, node in enumerate(levels[level]):
            if below % 2 == 1 and position == len(levels[level]) - 1:
                continue  # the odd last node of the level below, carried up
            out.append((level, position, node, _path(levels, level, position)))
    return out


def _pattern(index: int, count: int) -> tuple[int, ...]:
    """The hashing pattern the verifiers derive from `(index, count)`: per level with a sibling, 1 if
    the node is the right child. Its length is `proof_length(index, count)`."""
    out = []
    while count > 1:
        if not (index == count - 1 and count % 2 == 1):
            out.append(index % 2)
        index //= 2
        count = (count + 1) // 2
    return tuple(out)


def _both(tree: Contract, leaf: bytes, index: int, count: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether the Python and the Vyper verifier accept; fails if they disagree."""
    py = verify_merkle_proof(leaf, index, count, proof, root)
    vy = tree.functions.verify(leaf, index, count, list(proof), root).call()
    assert py is vy, (leaf.hex(), index, count, [p.hex() for p in proof])
    return py


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[bytes], int]:
    """Leaves of a batch of 1..256 transactions (sometimes with repeated ones) and an index."""
    n = draw(st.one_of(st.integers(1, MAX_BATCH_TXS), st.sampled_from([1, 2, 3, 5, 128, 129, 255, 256])))
    distinct = draw(st.integers(1, n)) if draw(st.integers(0, 4)) == 0 else n
    pool = [_sha(draw(st.binary(max_size=8)) + i.to_bytes(2, "big")) for i in range(distinct)]
    leaves = [pool[draw(st.integers(0, distinct - 1))] if distinct < n else pool[i] for i in range(n)]
    return leaves, draw(st.integers(0, n - 1))


# ---- (a) the valid proof: its length fixed by (i, n), accepted by both verifiers -------------


@SETTINGS
@given(trees())
def test_batch_tree__valid_proof__length_fixed_by_index_and_count_and_both_verifiers_accept(
    tree: Contract, case: tuple[list[bytes], int]
) -> None:
    leaves, i = case
    n = len(leaves)
    levels = _levels(leaves)
    root = merkle_root(leaves)
    assert tree.functions.tree_root(leaves).call() == root == levels[-1][0]
    for j in range(n):  # every index: the real path is as long as (j, n) says, never longer than 8
        assert len(_path(levels, 0, j)) == proof_length(j, n) == len(_pattern(j, n)) <= MAX_PROOF_LENGTH
    proof = merkle_proof(leaves, i)
    assert proof == _path(levels, 0, i)
    assert len(proof) == proof_length(i, n)
    assert _both(tree, leaves[i], i, n, proof, root)


# ---- (b) another length, index or count ------------------------------------------------------


@SETTINGS
@given(trees(), st.data())
def test_batch_tree__other_length_index_or_count__only_the_real_leaf_is_ever_accepted(
    tree: Contract, case: tuple[list[bytes], int], data: st.DataObject
) -> None:
    leaves, i = case
    n = len(leaves)
    root = merkle_root(leaves)
    proof = merkle_proof(leaves, i)
    noise = _sha(b"noise" + bytes([i % 256]))

    # another length: shorter, longer, reordered ends: refused whatever the siblings
    others = [[*proof, noise], [*proof, root], [noise, *proof], [noise] * MAX_PROOF_LENGTH]
    if proof:
        others += [proof[:-1], proof[1:], [*proof[:-1], noise, proof[-1]]]
    for other in others:
        if len(other) != len(proof) and len(other) <= MAX_PROOF_LENGTH:
            assert not _both(tree, leaves[i], i, n, other, root)

    # another index: accepted only if it then shows that index's real leaf (a repeated leaf)
    for j in {data.draw(st.integers(0, n - 1)), (i + 1) % n, (i - 1) % n} - {i}:
        assert not _both(tree, leaves[i], j, n, proof, root) or leaves[j] == leaves[i]
        assert not _both(tree, leaves[i], j, n, merkle_proof(leaves, j), root) or leaves[j] == leaves[i]
    assert not _both(tree, leaves[i], n, n, proof, root)  # past the end

    # another count (the prover never chooses it: the header's tx_count is hashed into batch_hash):
    # accepted exactly when that count gives the same hashing pattern, i.e. the same leaf at i
    for m in {data.draw(st.integers(1, MAX_BATCH_TXS)), max(1, n - 1), min(MAX_BATCH_TXS, n + 1)} - {n}:
        accepted = _both(tree, leaves[i], i, m, proof, root)
        if i < m and _pattern(i, m) == _pattern(i, n):
            assert accepted
        elif accepted:  # another pattern: only where a repeated leaf makes `H(a || a)` symmetric
            assert len(set(leaves)) < n


# ---- (c) an inner node is never a leaf ---------------------------------------------------------


@SETTINGS
@given(trees(), st.data())
def test_batch_tree__inner_node_as_a_leaf__refused_at_every_index_of_the_committed_count(
    tree: Contract, case: tuple[list[bytes], int], data: st.DataObject
) -> None:
    leaves, _ = case
    n = len(leaves)
    levels = _levels(leaves)
    root = levels[-1][0]
    proofs = [_path(levels, 0, j) for j in range(n)]
    inner = _inner_nodes(levels)
    for level, position, node, path in inner:
        # every index whose proof is as long as the node's own path (the length check refuses the
        # others before anything else), with that path; the leaves under the node, and one more
        # index, with their own proofs
        under = {position << level, min(n, (position + 1) << level) - 1, data.draw(st.integers(0, n - 1))}
        for j in range(n):
            if node == leaves[j]:
                continue  # a leaf that happens to equal an inner node's hash (not with random leaves)
            if proof_length(j, n) == len(path):
                assert not verify_merkle_proof(node, j, n, path, root), (level, position, j)
            if j in under:
                assert not verify_merkle_proof(node, j, n, proofs[j], root), (level, position, j)
    # on-chain, for a sample: the indexes whose proof is as long as the node's own path (the only
    # ones the length check lets through), and any index with that index's proof
    sample = data.draw(st.lists(st.sampled_from(inner), max_size=6)) if inner else []
    for level, position, node, path in sample:
        same_length = [j for j in range(n) if proof_length(j, n) == len(path)]
        for j in same_length[:3]:
            assert not _both(tree, node, j, n, path, root), (level, position, j)
        j = data.draw(st.integers(0, n - 1))
        assert not _both(tree, node, j, n, proofs[j], root), (level, position, j)


def test_batch_tree__inner_node_with_a_leafs_proof_length__refused_by_the_pattern(tree: Contract) -> None:
    """Five leaves: `H(H(l0 l1) H(l2 l3))` and leaf 4 both have a one-sibling path, but leaf 4 is the
    right child and that node the left one: the pattern fixed by (4, 5) refuses it."""
    leaves = [_sha(bytes([k])) for k in range(5)]
    levels = _levels(leaves)
    node, root = levels[2][0], levels[-1][0]
    assert _path(levels, 2, 0) == [leaves[4]] and proof_length(4, 5) == 1 and _pattern(4, 5) == (1,)
    assert not _both(tree, node, 4, 5, [leaves[4]], root)
    assert _both(tree, leaves[4], 4, 5, [node], root)


def _ground_tx() -> bytes:
    """Undecodable bytes (unknown type 0xee) whose transaction leaf starts with a zero byte, so
    that `0x00 || tx_1[...]` can be an inner node's preimage."""
    for k in range(1 << 16):
        raw = b"\xee" + k.to_bytes(3, "big")
        if tx_leaf(raw)[0] == 0:
            return raw
    raise AssertionError("no leaf starting with 0x00 in 65536 tries")


def test_prove_tx_fraud__63_byte_tx_whose_leaf_is_an_inner_node__refused_by_the_rollup(
    h: Harness, tree: Contract
) -> None:
    """A batch of four transactions where `0x00 || tx_0's leaf[1:] || tx_1's leaf` is a 64-byte
    inner-node preimage: the 63-byte `fake` has the inner node `H(leaf_0 || leaf_1)` for its
    leaf. Read with count 2 it would be transaction 0 (so a prover-chosen count would break the
    tree); at the committed count 4 no proof of it holds, and a header claiming 2 is unknown."""
    seq, challenger = h.account(1), h.account(2)
    h.bond(seq)
    txs = [_ground_tx(), b"\xee\x01", b"\xee\x02", b"\xee\x03"]
    batch = h.append(seq, txs)
    header = batch.header
    leaves = [tx_leaf(t) for t in txs]
    levels = _levels(leaves)
    inner_left, inner_right = levels[1]
    fake = (leaves[0] + leaves[1])[1:]
    assert len(fake) == 63 and tx_leaf(fake) == inner_left == _sha(leaves[0] + leaves[1])
    assert tree.functions.tx_leaf(fake).call() == inner_left
    assert header.tx_count == 4 and header.tx_root == levels[-1][0]

    # what a prover-chosen count would accept: fake as transaction 0 of a 2-leaf tree
    assert verify_merkle_proof(tx_leaf(fake), 0, 2, [inner_right], header.tx_root)
    assert tree.functions.verify(tx_leaf(fake), 0, 2, [inner_right], header.tx_root).call()

    root_leaves = [root_leaf(r) for r in batch.roots]

    def prove(i: int, tx_proof: list[bytes], count: int = header.tx_count) -> str | None:
        pre_root, pre_proof = (header.prev_root, []) if i == 0 else (batch.roots[i - 1], None)
        forged = replace(header, tx_count=count)
        with pytest.raises(TransactionReverted) as err:
            h.rollup.prove_tx_fraud(
                challenger,
                forged,
                i,
                fake,
                tx_proof,
                pre_root,
                pre_proof if pre_proof is not None else merkle_proof(root_leaves, i - 1),
                batch.roots[i],
                merkle_proof(root_leaves, i),
                [],
            )
        return err.value.reason

    # at the committed count: the inner node's own path (one sibling: the wrong length), and
    # two-sibling proofs made of the tree's real nodes, at every index
    assert prove(0, [inner_right]) == "rollup: bad tx proof"
    for i in range(4):
        for first in (*leaves, inner_left, inner_right):
            assert prove(i, [first, inner_right]) == "rollup: bad tx proof"
            assert prove(i, [first, inner_left]) == "rollup: bad tx proof"
    # the count comes from the header, which must hash to the stored batch_hash
    assert prove(0, [inner_right], count=2) == "rollup: unknown batch"
    assert h.rollup.batch_count() == 1
