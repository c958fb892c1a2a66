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
     internal functions are called as `smt.check(...)`. `check` never
     reverts (it answers `False`); `write` assumes `check` held.
"""


# @dev Bits of a state key, hence the deepest terminal node.
SMT_DEPTH: constant(uint256) = 256


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 256


# @dev The hash of an empty subtree (and the genesis state root).
EMPTY: constant(bytes32) = empty(bytes32)


# @dev The first byte of a state-leaf preimage.
LEAF_TAG: constant(bytes1) = 0x01


# @dev Terminal kinds of a witness.
TERMINAL_LEAF: constant(uint8) = 0
TERMINAL_EMPTY: constant(uint8) = 1
TERMINAL_OTHER: constant(uint8) = 2


# @dev A path from the root to the node where `key`'s path ends.
#      `siblings[j]` is the sibling at depth `d - j` (`d = len(siblings)`).
#      `value` is empty iff the key is absent (terminals 1 and 2);
#      `other_key` and `other_value_hash` describe the leaf of another
#      key met on the path (terminal 2 only, else zero).
struct Witness:
    key: bytes32
    value: Bytes[MAX_VALUE_BYTES]
    terminal: uint8
    other_key: bytes32
    other_value_hash: bytes32
    siblings: DynArray[bytes32, SMT_DEPTH]


@internal
@pure
def bit(key: bytes32, q: uint256) -> uint256:
    """
    @dev Returns bit `q` of `key` (bit 0 is the most significant).
    @param key The 32-byte key.
    @param q The bit index, 0 to 255.
    @return uint256 The bit, 0 or 1.
    """
    return (convert(key, uint256) >> (255 - q)) & 1


@internal
@pure
def leaf_hash(key: bytes32, val: Bytes[MAX_VALUE_BYTES]) -> bytes32:
    """
    @dev Returns `keccak(LEAF_TAG || key || keccak(val))`.
    @param key The leaf's key.
    @param val The leaf's value.
    @return bytes32 The leaf hash.
    """
    return keccak256(concat(LEAF_TAG, key, keccak256(val)))


@internal
@pure
def _climb(key: bytes32, node: bytes32, siblings: DynArray[bytes32, SMT_DEPTH]) -> bytes32:
    """
    @dev Climbs from the terminal node at depth `len(siblings)` to the
         root: at depth `q + 1 -> q` the node is the right child iff bit
         `q` of `key` is 1.
    @param key The key whose path is climbed.
    @param node The terminal node hash.
    @param siblings The witness siblings, deepest first.
    @return bytes32 The root.
    """
    d: uint256 = len(siblings)
    acc: bytes32 = node
    for j: uint256 in range(d, bound=SMT_DEPTH):
        sibling: bytes32 = siblings[j]
        if self.bit(key, d - 1 - j) == 1:
            acc = keccak256(concat(sibling, acc))
        else:
            acc = keccak256(concat(acc, sibling))
    return acc


@internal
@pure
def _leading_zeros(x: uint256) -> uint256:
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
def check(root: bytes32, w: Witness) -> bool:
    """
    @dev Returns whether the witness `w` holds against `root`
         (protocol.md section 2, "Checking a witness").
    @param root The state root.
    @param w The witness.
    @return bool True iff the witness is well formed (`other_key` and
            `other_value_hash` zero unless terminal 2) and the climb from
            the terminal node ends at `root`.
    """
    node: bytes32 = EMPTY
    if w.terminal != TERMINAL_OTHER and (w.other_key != EMPTY or w.other_value_hash != EMPTY):
        return False
    if w.terminal == TERMINAL_LEAF:
        if len(w.value) == 0:
            return False
        node = self.leaf_hash(w.key, w.value)
    elif w.terminal == TERMINAL_EMPTY:
        if len(w.value) != 0:
            return False
    elif w.terminal == TERMINAL_OTHER:
        if len(w.value) != 0 or w.other_key == w.key:
            return False
        # `other_key` agrees with `key` on bits 0 .. d-1.
        if self._leading_zeros(convert(w.key, uint256) ^ convert(w.other_key, uint256)) < len(w.siblings):
            return False
        node = keccak256(concat(LEAF_TAG, w.other_key, w.other_value_hash))
    else:
        return False
    return self._climb(w.key, node, w.siblings) == root


@internal
@pure
def write(w: Witness, new_value: Bytes[MAX_VALUE_BYTES]) -> bytes32:
    """
    @dev Returns the root after writing `new_value` at `w.key` into the tree
         that the (checked) witness `w` describes (protocol.md section 2,
         "Writing value v").
    @notice The caller must have checked `w` first.
    @param w The witness, already checked against the current root.
    @param new_value The new value of `w.key`.
    @return bytes32 The new root.
    """
    leaf: bytes32 = self.leaf_hash(w.key, new_value)
    if w.terminal != TERMINAL_OTHER:
        return self._climb(w.key, leaf, w.siblings)
    d: uint256 = len(w.siblings)
    # The first bit where the two keys differ; `p >= d` since `check` held.
    p: uint256 = self._leading_zeros(convert(w.key, uint256) ^ convert(w.other_key, uint256))
    other: bytes32 = keccak256(concat(LEAF_TAG, w.other_key, w.other_value_hash))
    node: bytes32 = EMPTY
    if self.bit(w.key, p) == 0:
        node = keccak256(concat(leaf, other))
    else:
        node = keccak256(concat(other, leaf))
    for i: uint256 in range(p - d, bound=SMT_DEPTH):
        if self.bit(w.key, p - 1 - i) == 0:
            node = keccak256(concat(node, EMPTY))
        else:
            node = keccak256(concat(EMPTY, node))
    return self._climb(w.key, node, w.siblings)
