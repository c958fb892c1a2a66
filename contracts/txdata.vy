# pragma version ~=0.4.3
"""
@title Transaction Encoding
@custom:contract-name txdata
@license MIT
@notice Library module: the transaction type bytes, exact lengths and
        field reading of protocol.md section 3 ("Encodings"). Every field
        is big-endian at a fixed offset; a transaction of the wrong length
        for its type does not decode (it touches nothing).
@dev The module holds no state: `import txdata`. Readers take the
     32-byte word at a field's offset (`extract32(tx, offset)`, which
     needs `offset + 32 <= len(tx)`) so the transaction is never copied
     into a callee frame.
"""


# @dev Longest encoded transaction.
MAX_TX_BYTES: constant(uint256) = 1024


# @dev Transaction type bytes.
TYPE_DEPOSIT: constant(uint256) = 1
TYPE_TRANSFER: constant(uint256) = 2
TYPE_WITHDRAW: constant(uint256) = 3
TYPE_L1_MESSAGE: constant(uint256) = 4
TYPE_ORACLE_UPDATE: constant(uint256) = 5
TYPE_FUNDING: constant(uint256) = 6
TYPE_FILL: constant(uint256) = 7
TYPE_CANCEL: constant(uint256) = 8
TYPE_LIQUIDATE: constant(uint256) = 9
TYPE_DELEVERAGE: constant(uint256) = 10
TYPE_BUNDLE_FILL: constant(uint256) = 11
TYPE_FORCED: constant(uint256) = 12


# @dev Exact encoded lengths of the fixed-size types (type byte included).
DEPOSIT_LENGTH: constant(uint256) = 61
SIGNED_LENGTH: constant(uint256) = 146
FUNDING_LENGTH: constant(uint256) = 11
FILL_LENGTH: constant(uint256) = 251
CANCEL_LENGTH: constant(uint256) = 122
LIQUIDATE_LENGTH: constant(uint256) = 124
DELEVERAGE_LENGTH: constant(uint256) = 51


# @dev A ForcedTx is `type || queue_index(8) || tx`: its inner transaction starts here.
FORCED_HEADER_BYTES: constant(uint256) = 9


# @dev Which rules contract executes a type (protocol.md section 5).
RULES_NONE: constant(uint256) = 0
RULES_TRANSFER: constant(uint256) = 1
RULES_TRADE: constant(uint256) = 2
RULES_RISK: constant(uint256) = 3
RULES_ORACLE: constant(uint256) = 4


@internal
@pure
def rules_of(tx_type: uint256) -> uint256:
    """
    @dev Returns which rules contract executes transactions of `tx_type`:
         TransferRules (Deposit, Transfer, Withdraw, L1Message, Cancel,
         ForcedTx),
         OracleRules (OracleUpdate, Funding), TradeRules (Fill,
         BundleFill), RiskRules (Liquidate, Deleverage), or none (an
         unknown type does not decode).
    @param tx_type The type byte.
    @return uint256 One of the `RULES_*` constants.
    """
    if tx_type == TYPE_FILL or tx_type == TYPE_BUNDLE_FILL:
        return RULES_TRADE
    if tx_type == TYPE_LIQUIDATE or tx_type == TYPE_DELEVERAGE:
        return RULES_RISK
    if tx_type == TYPE_ORACLE_UPDATE or tx_type == TYPE_FUNDING:
        return RULES_ORACLE
    if (tx_type >= TYPE_DEPOSIT and tx_type <= TYPE_CANCEL) or tx_type == TYPE_FORCED:
        return RULES_TRANSFER
    return RULES_NONE


@internal
@pure
def word_address(word: uint256) -> address:
    """
    @dev Returns the address in the first 20 bytes of `word`.
    @param word The 32 bytes read at the address field's offset.
    @return address The address.
    """
    return convert(convert(word >> 96, uint160), address)


@internal
@pure
def word_uint(word: uint256, size: uint256) -> uint256:
    """
    @dev Returns the unsigned integer in the first `size` bytes of `word`.
    @param word The 32 bytes read at the field's offset.
    @param size The field's length in bytes, 1 to 32.
    @return uint256 The field.
    """
    return word >> (256 - 8 * size)
