# pragma version ~=0.4.3
"""
@title Fraud Verifier
@custom:contract-name FraudVerifier
@license MIT
@notice Re-executes one rollup transaction on L1 (docs/protocol.md
        sections 2, 3 and 5) and returns the state root after it. It
        dispatches on the type byte to the rules contract of the type
        (TransferRules, OracleRules, TradeRules, RiskRules), handing it
        the values of the witnesses; the rules return the touched keys,
        whether the transaction applies and the hash of each key's new
        value. Then, for each key in order, the witness must be of that
        key and check against the running root, and a changed value is
        written. The Rollup compares the result with the root the
        sequencer committed.
@dev `apply_tx` is a view: it changes nothing. It reverts with
     "verifier: bad witness" when the witnesses do not prove the state
     (wrong count, a key that is not the touched key, a value of the
     wrong shape for its leaf, or a failing check); it never reverts on a
     bad transaction, which is a no-op instead. Gas: the witnesses are
     read in place and each is copied once into the `smt` call that
     checks (and writes) it; the rules return the new values' hashes
     (all a write needs: a leaf hashes `keccak(value)`), not the values,
     so no value buffer comes back (memory cost is quadratic).
"""

import smt
import txdata


# @dev A rules contract: executes the transactions of its types on the
#      values of their touched keys (protocol.md section 5) and returns
#      the keys, whether it applies, and `keccak` of each key's new value.
interface IRules:
    def execute(
        tx_data: Bytes[MAX_TX_BYTES],
        values: DynArray[Bytes[MAX_VALUE_BYTES], MAX_WITNESSES],
        queue_end: uint256,
        l2_time: uint256,
    ) -> (DynArray[bytes32, MAX_WITNESSES], bool, DynArray[bytes32, MAX_WITNESSES]): view


# @dev Longest encoded transaction.
MAX_TX_BYTES: constant(uint256) = txdata.MAX_TX_BYTES


# @dev Most state leaves one transaction touches.
MAX_WITNESSES: constant(uint256) = 12


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = smt.MAX_VALUE_BYTES


# @dev `keccak` of the empty value: a stored value is never empty (protocol.md section 2).
EMPTY_VALUE_HASH: constant(bytes32) = keccak256(b"")


# STORAGE #


# @dev Rules of Deposit, Transfer, Withdraw, L1Message, Cancel, ForcedTx.
TRANSFER_RULES: public(immutable(IRules))


# @dev Rules of OracleUpdate and Funding.
ORACLE_RULES: public(immutable(IRules))


# @dev Rules of Fill and BundleFill.
TRADE_RULES: public(immutable(IRules))


# @dev Rules of Liquidate and Deleverage.
RISK_RULES: public(immutable(IRules))


@deploy
def __init__(transfer_rules: address, oracle_rules: address, trade_rules: address, risk_rules: address):
    """
    @dev Sets the four rules contracts.
    @param transfer_rules The TransferRules address.
    @param oracle_rules The OracleRules address.
    @param trade_rules The TradeRules address.
    @param risk_rules The RiskRules address.
    """
    assert (
        transfer_rules != empty(address)
        and oracle_rules != empty(address)
        and trade_rules != empty(address)
        and risk_rules != empty(address)
    ), "verifier: zero address"
    TRANSFER_RULES = IRules(transfer_rules)
    ORACLE_RULES = IRules(oracle_rules)
    TRADE_RULES = IRules(trade_rules)
    RISK_RULES = IRules(risk_rules)


@external
@view
def apply_tx(
    pre_root: bytes32,
    tx_data: Bytes[MAX_TX_BYTES],
    witnesses: DynArray[smt.Witness, MAX_WITNESSES],
    queue_end: uint256,
    l2_time: uint256,
) -> bytes32:
    """
    @dev Returns the state root after applying `tx_data` to `pre_root`.
    @param pre_root The state root before the transaction.
    @param tx_data The encoded transaction (any bytes: undecodable ones are no-ops).
    @param witnesses One witness per touched key, in the protocol's order;
           witness `j` is against the root after the writes of witnesses `0 .. j-1`.
    @param queue_end The batch's `queue_end`.
    @param l2_time The batch's `l2_time`.
    @return bytes32 The post-state root (`pre_root` for a no-op).
    """
    kind: uint256 = txdata.RULES_NONE
    if len(tx_data) > 0:
        kind = txdata.rules_of(convert(slice(tx_data, 0, 1), uint256))
    rules: IRules = TRANSFER_RULES
    if kind == txdata.RULES_ORACLE:
        rules = ORACLE_RULES
    elif kind == txdata.RULES_TRADE:
        rules = TRADE_RULES
    elif kind == txdata.RULES_RISK:
        rules = RISK_RULES
    elif kind == txdata.RULES_NONE:
        # An unknown type does not decode: it touches nothing.
        assert len(witnesses) == 0, "verifier: bad witness"
        return pre_root

    n: uint256 = len(witnesses)
    values: DynArray[Bytes[MAX_VALUE_BYTES], MAX_WITNESSES] = []
    for j: uint256 in range(n, bound=MAX_WITNESSES):
        values.append(witnesses[j].value)
    keys: DynArray[bytes32, MAX_WITNESSES] = []
    applies: bool = False
    new_hashes: DynArray[bytes32, MAX_WITNESSES] = []
    keys, applies, new_hashes = staticcall rules.execute(tx_data, values, queue_end, l2_time)
    assert len(keys) == n, "verifier: bad witness"
    assert not applies or len(new_hashes) == n, "verifier: bad rules output"

    root: bytes32 = pre_root
    ok: bool = False
    for j: uint256 in range(n, bound=MAX_WITNESSES):
        assert witnesses[j].key == keys[j], "verifier: bad witness"
        if applies and new_hashes[j] != keccak256(witnesses[j].value):
            # A stored value is never empty (protocol.md section 2).
            assert new_hashes[j] != EMPTY_VALUE_HASH, "verifier: bad rules output"
            ok, root = smt.check_and_write(root, witnesses[j], new_hashes[j])
        else:
            ok = smt.check(root, witnesses[j])
        assert ok, "verifier: bad witness"
    return root
