# pragma version ~=0.4.3
"""
@title Compact Sparse Merkle Tree
@custom:contract-name smt
@license MIT
@notice Library module: checking and writing one witness of the
        compact sparse Merkle tree of protocol.md section 2.
        The tree is binary over the 256 bits of a key (bit 0 is the
        most significant bit of byte 0; 0 goes left, 1 goes right).
        A subtree with no leaf hashes to `EMPTY`, a subtree with one
        leaf hashes to `keccak(LEAF_TAG || key || keccak(value))`
        whatever its depth, and a subtree with two or more leaves to
        `keccak(hash(left) || hash(right))`.
@dev The module holds no state: it is imported (`import smt`) and its
     internal functions are called as `smt.check(...)`. `check` and
     `check_and_write` never revert on a bad witness (they answer
     `False`). Gas: a witness is copied once into the callee's frame and
     the climb is inlined (no deeper call carries the sibling list), so
     the memory a proof touches stays small; an inner node hashes
     `abi_encode(left, right)` (the same 64 bytes as `left || right`),
     which compiles to one hash of scratch memory, not a `concat` buffer.
"""


# @dev Bits of a state key, hence the deepest terminal node.
SMT_DEPTH: constant(uint256) = 256


# @dev Most non-empty siblings a witness carries.
MAX_SIBLINGS: constant(uint256) = 80


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


# @dev The hash of an empty subtree (and the genesis state root).
EMPTY: constant(bytes32) = empty(bytes32)


# @dev The first byte of a state-leaf preimage.
LEAF_TAG: constant(bytes1) = 0x01


# @dev Terminal kinds of a witness.
TERMINAL_LEAF: constant(uint8) = 0
TERMINAL_EMPTY: constant(uint8) = 1
TERMINAL_OTHER: constant(uint8) = 2


# @dev A path from the root to the node at depth `depth` where `key`'s
#      path ends (protocol.md section 2, "Witnesses"). Sibling `j`
#      (j < depth, the sibling at depth `depth - j`) is the next entry of
#      `siblings` if bit `j` of `present` is 1, else `EMPTY`.
#      `value` is empty iff the key is absent (terminals 1 and 2);
#      `other_key` and `other_value_hash` describe the leaf of another
#      key met on the path (terminal 2 only, else zero).
struct Witness:
    key: bytes32
    value: Bytes[MAX_VALUE_BYTES]
    terminal: uint8
    other_key: bytes32
    other_value_hash: bytes32
    depth: uint256
    present: uint256
    siblings: DynArray[bytes32, MAX_SIBLINGS]


@internal
@pure
def leaf_hash(key: bytes32, value_hash: bytes32) -> bytes32:
    """
    @dev Returns `keccak(LEAF_TAG || key || value_hash)`, the hash of a
         subtree holding the one leaf `key` whose value hashes to `value_hash`.
    @param key The leaf's key.
    @param value_hash `keccak(value)`.
    @return bytes32 The leaf hash.
    """
    return keccak256(concat(LEAF_TAG, key, value_hash))


@internal
@pure
def leading_zeros(x: uint256) -> uint256:
    """
    @dev Returns the number of leading zero bits of `x` (256 for 0),
         i.e. the index of the first bit set when bit 0 is the most
         significant.
    @param x The 256-bit word.
    @return uint256 The count.
    """
    if x == 0:
        return 256
    n: uint256 = 0
    y: uint256 = x
    if y >> 128 == 0:
        n += 128
        y = y << 128
    if y >> 192 == 0:
        n += 64
        y = y << 64
    if y >> 224 == 0:
        n += 32
        y = y << 32
    if y >> 240 == 0:
        n += 16
        y = y << 16
    if y >> 248 == 0:
        n += 8
        y = y << 8
    if y >> 252 == 0:
        n += 4
        y = y << 4
    if y >> 254 == 0:
        n += 2
        y = y << 2
    if y >> 255 == 0:
        n += 1
    return n


@internal
@pure
def _terminal(
    key: bytes32,
    value_length: uint256,
    value_hash: bytes32,
    terminal: uint8,
    other_key: bytes32,
    other_value_hash: bytes32,
    depth: uint256,
    present: uint256,
) -> (bool, bytes32):
    """
    @dev The well-formedness rules of a witness that do not involve its
         sibling list, and the hash of its terminal node. The sibling
         count (`popcount(present)`) is checked during the climb.
    @return bool Whether the fields are well formed: `depth <= 256`,
            `present < 2**depth`, `other_key` and `other_value_hash`
            zero unless terminal 2, `value` non-empty iff terminal 0, and
            for terminal 2 `other_key != key` agreeing with `key` on bits
            `0 .. depth-1`.
    @return bytes32 The terminal node hash (meaningful when well formed).
    """
    if depth > SMT_DEPTH:
        return False, EMPTY
    if depth < SMT_DEPTH and present >> depth != 0:
        return False, EMPTY
    if terminal == TERMINAL_OTHER:
        if value_length != 0 or other_key == key:
            return False, EMPTY
        if self.leading_zeros(convert(key, uint256) ^ convert(other_key, uint256)) < depth:
            return False, EMPTY
        return True, self.leaf_hash(other_key, other_value_hash)
    if other_key != EMPTY or other_value_hash != EMPTY:
        return False, EMPTY
    if terminal == TERMINAL_LEAF:
        return value_length != 0, self.leaf_hash(key, value_hash)
    return terminal == TERMINAL_EMPTY and value_length == 0, EMPTY


@internal
@pure
def check(root: bytes32, w: Witness) -> bool:
    """
    @dev Returns whether the witness `w` holds against `root`
         (protocol.md section 2, "Checking a witness").
    @param root The state root.
    @param w The witness.
    @return bool True iff the witness is well formed and the climb from
            its terminal node ends at `root`.
    """
    ok: bool = False
    node: bytes32 = EMPTY
    ok, node = self._terminal(
        w.key,
        len(w.value),
        keccak256(w.value),
        w.terminal,
        w.other_key,
        w.other_value_hash,
        w.depth,
        w.present,
    )
    if not ok:
        return False
    # Climb from depth d to 0: sibling j is at depth d - j, the node there
    # is the right child iff bit d-1-j of the key is 1 (at_bit 256-d+j).
    k: uint256 = convert(w.key, uint256)
    at_bit: uint256 = SMT_DEPTH - w.depth
    present: uint256 = w.present
    count: uint256 = len(w.siblings)
    used: uint256 = 0
    for _: uint256 in range(w.depth, bound=SMT_DEPTH):
        sibling: bytes32 = EMPTY
        if present & 1 == 1:
            if used == count:
                return False
            sibling = w.siblings[used]
            used = unsafe_add(used, 1)
        if (k >> at_bit) & 1 == 1:
            node = keccak256(abi_encode(sibling, node))
        else:
            node = keccak256(abi_encode(node, sibling))
        present = present >> 1
        at_bit = unsafe_add(at_bit, 1)
    return used == count and node == root


@internal
@pure
def check_and_write(root: bytes32, w: Witness, new_value_hash: bytes32) -> (bool, bytes32):
    """
    @dev Checks `w` against `root` and returns the root after writing
         `new_value` at `w.key` (protocol.md section 2, "Writing value
         v"): one climb computes both the old root and the new one.
    @param root The state root before the write.
    @param w The witness of `w.key` against `root`.
    @param new_value_hash `keccak` of the new value of `w.key` (a non-empty value).
    @return bool True iff `w` checks against `root`.
    @return bytes32 The new root (meaningful when the witness checks).
    """
    ok: bool = False
    node: bytes32 = EMPTY
    ok, node = self._terminal(
        w.key,
        len(w.value),
        keccak256(w.value),
        w.terminal,
        w.other_key,
        w.other_value_hash,
        w.depth,
        w.present,
    )
    if not ok:
        return False, EMPTY
    k: uint256 = convert(w.key, uint256)
    written: bytes32 = self.leaf_hash(w.key, new_value_hash)
    if w.terminal == TERMINAL_OTHER:
        # The two leaves split at the first bit `p >= d` where the keys
        # differ; between depths p and d the new branch has EMPTY siblings.
        p: uint256 = self.leading_zeros(k ^ convert(w.other_key, uint256))
        if (k >> (255 - p)) & 1 == 0:
            written = keccak256(abi_encode(written, node))
        else:
            written = keccak256(abi_encode(node, written))
        for i: uint256 in range(p - w.depth, bound=SMT_DEPTH):
            # depth q = p - 1 - i, bit q has at_bit 255 - q = 256 - p + i
            if (k >> (256 - p + i)) & 1 == 0:
                written = keccak256(abi_encode(written, EMPTY))
            else:
                written = keccak256(abi_encode(EMPTY, written))
    at_bit: uint256 = SMT_DEPTH - w.depth
    present: uint256 = w.present
    count: uint256 = len(w.siblings)
    used: uint256 = 0
    for _: uint256 in range(w.depth, bound=SMT_DEPTH):
        sibling: bytes32 = EMPTY
        if present & 1 == 1:
            if used == count:
                return False, EMPTY
            sibling = w.siblings[used]
            used = unsafe_add(used, 1)
        if (k >> at_bit) & 1 == 1:
            node = keccak256(abi_encode(sibling, node))
            written = keccak256(abi_encode(sibling, written))
        else:
            node = keccak256(abi_encode(node, sibling))
            written = keccak256(abi_encode(written, sibling))
        present = present >> 1
        at_bit = unsafe_add(at_bit, 1)
    return used == count and node == root, written
