# pragma version ~=0.4.3
"""
@title State Keys
@custom:contract-name state_keys
@license MIT
@notice Library module: the state-leaf keys of protocol.md section 2,
        `key(kind, id) = keccak(kind || id)` with `kind` one byte and
        `id` 32 bytes.
@dev The module holds no state: `import state_keys`.
"""


# @dev Leaf kinds.
KIND_GLOBAL: constant(bytes1) = 0x00
KIND_ACCOUNT: constant(bytes1) = 0x01
KIND_WITHDRAWAL: constant(bytes1) = 0x03


# @dev `key(0x00, word(0))`: the Global leaf holding `next_deposit_index`
#      (`keccak(33 zero bytes)`).
GLOBAL_KEY: constant(bytes32) = 0xf39a869f62e75cf5f0bf914688a6b289caf2049435d8e68c5c5e6d05e44913f3


@internal
@pure
def global_key() -> bytes32:
    """
    @dev Returns the Global key, computed (the constant is checked against it in tests).
    @return bytes32 `keccak(0x00 || word(0))`.
    """
    return keccak256(concat(KIND_GLOBAL, empty(bytes32)))


@internal
@pure
def account_key(account: address) -> bytes32:
    """
    @dev Returns `key(0x01, word(account))`.
    @param account The L2 account.
    @return bytes32 The Account leaf key.
    """
    return keccak256(concat(KIND_ACCOUNT, convert(convert(account, uint256), bytes32)))


@internal
@pure
def withdrawal_key(account: address, nonce: uint256) -> bytes32:
    """
    @dev Returns `key(0x03, keccak(word(account) || word(nonce)))`.
    @param account The withdrawing L2 account.
    @param nonce The nonce of its Withdraw transaction.
    @return bytes32 The Withdrawal leaf key.
    """
    return keccak256(concat(KIND_WITHDRAWAL, keccak256(abi_encode(account, nonce))))
