"""The compact sparse Merkle tree: against a reference, witnesses, writes, copies."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stf_vectors import ref_root

from sequencer.stf.constants import EMPTY
from sequencer.stf.hashing import keccak
from sequencer.stf.smt import (
    TERMINAL_EMPTY,
    TERMINAL_LEAF,
    TERMINAL_OTHER,
    SparseMerkleTree,
    Witness,
    check_witness,
    leaf_hash,
    write_witness,
)


def clustered_keys(base: int, splits: list[tuple[int, int]]) -> list[bytes]:
    """Keys sharing long prefixes with `base`: keep the top `p` bits, randomise the rest."""
    keys = []
    for prefix_bits, low in splits:
        mask = (1 << (256 - prefix_bits)) - 1
        keys.append(((base & ~mask) | (low & mask)).to_bytes(32, "big"))
    return keys


keys32 = st.binary(min_size=32, max_size=32)
values = st.binary(min_size=1, max_size=80)
clusters = st.builds(
    clustered_keys,
    st.integers(0, 2**256 - 1),
    st.lists(st.tuples(st.integers(0, 256), st.integers(0, 2**256 - 1)), min_size=1, max_size=20),
)
key_sets = st.one_of(st.lists(keys32, max_size=30), clusters)


def build(items: dict[bytes, bytes], order: list[bytes] | None = None) -> SparseMerkleTree:
    tree = SparseMerkleTree()
    for key in order if order is not None else list(items):
        tree.set(key, items[key])
    return tree


def test_empty_tree__root_is_empty() -> None:
    tree = SparseMerkleTree()
    assert tree.root == EMPTY
    assert len(tree) == 0
    assert tree.get(bytes(32)) is None


def test_single_leaf__root_is_leaf_hash() -> None:
    tree = SparseMerkleTree()
    tree.set(b"\xff" * 32, b"v")
    assert tree.root == leaf_hash(b"\xff" * 32, b"v") == keccak(b"\x01" + b"\xff" * 32 + keccak(b"v"))


def test_two_leaves_sharing_255_bits__one_branch_per_shared_bit() -> None:
    a, b = bytes(32), bytes(31) + b"\x01"
    tree = build({a: b"a", b: b"b"})
    node = keccak(leaf_hash(a, b"a") + leaf_hash(b, b"b"))
    for _ in range(255):
        node = keccak(node + EMPTY)
    assert tree.root == node == ref_root({a: b"a", b: b"b"})


@settings(max_examples=150, deadline=None)
@given(key_sets, st.data())
def test_root__matches_reference_and_ignores_insert_order(keys: list[bytes], data: st.DataObject) -> None:
    items = {k: data.draw(values) for k in keys}
    tree = build(items)
    assert tree.root == ref_root(items)
    assert len(tree) == len(items)
    shuffled = data.draw(st.permutations(list(items)))
    assert build(items, shuffled).root == tree.root
    assert sorted(tree.items()) == sorted(items.items())
    for k, v in items.items():
        assert tree.get(k) == v


@settings(max_examples=150, deadline=None)
@given(key_sets, st.data())
def test_updates__root_matches_reference(keys: list[bytes], data: st.DataObject) -> None:
    items = {k: data.draw(values) for k in keys}
    tree = build(items)
    tree.root  # noqa: B018 - hash now, so updates go through cached nodes
    for k in data.draw(st.lists(st.sampled_from(keys), max_size=10)) if keys else []:
        items[k] = data.draw(values)
        tree.set(k, items[k])
    assert tree.root == ref_root(items)


@settings(max_examples=200, deadline=None)
@given(key_sets, keys32, st.data())
def test_witness__checks_and_write_matches_set(keys: list[bytes], extra: bytes, data: st.DataObject) -> None:
    items = {k: data.draw(values) for k in keys}
    tree = build(items)
    root = tree.root
    probe = data.draw(st.sampled_from([*keys, extra])) if keys else extra
    if data.draw(st.booleans()) and keys:  # a key sharing a long prefix with a present one
        p = data.draw(st.integers(0, 255))
        base = int.from_bytes(data.draw(st.sampled_from(keys)), "big")
        probe = (base ^ (1 << (255 - p))).to_bytes(32, "big")
    w = tree.witness(probe)
    assert check_witness(w, root)
    if probe in items:
        assert (w.terminal, w.value) == (TERMINAL_LEAF, items[probe])
    else:
        assert w.value == b"" and w.terminal in (TERMINAL_EMPTY, TERMINAL_OTHER)
    new_value = data.draw(values)
    tree.set(probe, new_value)
    assert write_witness(w, new_value) == tree.root
    items[probe] = new_value
    assert tree.root == ref_root(items)


def test_witness__terminal_two_split_deep() -> None:
    a = bytes(32)
    tree = build({a: b"a"})
    for p in (0, 1, 7, 8, 100, 254, 255):
        probe = (1 << (255 - p)).to_bytes(32, "big")
        w = tree.witness(probe)
        assert w.terminal == TERMINAL_OTHER and w.siblings == () and w.other_key == a
        assert check_witness(w, tree.root)
        t2 = tree.copy()
        t2.set(probe, b"new")
        assert write_witness(w, b"new") == t2.root == ref_root({a: b"a", probe: b"new"})


def tampered(w: Witness) -> list[Witness]:
    out = [
        replace(w, value=w.value + b"x"),
        replace(w, value=b""),
        replace(w, terminal=(w.terminal + 1) % 3),
        replace(w, terminal=3),
        replace(w, siblings=(*w.siblings, EMPTY)),
        replace(w, other_key=b"\x01" * 32),
    ]
    if w.siblings:
        s0 = w.siblings[0]
        out.append(replace(w, siblings=(bytes([s0[0] ^ 1]) + s0[1:], *w.siblings[1:])))
        out.append(replace(w, siblings=w.siblings[:-1]))
    if w.terminal == TERMINAL_OTHER:
        out.append(replace(w, other_value_hash=keccak(b"other")))
        out.append(replace(w, other_key=w.key))
    return out


@settings(max_examples=100, deadline=None)
@given(st.lists(keys32, min_size=1, max_size=20), keys32, st.data())
def test_witness__tampered_fails(keys: list[bytes], extra: bytes, data: st.DataObject) -> None:
    tree = build({k: data.draw(values) for k in keys})
    for probe in (keys[0], extra):
        w = tree.witness(probe)
        assert check_witness(w, tree.root)
        for bad in tampered(w):
            if bad != w:
                assert not check_witness(bad, tree.root), bad
        assert not check_witness(w, keccak(tree.root))
        # Another key on the same path: a witness that checks must tell the truth about its key.
        for flip in range(0, 256, 3):
            other = (int.from_bytes(probe, "big") ^ (1 << flip)).to_bytes(32, "big")
            moved = replace(w, key=other)
            if check_witness(moved, tree.root):
                assert (tree.get(other) or b"") == moved.value


def test_witness__terminal_two_must_share_prefix() -> None:
    """A terminal-2 leaf that disagrees with the key above the terminal depth is refused."""
    rng = random.Random(5)
    keys = [rng.randbytes(32) for _ in range(50)]
    tree = build({k: b"v" for k in keys})
    for _ in range(50):
        w = tree.witness(rng.randbytes(32))
        if w.terminal != TERMINAL_OTHER or not w.siblings:
            continue
        flipped = int.from_bytes(w.other_key, "big") ^ (1 << 255)
        assert not check_witness(replace(w, other_key=flipped.to_bytes(32, "big")), tree.root)


def test_set__rejects_empty_or_long_value_and_short_key() -> None:
    tree = SparseMerkleTree()
    with pytest.raises(ValueError):
        tree.set(bytes(32), b"")
    with pytest.raises(ValueError):
        tree.set(bytes(32), b"x" * 257)
    with pytest.raises(ValueError):
        tree.set(bytes(31), b"x")


def test_copy__is_independent_both_ways() -> None:
    rng = random.Random(1)
    items = {rng.randbytes(32): rng.randbytes(8) for _ in range(200)}
    tree = build(items)
    root = tree.root
    twin = tree.copy()
    changed = dict(items)
    for k in list(items)[:50]:
        changed[k] = b"twin"
        twin.set(k, b"twin")
    new_key = rng.randbytes(32)
    twin.set(new_key, b"new")
    changed[new_key] = b"new"
    assert tree.root == root and len(tree) == 200
    assert twin.root == ref_root(changed) and len(twin) == 201
    for k in list(items)[50:100]:
        items[k] = b"orig"
        tree.set(k, b"orig")
    assert tree.root == ref_root(items)
    assert twin.root == ref_root(changed)


def test_copy__of_dirty_tree_hashes_consistently() -> None:
    rng = random.Random(2)
    items = {rng.randbytes(32): b"v" for _ in range(100)}
    tree = build(items)  # root not computed yet: every node dirty and then shared
    twin = tree.copy()
    twin.set(next(iter(items)), b"w")
    assert tree.root == ref_root(items)
    items[next(iter(items))] = b"w"
    assert twin.root == ref_root(items)
