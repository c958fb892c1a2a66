# pragma version ~=0.4.3
"""
@title Trade Rules
@custom:contract-name TradeRules
@license MIT
@notice The rules of protocol.md section 3 ("Trading") for Fill and
        BundleFill, executed for the FraudVerifier (section 5): `execute`
        returns the keys a transaction touches (repeats removed), whether
        it applies, and the new value of each key.
@dev TODO(v2 rules follow-up): the trading rules. Until they are written
     `execute` reverts ("rules: not implemented") on a Fill or BundleFill
     that decodes, so no proof about one can succeed (none can slash an
     honest sequencer either); one that does not decode touches nothing.
"""

import eip712
import txdata


# @dev Longest encoded transaction.
MAX_TX_BYTES: constant(uint256) = txdata.MAX_TX_BYTES


# @dev Most state leaves one transaction touches.
MAX_WITNESSES: constant(uint256) = 12


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


# @dev A BundleFill is `type || trader(20) || expiry(8) || salt(8) || count(1)`,
#      `count` legs of 19 bytes, the signature (65) and `count` signed maker
#      orders (121 bytes each), with 1 to `MAX_LEGS` legs.
MAX_LEGS: constant(uint256) = 4
BUNDLE_HEADER_BYTES: constant(uint256) = 38
BUNDLE_FIXED_BYTES: constant(uint256) = 103
BUNDLE_LEG_BYTES: constant(uint256) = 140


# STORAGE #


# @dev The Rollup contract: the EIP-712 `verifyingContract`.
ROLLUP: public(immutable(address))


@deploy
def __init__(rollup: address):
    """
    @dev Sets the Rollup (signing domain).
    @param rollup The Rollup address.
    """
    assert rollup != empty(address), "rules: zero address"
    ROLLUP = rollup


@external
@view
def domain_separator() -> bytes32:
    """
    @dev Returns the EIP-712 domain separator (name "DerivRollup",
         version "1", this chain's id, the Rollup address).
    @return bytes32 The domain separator.
    """
    return eip712.domain_separator(ROLLUP)


@external
@view
def execute(
    tx_data: Bytes[MAX_TX_BYTES],
    values: DynArray[Bytes[MAX_VALUE_BYTES], MAX_WITNESSES],
    queue_end: uint256,
    l2_time: uint256,
) -> (DynArray[bytes32, MAX_WITNESSES], bool, DynArray[Bytes[MAX_VALUE_BYTES], MAX_WITNESSES]):
    """
    @dev Executes one Fill or BundleFill on the values of its touched keys
         (protocol.md sections 3 and 5).
    @param tx_data The encoded transaction.
    @param values The value of each touched key before the transaction.
    @param queue_end The batch's `queue_end`.
    @param l2_time The batch's `l2_time`.
    @return DynArray[bytes32, 12] The touched keys, repeats removed.
    @return bool Whether the transaction applies.
    @return DynArray[Bytes[2048], 12] When it applies, the new value of each key.
    """
    size: uint256 = len(tx_data)
    if size == 0:
        return [], False, []
    tx_type: uint256 = convert(slice(tx_data, 0, 1), uint256)
    decodes: bool = False
    if tx_type == txdata.TYPE_FILL:
        decodes = size == txdata.FILL_LENGTH
    elif tx_type == txdata.TYPE_BUNDLE_FILL and size >= BUNDLE_HEADER_BYTES:
        count: uint256 = convert(slice(tx_data, 37, 1), uint256)
        decodes = count >= 1 and count <= MAX_LEGS and size == BUNDLE_FIXED_BYTES + BUNDLE_LEG_BYTES * count
    # TODO(v2 rules follow-up): the Fill and BundleFill rules.
    assert not decodes, "rules: not implemented"
    return [], False, []
