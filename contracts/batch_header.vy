# pragma version ~=0.4.3
"""
@title Batch Header
@custom:contract-name batch_header
@license MIT
@notice Library module: the batch header of protocol.md section 4 and
        its commitment `batch_hash = keccak(abi.encode(header))`, the
        eleven fields as eleven 32-byte words in this order.
@dev The module holds no state: `import batch_header`.
"""


# @dev A batch as committed on L1 (protocol.md section 4).
struct BatchHeader:
    index: uint256
    prev_root: bytes32
    post_root: bytes32
    tx_root: bytes32
    roots_root: bytes32
    tx_count: uint256
    queue_start: uint256
    queue_end: uint256
    l2_time: uint256
    sequencer: address
    timestamp: uint256


@internal
@pure
def hash(header: BatchHeader) -> bytes32:
    """
    @dev Returns `keccak(abi.encode(header))` (eleven 32-byte words).
    @param header The batch header.
    @return bytes32 The batch hash.
    """
    return keccak256(abi_encode(header))
