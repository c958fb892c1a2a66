# pragma version ~=0.4.3
"""
@title State Keys
@custom:contract-name state_keys
@license MIT
@notice Library module: the state-leaf keys of protocol.md section 2,
        `key(kind, id) = keccak(kind || id)` with `kind` one byte and
        `id` 32 bytes.
@dev The module holds no state: `import state_keys`. The keys of the
     singleton leaves (id `word(0)`) are constants, checked against their
     definition in the tests (`tests/contracts/test_rules.py`).
"""


# @dev Leaf kinds.
KIND_GLOBAL: constant(bytes1) = 0x00
KIND_ACCOUNT: constant(bytes1) = 0x01
KIND_MARKETS: constant(bytes1) = 0x02
KIND_WITHDRAWAL: constant(bytes1) = 0x03
KIND_ORDER: constant(bytes1) = 0x04
KIND_INSURANCE: constant(bytes1) = 0x05
KIND_ORACLE: constant(bytes1) = 0x06


# @dev `key(0x00, word(0))`: the Global leaf holding `next_queue_index`
#      (`keccak(0x00 || 32 zero bytes)`).
GLOBAL_KEY: constant(bytes32) = 0xf39a869f62e75cf5f0bf914688a6b289caf2049435d8e68c5c5e6d05e44913f3


# @dev `key(0x02, word(0))`: the Markets leaf (every market's record).
MARKETS_KEY: constant(bytes32) = 0x5da513e113e3f2fd0c7f9fdb338fc156917b82fe159806cc152be5bba89d8e7b


# @dev `key(0x05, word(0))`: the Insurance leaf (the insurance fund's balance).
INSURANCE_KEY: constant(bytes32) = 0x86763330e570874e3ff03a95628b736b70e79b34461ed8f375550f06834f6e33


# @dev `key(0x06, word(0))`: the Oracle leaf (the price committee).
ORACLE_KEY: constant(bytes32) = 0xd1965c70816d83cc07dc57f0b5aa199bc155d0a0214af4cbdac5a0468dc35bdf


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


@internal
@pure
def order_key(digest: bytes32) -> bytes32:
    """
    @dev Returns `key(0x04, digest)`.
    @param digest The EIP-712 digest of an order or a bundle.
    @return bytes32 The Order leaf key.
    """
    return keccak256(concat(KIND_ORDER, digest))
