"""The compact sparse Merkle tree: against a reference, witnesses, writes, copies."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stf_vectors import ref_root

from sequencer.stf.constants import EMPTY, MAX_SIBLINGS, MAX_VALUE_BYTES
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
        assert w.terminal == TERMINAL_OTHER and w.other_key == a
        assert (w.depth, w.present, w.siblings) == (0, 0, ())
        assert check_witness(w, tree.root)
        t2 = tree.copy()
        t2.set(probe, b"new")
        assert write_witness(w, b"new") == t2.root == ref_root({a: b"a", probe: b"new"})


def tampered(w: Witness) -> list[Witness]:
    """Changed copies of `w`; none may check against the root `w` checks against."""
    top_bit = 1 << (w.depth - 1) if w.depth else 0
    out = [
        replace(w, value=w.value + b"x"),
        replace(w, value=b""),
        replace(w, terminal=(w.terminal + 1) % 3),
        replace(w, terminal=3),
        replace(w, other_key=b"\x01" * 32),
        # a sibling more or fewer than `present` says
        replace(w, siblings=(*w.siblings, EMPTY)),
        replace(w, siblings=(*w.siblings, b"\x05" * 32)),
        # one level deeper or shallower, siblings unchanged
        replace(w, depth=w.depth + 1),
        replace(w, depth=w.depth + 1, present=w.present << 1),
        replace(w, depth=max(w.depth - 1, 0), present=w.present & (top_bit - 1) if w.depth else 0),
        # a present EMPTY position claimed non-empty with a real hash
        replace(
            w, depth=w.depth + 1, present=w.present | (1 << w.depth), siblings=(*w.siblings, b"\x05" * 32)
        ),
    ]
    if w.depth and not w.present & 1:  # the deepest sibling is EMPTY: say it is not
        out.append(replace(w, present=w.present | 1, siblings=(b"\x05" * 32, *w.siblings)))
    if w.siblings:
        s0 = w.siblings[0]
        out.append(replace(w, siblings=(bytes([s0[0] ^ 1]) + s0[1:], *w.siblings[1:])))
        out.append(replace(w, siblings=w.siblings[:-1]))
        highest = 1 << (w.present.bit_length() - 1)
        out.append(replace(w, present=w.present ^ highest, siblings=w.siblings[:-1]))
        out.append(replace(w, present=w.present ^ highest ^ (highest << 1)))  # moved one level up
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
        if w.terminal != TERMINAL_OTHER or not w.depth:
            continue
        flipped = int.from_bytes(w.other_key, "big") ^ (1 << 255)
        assert not check_witness(replace(w, other_key=flipped.to_bytes(32, "big")), tree.root)


def test_set__rejects_empty_or_long_value_and_short_key() -> None:
    tree = SparseMerkleTree()
    with pytest.raises(ValueError):
        tree.set(bytes(32), b"")
    with pytest.raises(ValueError):
        tree.set(bytes(32), b"x" * (MAX_VALUE_BYTES + 1))
    with pytest.raises(ValueError):
        tree.set(bytes(31), b"x")


def test_set__longest_value__witness_checks_and_writes() -> None:
    tree = build({bytes(32): b"a", b"\x80" + bytes(31): b"x" * MAX_VALUE_BYTES})
    w = tree.witness(b"\x80" + bytes(31))
    assert check_witness(w, tree.root) and len(w.value) == MAX_VALUE_BYTES
    assert not check_witness(replace(w, value=w.value + b"x"), tree.root)
    longest = b"y" * MAX_VALUE_BYTES
    assert write_witness(w, longest) == ref_root({bytes(32): b"a", w.key: longest})
    with pytest.raises(ValueError):
        write_witness(w, b"y" * (MAX_VALUE_BYTES + 1))


# ---- the compressed sibling list (`depth`, `present`) ----


def _bit(k: bytes, q: int) -> int:
    return (k[q // 8] >> (7 - q % 8)) & 1


def ref_subtree(items: dict[bytes, bytes], keys: list[bytes], depth: int) -> bytes:
    """The protocol's hash of the subtree at `depth` holding `keys` (they share bits 0..depth-1)."""
    if not keys:
        return EMPTY
    if len(keys) == 1:
        return leaf_hash(keys[0], items[keys[0]])
    left = [k for k in keys if _bit(k, depth) == 0]
    right = [k for k in keys if _bit(k, depth) == 1]
    return keccak(ref_subtree(items, left, depth + 1) + ref_subtree(items, right, depth + 1))


def reference_siblings(items: dict[bytes, bytes], key: bytes) -> tuple[int, list[bytes]]:
    """`(depth, every sibling deepest first)` of `key`'s path, from the protocol's definition:
    the path goes down while two or more leaves share it."""
    on_path = list(items)
    path: list[bytes] = []
    depth = 0
    while len(on_path) >= 2:
        side = _bit(key, depth)
        path.append(ref_subtree(items, [k for k in on_path if _bit(k, depth) != side], depth + 1))
        on_path = [k for k in on_path if _bit(k, depth) == side]
        depth += 1
    return depth, path[::-1]


@settings(max_examples=150, deadline=None)
@given(key_sets, keys32, st.data())
def test_witness__bitmap_lists_exactly_the_non_empty_siblings(
    keys: list[bytes], extra: bytes, data: st.DataObject
) -> None:
    items = {k: data.draw(values) for k in keys}
    tree = build(items)
    for probe in [*keys[:3], extra]:
        w = tree.witness(probe)
        depth, full = reference_siblings(items, probe)
        assert w.depth == depth and w.full_siblings() == tuple(full)
        assert w.siblings == tuple(s for s in full if s != EMPTY)
        assert w.present == sum(1 << j for j, s in enumerate(full) if s != EMPTY)
        assert EMPTY not in w.siblings and w.present < 2**w.depth
        assert len(w.siblings) == w.present.bit_count()


def test_witness__two_keys_sharing_255_bits__one_sibling_at_depth_256() -> None:
    a, b = bytes(32), bytes(31) + b"\x01"
    tree = build({a: b"a", b: b"b"})
    w = tree.witness(a)
    assert (w.depth, w.present, w.siblings) == (256, 1, (leaf_hash(b, b"b"),))
    assert check_witness(w, tree.root)
    # the same path with every EMPTY sibling written out is not the encoding: popcount != len
    assert not check_witness(replace(w, siblings=w.full_siblings()), tree.root)
    assert not check_witness(replace(w, depth=257, present=2), tree.root)
    assert not check_witness(replace(w, present=w.present | (1 << 256)), tree.root)
    assert not check_witness(replace(w, present=2**256 - 1), tree.root)
    # the absent neighbour between them: terminal 2 can not sit at depth 256
    c = bytes(31) + b"\x02"
    wc = tree.witness(c)
    assert wc.terminal == TERMINAL_EMPTY and wc.depth == 255 and wc.present == 1
    assert check_witness(wc, tree.root)


def test_witness__empty_sibling_listed_as_present__same_path_checks() -> None:
    """`present` may claim an EMPTY sibling (listed as 32 zero bytes): the climb is the same, so
    the well-formedness rules of protocol section 2 accept it; honest witnesses never do it."""
    a, b = bytes(32), bytes(31) + b"\x01"
    tree = build({a: b"a", b: b"b"})
    w = tree.witness(a)
    loose = replace(w, present=w.present | 2, siblings=(w.siblings[0], EMPTY))
    assert check_witness(loose, tree.root)
    assert write_witness(loose, b"z") == write_witness(w, b"z")


def test_witness__max_siblings__accepted_one_more__rejected() -> None:
    """A path with MAX_SIBLINGS non-empty siblings checks; with one more the witness is refused
    (the tree itself still holds and hashes such keys)."""
    probe = keccak(b"probe")
    k = int.from_bytes(probe, "big")
    neighbours = {(k ^ (1 << (255 - q))).to_bytes(32, "big"): b"n" for q in range(MAX_SIBLINGS)}
    items = {probe: b"p", **neighbours}
    tree = build(items)
    w = tree.witness(probe)
    assert len(w.siblings) == MAX_SIBLINGS and w.depth == MAX_SIBLINGS
    assert check_witness(w, tree.root)
    assert write_witness(w, b"q") == ref_root({**items, probe: b"q"})
    deeper = (k ^ (1 << (255 - MAX_SIBLINGS))).to_bytes(32, "big")
    tree.set(deeper, b"n")
    w = tree.witness(probe)
    assert len(w.siblings) == MAX_SIBLINGS + 1 and tree.root == ref_root({**items, deeper: b"n"})
    assert not check_witness(w, tree.root)


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
