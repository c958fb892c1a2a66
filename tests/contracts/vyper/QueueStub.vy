# pragma version ~=0.4.3
"""
@title L1 Queue Stub (tests only)
@license MIT
@notice Stands in for the Bridge's `queue_hash` in the verifier-only
        deployment of the differential tests, so that each vector's L1
        context (its queue entries) can be set before it runs. Never
        deployed outside the tests.
"""


# @dev The queue hash of entry `i` (zero when unset).
queue_hash: public(HashMap[uint256, bytes32])


@external
def set_queue(first: uint256, hashes: DynArray[bytes32, 64]):
    """
    @dev Sets entries `first .. first + len(hashes) - 1` (zero clears one).
    @param first The first index.
    @param hashes The entries' hashes.
    """
    for i: uint256 in range(len(hashes), bound=64):
        self.queue_hash[first + i] = hashes[i]
