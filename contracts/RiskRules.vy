# pragma version ~=0.4.3
"""
@title Risk Rules
@custom:contract-name RiskRules
@license MIT
@notice The rules of protocol.md section 3 ("Risk") for Liquidate and
        Deleverage, executed for the FraudVerifier (section 5): `execute`
        returns the keys a transaction touches (repeats removed), whether
        it applies, and the new value of each key.
@dev TODO(v2 rules follow-up): the liquidation and auto-deleveraging
     rules. Until they are written `execute` reverts ("rules: not
     implemented") on a Liquidate or Deleverage that decodes, so no proof
     about one can succeed (none can slash an honest sequencer either);
     one that does not decode touches nothing.
"""

import eip712
import txdata


# @dev Longest encoded transaction.
MAX_TX_BYTES: constant(uint256) = txdata.MAX_TX_BYTES


# @dev Most state leaves one transaction touches.
MAX_WITNESSES: constant(uint256) = 12


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


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
    @dev Executes one Liquidate or Deleverage on the values of its touched
         keys (protocol.md sections 3 and 5).
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
    decodes: bool = (tx_type == txdata.TYPE_LIQUIDATE and size == txdata.LIQUIDATE_LENGTH) or (
        tx_type == txdata.TYPE_DELEVERAGE and size == txdata.DELEVERAGE_LENGTH
    )
    # TODO(v2 rules follow-up): the Liquidate and Deleverage rules.
    assert not decodes, "rules: not implemented"
    return [], False, []
