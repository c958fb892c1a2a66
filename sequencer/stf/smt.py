"""The compact sparse Merkle tree of the state (protocol section 2).

A binary trie over the 256 bits of a key (bit 0 = most significant bit of byte 0; 0 goes left).
A subtree with no leaf hashes to `EMPTY`, a subtree with exactly one leaf hashes to that leaf's
`leaf_hash` whatever its depth, and a subtree with two or more leaves to
`keccak(hash(left) || hash(right))`. So a leaf sits at the shallowest depth where no other key
shares its path, and the trie has about `log2(N)` levels.

Representation (chosen for speed; internal):

- an empty subtree is `None`;
- a leaf is the tuple `(key, value, leaf_hash, key_as_int)`;
- a branch is the list `[left, right, hash_or_None, owner]`. `hash_or_None` is the cached hash;
  `None` means "dirty": a write below changed it and `root` recomputes it (lazily, so two writes
  of one transaction share the upper path). `owner` is the token of the tree that may mutate the
  branch in place; `copy()` gives both trees fresh tokens, so nodes become shared and each tree
  copies a branch before changing it (copy-on-write, so `copy()` is O(1)).

Leaves are never deleted. A stored value is never empty (an empty witness value means "absent").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sha3

from sequencer.stf.constants import EMPTY, LEAF_TAG, MAX_SIBLINGS, MAX_VALUE_BYTES, SMT_DEPTH_BITS

_keccak = sha3.keccak_256
_TOP_SHIFT = SMT_DEPTH_BITS - 1
_BITS = tuple(tuple((byte >> (7 - i)) & 1 for i in range(8)) for byte in range(256))
"""`_BITS[b]`: the eight bits of byte `b`, most significant first (walking by table is faster)."""

TERMINAL_LEAF = 0
"""Witness terminal: the leaf of the key itself."""
TERMINAL_EMPTY = 1
"""Witness terminal: an empty subtree."""
TERMINAL_OTHER = 2
"""Witness terminal: the leaf of another key."""


@dataclass(frozen=True, slots=True)
class Witness:
    """A proof of a key's value (or absence) against a root (protocol section 2, "Witnesses").

    The path from the root to the terminal node at depth `depth` has `depth` siblings; only the
    non-EMPTY ones are carried. Sibling `j` (the one at depth `depth - j`, j = 0 .. depth-1) is
    the next entry of `siblings` if bit `j` of `present` is set, else `EMPTY`.
    """

    key: bytes
    """The 32-byte key."""
    value: bytes
    """The key's current value; empty when the key is absent."""
    terminal: int
    """0 = the key's own leaf, 1 = an empty subtree, 2 = the leaf of another key."""
    other_key: bytes
    """Terminal 2: the other leaf's key; else 32 zero bytes."""
    other_value_hash: bytes
    """Terminal 2: keccak of the other leaf's value; else 32 zero bytes."""
    depth: int
    """Depth of the terminal node, 0 .. 256."""
    present: int
    """Bit `j` set iff the sibling at depth `depth - j` is not EMPTY (so `present < 2**depth`)."""
    siblings: tuple[bytes, ...]
    """The non-EMPTY siblings, deepest first; `len(siblings) == popcount(present)`."""

    def full_siblings(self) -> tuple[bytes, ...]:
        """All `depth` siblings, deepest first, EMPTY ones included (for display and tests)."""
        out: list[bytes] = []
        it = iter(self.siblings)
        for j in range(self.depth):
            out.append(next(it, EMPTY) if (self.present >> j) & 1 else EMPTY)
        return tuple(out)


def leaf_hash(key: bytes, value: bytes) -> bytes:
    """`keccak(LEAF_TAG || key || keccak(value))`: the hash of a subtree holding one leaf."""
    return _keccak(LEAF_TAG + key + _keccak(value).digest()).digest()  # type: ignore[no-any-return]


def _rehash(node: list[Any]) -> bytes:
    """Recompute the hash of a dirty branch (and of its dirty descendants), caching it."""
    left = node[0]
    if left is None:
        lh = EMPTY
    else:
        lh = left[2]
        if lh is None:
            lh = _rehash(left)
    right = node[1]
    if right is None:
        rh = EMPTY
    else:
        rh = right[2]
        if rh is None:
            rh = _rehash(right)
    h: bytes = _keccak(lh + rh).digest()
    node[2] = h
    return h


def _hash(node: Any) -> bytes:
    """Hash of any node (None, leaf or branch)."""
    if node is None:
        return EMPTY
    h: bytes | None = node[2]
    if h is None:
        return _rehash(node)
    return h


class SparseMerkleTree:
    """A compact sparse Merkle tree from 32-byte keys to non-empty byte values."""

    __slots__ = ("_count", "_owner", "_root")

    def __init__(self) -> None:
        self._root: Any = None
        self._count = 0
        self._owner = object()

    def __len__(self) -> int:
        """Number of leaves."""
        return self._count

    @property
    def root(self) -> bytes:
        """The root hash (`EMPTY` for the empty tree); recomputes only the dirty paths."""
        node = self._root
        if node is None:
            return EMPTY
        h: bytes | None = node[2]
        if h is None:
            return _rehash(node)
        return h

    def get(self, key: bytes) -> bytes | None:
        """The value of `key`, or None if it was never written."""
        node = self._root
        bits = _BITS
        for byte in key:
            if type(node) is not list:
                break
            for bit in bits[byte]:
                node = node[bit]
                if type(node) is not list:
                    break
        if node is None or node[0] != key:
            return None
        value: bytes = node[1]
        return value

    def set(self, key: bytes, value: bytes) -> None:
        """Write `value` at `key` (insert or update). Values are 1..MAX_VALUE_BYTES bytes."""
        if len(key) != 32:
            raise ValueError("a state key is 32 bytes")
        if not value or len(value) > MAX_VALUE_BYTES:
            raise ValueError(f"a state value is 1..{MAX_VALUE_BYTES} bytes")
        k = int.from_bytes(key, "big")
        leaf = (key, value, _keccak(LEAF_TAG + key + _keccak(value).digest()).digest(), k)
        node = self._root
        if node is None:
            self._root = leaf
            self._count = 1
            return
        if type(node) is not list:
            if node[0] == key:
                self._root = leaf
            else:
                self._root = self._split(node, leaf, k, _TOP_SHIFT)
                self._count += 1
            return
        owner = self._owner
        if node[3] is not owner:
            node = [node[0], node[1], None, owner]
            self._root = node
        else:
            node[2] = None
        shift = _TOP_SHIFT  # branching bit of the child's depth, once decremented
        bits = _BITS
        for byte in key:
            for bit in bits[byte]:
                shift -= 1
                child = node[bit]
                if type(child) is list:
                    if child[3] is not owner:
                        child = [child[0], child[1], None, owner]
                        node[bit] = child
                    else:
                        child[2] = None
                    node = child
                    continue
                if child is None:
                    self._count += 1
                elif child[3] != k:
                    child = self._split(child, leaf, k, shift)
                    self._count += 1
                    node[bit] = child
                    return
                node[bit] = leaf
                return
        raise AssertionError("unreachable: two distinct keys differ within 256 bits")

    def _split(self, other: Any, leaf: Any, k: int, shift: int) -> list[Any]:
        """The subtree replacing leaf `other` at the depth whose branching bit is `shift`."""
        owner = self._owner
        p_shift = (k ^ other[3]).bit_length() - 1  # shift of the first differing bit
        node = [other, leaf, None, owner] if (k >> p_shift) & 1 else [leaf, other, None, owner]
        s = p_shift + 1
        while s <= shift:
            node = [None, node, None, owner] if (k >> s) & 1 else [node, None, None, owner]
            s += 1
        return node

    def witness(self, key: bytes) -> Witness:
        """A witness for `key` against the current root (EMPTY siblings left out)."""
        if len(key) != 32:
            raise ValueError("a state key is 32 bytes")
        k = int.from_bytes(key, "big")
        node = self._root
        shift = _TOP_SHIFT
        path: list[bytes] = []  # siblings from the root down: path[q] is at depth q + 1
        while type(node) is list:
            bit = (k >> shift) & 1
            path.append(_hash(node[1 - bit]))
            node = node[bit]
            shift -= 1
        depth = len(path)
        present = 0
        siblings: list[bytes] = []
        for j in range(depth):  # sibling j is at depth depth - j, i.e. path[depth - 1 - j]
            h = path[depth - 1 - j]
            if h != EMPTY:
                present |= 1 << j
                siblings.append(h)
        if node is None:
            return Witness(key, b"", TERMINAL_EMPTY, EMPTY, EMPTY, depth, present, tuple(siblings))
        if node[0] == key:
            return Witness(key, node[1], TERMINAL_LEAF, EMPTY, EMPTY, depth, present, tuple(siblings))
        other_hash: bytes = _keccak(node[1]).digest()
        return Witness(key, b"", TERMINAL_OTHER, node[0], other_hash, depth, present, tuple(siblings))

    def copy(self) -> SparseMerkleTree:
        """An independent tree with the same content, in O(1) (nodes are shared copy-on-write)."""
        twin = SparseMerkleTree()
        twin._root = self._root
        twin._count = self._count
        self._owner = object()
        return twin

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """All `(key, value)` pairs, in key order."""
        stack: list[Any] = [self._root]
        while stack:
            node = stack.pop()
            if node is None:
                continue
            if type(node) is list:
                stack.append(node[1])
                stack.append(node[0])
            else:
                yield node[0], node[1]


def _valid_shape(w: Witness) -> bool:
    """Whether `w` is well formed (protocol section 2), before any hashing: field lengths,
    `depth <= 256`, `present < 2**depth`, `len(siblings) == popcount(present) <= MAX_SIBLINGS`,
    `len(value) <= MAX_VALUE_BYTES`, and the terminal rules."""
    if len(w.key) != 32 or len(w.other_key) != 32 or len(w.other_value_hash) != 32:
        return False
    if not 0 <= w.depth <= SMT_DEPTH_BITS or not 0 <= w.present < (1 << w.depth):
        return False
    if len(w.siblings) > MAX_SIBLINGS or len(w.siblings) != w.present.bit_count():
        return False
    if len(w.value) > MAX_VALUE_BYTES or any(len(s) != 32 for s in w.siblings):
        return False
    if w.terminal == TERMINAL_LEAF:
        return bool(w.value) and w.other_key == EMPTY and w.other_value_hash == EMPTY
    if w.terminal == TERMINAL_EMPTY:
        return not w.value and w.other_key == EMPTY and w.other_value_hash == EMPTY
    if w.terminal == TERMINAL_OTHER:
        if w.value or w.other_key == w.key:
            return False
        diff = int.from_bytes(w.key, "big") ^ int.from_bytes(w.other_key, "big")
        return diff.bit_length() <= SMT_DEPTH_BITS - w.depth  # agree on bits 0..d-1
    return False


def _climb(w: Witness, node: bytes) -> bytes:
    """Hash from the terminal depth `w.depth` up to the root along `w.key`'s path."""
    k = int.from_bytes(w.key, "big")
    shift = SMT_DEPTH_BITS - w.depth  # sibling j is at depth d-j: bit q = d-1-j, shift 255-q
    present = w.present
    siblings = iter(w.siblings)
    keccak = _keccak
    for _ in range(w.depth):
        sibling = next(siblings) if present & 1 else EMPTY
        if (k >> shift) & 1:
            node = keccak(sibling + node).digest()
        else:
            node = keccak(node + sibling).digest()
        present >>= 1
        shift += 1
    return node


def _terminal_hash(w: Witness) -> bytes:
    """The hash of the node where `w.key`'s path ends."""
    if w.terminal == TERMINAL_LEAF:
        return leaf_hash(w.key, w.value)
    if w.terminal == TERMINAL_EMPTY:
        return EMPTY
    return _keccak(LEAF_TAG + w.other_key + w.other_value_hash).digest()  # type: ignore[no-any-return]


def check_witness(w: Witness, root: bytes) -> bool:
    """True iff `w` is well formed and proves `w.key`'s value (or absence) against `root`."""
    if not _valid_shape(w):
        return False
    return _climb(w, _terminal_hash(w)) == root


def write_witness(w: Witness, new_value: bytes) -> bytes:
    """The root after writing `new_value` at `w.key`, given a witness that passed `check_witness`."""
    if not new_value or len(new_value) > MAX_VALUE_BYTES:
        raise ValueError(f"a state value is 1..{MAX_VALUE_BYTES} bytes")
    node = leaf_hash(w.key, new_value)
    if w.terminal == TERMINAL_OTHER:
        k = int.from_bytes(w.key, "big")
        other = _keccak(LEAF_TAG + w.other_key + w.other_value_hash).digest()
        p_shift = (k ^ int.from_bytes(w.other_key, "big")).bit_length() - 1  # shift of bit p
        node = _keccak(other + node if (k >> p_shift) & 1 else node + other).digest()
        d_shift = SMT_DEPTH_BITS - 1 - w.depth  # shift of bit d
        s = p_shift + 1
        while s <= d_shift:
            node = _keccak(EMPTY + node if (k >> s) & 1 else node + EMPTY).digest()
            s += 1
    return _climb(w, node)
