# pragma version ~=0.4.3
"""
@title Batch Tree Harness (tests only)
@license MIT
@notice Exposes the batch trees of `merkle.vy` (the functions the Rollup's
        `append_batch` and `prove_tx_fraud` call) as views, so the tests can
        check them against `sequencer.stf.batch` directly. Never deployed
        outside the tests.
"""

import merkle


@external
@pure
def tree_root(leaves: DynArray[bytes32, merkle.MAX_BATCH_TXS]) -> bytes32:
    return merkle.root(leaves)


@external
@pure
def verify(
    leaf: bytes32,
    index: uint256,
    count: uint256,
    proof: DynArray[bytes32, merkle.MAX_PROOF_LENGTH],
    expected_root: bytes32,
) -> bool:
    return merkle.verify(leaf, index, count, proof, expected_root)


@external
@pure
def tx_leaf(tx_data: Bytes[1024]) -> bytes32:
    return merkle.tx_leaf(tx_data)


@external
@pure
def root_leaf(state_root: bytes32) -> bytes32:
    return merkle.root_leaf(state_root)
