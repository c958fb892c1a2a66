# pragma version ~=0.4.3
"""
@title Batch Merkle Trees (merkletools shape)
@custom:contract-name merkle
@license MIT
@notice Library module: the SHA-256 binary Merkle trees of protocol.md
        section 4, built as the `merkletools` package builds them:
        leaves in order, each level hashes pairs `sha256(left || right)`,
        an odd last node is carried up unhashed, the root of one leaf is
        the leaf. Leaves are domain-separated by the caller
        (`TX_LEAF_TAG`, `ROOT_LEAF_TAG`).
@dev The module holds no state: `import merkle`, then `merkle.root(...)`.
"""


# @dev Most transactions (hence leaves) in one batch.
MAX_BATCH_TXS: constant(uint256) = 256


# @dev Most levels of a tree of `MAX_BATCH_TXS` leaves, hence the longest proof.
MAX_PROOF_LENGTH: constant(uint256) = 8


# @dev The first byte of a transaction-tree leaf preimage.
TX_LEAF_TAG: constant(bytes1) = 0x00


# @dev The first byte of a state-root-tree leaf preimage.
ROOT_LEAF_TAG: constant(bytes1) = 0x01


@internal
@pure
def tx_leaf(tx_data: Bytes[1024]) -> bytes32:
    """
    @dev Returns the transaction-tree leaf `sha256(TX_LEAF_TAG || tx)`.
    @param tx_data The encoded transaction.
    @return bytes32 The leaf.
    """
    return sha256(concat(TX_LEAF_TAG, tx_data))


@internal
@pure
def root_leaf(state_root: bytes32) -> bytes32:
    """
    @dev Returns the state-root-tree leaf `sha256(ROOT_LEAF_TAG || state_root)`.
    @param state_root The per-transaction post-state root.
    @return bytes32 The leaf.
    """
    return sha256(concat(ROOT_LEAF_TAG, state_root))


@internal
@pure
def root(leaves: DynArray[bytes32, MAX_BATCH_TXS]) -> bytes32:
    """
    @dev Returns the merkletools root of `leaves` (at least one leaf).
    @param leaves The leaf hashes, in order.
    @return bytes32 The root.
    """
    level: DynArray[bytes32, MAX_BATCH_TXS] = leaves
    width: uint256 = len(level)
    for _: uint256 in range(MAX_PROOF_LENGTH + 1):
        if width <= 1:
            break
        half: uint256 = width // 2
        for k: uint256 in range(half, bound=MAX_BATCH_TXS // 2):
            level[k] = sha256(concat(level[2 * k], level[2 * k + 1]))
        if width % 2 == 1:
            # The odd last node is carried up unhashed.
            level[half] = level[width - 1]
            half += 1
        width = half
    return level[0]


@internal
@pure
def verify(
    leaf: bytes32,
    index: uint256,
    count: uint256,
    proof: DynArray[bytes32, MAX_PROOF_LENGTH],
    expected_root: bytes32,
) -> bool:
    """
    @dev Returns whether `leaf` is leaf `index` of the merkletools tree of
         `count` leaves with root `expected_root`. The proof lists the
         siblings from the leaf up, skipping levels where the node is
         carried up, so its length is fixed by `(index, count)`: a proof
         of any other length is rejected.
    @param leaf The leaf hash.
    @param index The leaf's position.
    @param count The number of leaves of the tree.
    @param proof The siblings, from the leaf up.
    @param expected_root The committed root.
    @return bool True iff the proof holds.
    """
    if index >= count:
        return False
    node: bytes32 = leaf
    idx: uint256 = index
    width: uint256 = count
    used: uint256 = 0
    for _: uint256 in range(MAX_PROOF_LENGTH + 1):
        if width <= 1:
            break
        if idx % 2 == 1:
            if used >= len(proof):
                return False
            node = sha256(concat(proof[used], node))
            used += 1
        elif idx + 1 < width:
            if used >= len(proof):
                return False
            node = sha256(concat(node, proof[used]))
            used += 1
        idx = idx // 2
        width = (width + 1) // 2
    return used == len(proof) and node == expected_root
