# pragma version ~=0.4.3
"""
@title Fraud Verifier
@custom:contract-name FraudVerifier
@license MIT
@notice Re-executes one rollup transaction on L1 (docs/protocol.md
        sections 2 and 3): decodes it, reads the values of the state
        leaves it touches from their witnesses, applies the rules, then
        checks and writes each witness in order, and returns the state
        root after the transaction. The Rollup compares that root with
        the one the sequencer committed.
@dev `apply_tx` is a view: it changes nothing. It reverts with
     "verifier: bad witness" when the witnesses do not prove the state
     (wrong count, a key that is not the derived key, a value of the
     wrong size, or a failing check); it never reverts on a bad
     transaction, which is a no-op instead. The arithmetic is the
     Python state machine's: the protocol's cap on total deposits
     (2^128 - 1) is why no balance can overflow.
"""

import smt
import state_keys


# @dev The Bridge: the hashes of the L1 deposit queue.
interface IBridge:
    def deposit_hash(index: uint256) -> bytes32: view


# @dev Longest encoded transaction.
MAX_TX_BYTES: constant(uint256) = 512


# @dev Most state leaves one transaction touches.
MAX_WITNESSES: constant(uint256) = 8


# @dev Cap on the sum of all deposits ever; a larger Transfer/Withdraw amount is
#      invalid (as in the Python state machine's `InvalidAmount`).
MAX_TOTAL_DEPOSITS: constant(uint256) = 2**128 - 1


# @dev Transaction type bytes and exact encoded lengths (protocol.md section 3).
TYPE_DEPOSIT: constant(uint256) = 1
TYPE_TRANSFER: constant(uint256) = 2
TYPE_WITHDRAW: constant(uint256) = 3
DEPOSIT_LENGTH: constant(uint256) = 61
SIGNED_LENGTH: constant(uint256) = 146


# @dev The secp256k1 group order and its half (highest accepted `s`).
SECP256K1_N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
SECP256K1_N_HALF: constant(uint256) = SECP256K1_N // 2


# @dev EIP-712 type hashes.
EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
TRANSFER_TYPEHASH: constant(bytes32) = keccak256(
    "Transfer(address from,address to,uint256 amount,uint64 nonce)"
)
WITHDRAW_TYPEHASH: constant(bytes32) = keccak256(
    "Withdraw(address from,address to,uint256 amount,uint64 nonce)"
)
EIP712_NAME_HASH: constant(bytes32) = keccak256("DerivRollup")
EIP712_VERSION_HASH: constant(bytes32) = keccak256("1")


# STORAGE #


# @dev The Rollup contract: the EIP-712 `verifyingContract`.
ROLLUP: public(immutable(address))


# @dev The Bridge contract, whose `deposit_hash` a Deposit must match.
BRIDGE: public(immutable(IBridge))


@deploy
def __init__(rollup: address, bridge: address):
    """
    @dev Sets the Rollup (signing domain) and the Bridge (deposit queue).
    @param rollup The Rollup address.
    @param bridge The Bridge address.
    """
    assert rollup != empty(address) and bridge != empty(address), "verifier: zero address"
    ROLLUP = rollup
    BRIDGE = IBridge(bridge)


@external
@view
def domain_separator() -> bytes32:
    """
    @dev Returns the EIP-712 domain separator (name "DerivRollup",
         version "1", this chain's id, the Rollup address).
    @return bytes32 The domain separator.
    """
    return self._domain_separator()


@external
@view
def apply_tx(
    pre_root: bytes32,
    tx_data: Bytes[MAX_TX_BYTES],
    witnesses: DynArray[smt.Witness, MAX_WITNESSES],
    queue_end: uint256,
) -> bytes32:
    """
    @dev Returns the state root after applying `tx_data` to `pre_root`.
    @param pre_root The state root before the transaction.
    @param tx_data The encoded transaction (any bytes: undecodable ones are no-ops).
    @param witnesses One witness per touched key, in the protocol's order;
           witness `j` is against the root after writes `0 .. j-1`.
    @param queue_end The batch's `queue_end` (a Deposit must be below it).
    @return bytes32 The post-state root (`pre_root` for a no-op).
    """
    size: uint256 = len(tx_data)
    kind: uint256 = 0
    if size > 0:
        kind = convert(slice(tx_data, 0, 1), uint256)
    if kind == TYPE_DEPOSIT and size == DEPOSIT_LENGTH:
        return self._deposit(pre_root, tx_data, witnesses, queue_end)
    if (kind == TYPE_TRANSFER or kind == TYPE_WITHDRAW) and size == SIGNED_LENGTH:
        return self._signed(pre_root, kind, tx_data, witnesses)
    # Undecodable: touches nothing.
    assert len(witnesses) == 0, "verifier: bad witness"
    return pre_root


@internal
@view
def _deposit(
    pre_root: bytes32,
    tx_data: Bytes[MAX_TX_BYTES],
    witnesses: DynArray[smt.Witness, MAX_WITNESSES],
    queue_end: uint256,
) -> bytes32:
    """
    @dev Deposit `type || queue_index(8) || to(20) || amount(32)`;
         touches Global, Account(to).
    """
    queue_index: uint256 = extract32(tx_data, 1, output_type=uint256) >> 192
    to: address = self._address_at(tx_data, 9)
    amount: uint256 = extract32(tx_data, 29, output_type=uint256)

    assert len(witnesses) == 2, "verifier: bad witness"
    assert witnesses[0].key == state_keys.GLOBAL_KEY, "verifier: bad witness"
    assert witnesses[1].key == state_keys.account_key(to), "verifier: bad witness"
    next_index: uint256 = self._read_word(witnesses[0].value)
    collateral: uint256 = 0
    nonce: uint256 = 0
    collateral, nonce = self._read_account(witnesses[1].value)

    valid: bool = queue_index == next_index and queue_index < queue_end
    if valid:
        valid = keccak256(abi_encode(queue_index, to, amount)) == staticcall BRIDGE.deposit_hash(queue_index)
    if not valid:
        return self._check_all(pre_root, witnesses)
    return self._write_two(
        pre_root,
        witnesses,
        abi_encode(next_index + 1),
        abi_encode(collateral + amount, nonce),
    )


@internal
@view
def _signed(
    pre_root: bytes32,
    kind: uint256,
    tx_data: Bytes[MAX_TX_BYTES],
    witnesses: DynArray[smt.Witness, MAX_WITNESSES],
) -> bytes32:
    """
    @dev Transfer / Withdraw `type || from(20) || to(20) || amount(32) ||
         nonce(8) || r(32) || s(32) || v(1)`. A Transfer touches
         Account(from), Account(to); a Withdraw touches Account(from),
         Withdrawal(from, nonce).
    """
    sender: address = self._address_at(tx_data, 1)
    to: address = self._address_at(tx_data, 21)
    amount: uint256 = extract32(tx_data, 41, output_type=uint256)
    tx_nonce: uint256 = extract32(tx_data, 73, output_type=uint256) >> 192
    r: uint256 = extract32(tx_data, 81, output_type=uint256)
    s: uint256 = extract32(tx_data, 113, output_type=uint256)
    v: uint256 = extract32(tx_data, 114, output_type=uint256) & 255

    second_key: bytes32 = empty(bytes32)
    typehash: bytes32 = TRANSFER_TYPEHASH
    if kind == TYPE_TRANSFER:
        second_key = state_keys.account_key(to)
    else:
        second_key = state_keys.withdrawal_key(sender, tx_nonce)
        typehash = WITHDRAW_TYPEHASH
    assert len(witnesses) == 2, "verifier: bad witness"
    assert witnesses[0].key == state_keys.account_key(sender), "verifier: bad witness"
    assert witnesses[1].key == second_key, "verifier: bad witness"
    collateral: uint256 = 0
    nonce: uint256 = 0
    collateral, nonce = self._read_account(witnesses[0].value)

    valid: bool = amount > 0 and amount <= MAX_TOTAL_DEPOSITS and tx_nonce == nonce and amount <= collateral
    to_collateral: uint256 = 0
    to_nonce: uint256 = 0
    if kind == TYPE_TRANSFER:
        valid = valid and sender != to
        to_collateral, to_nonce = self._read_account(witnesses[1].value)
    else:
        # a payout to the zero address would lock the funds on L1 (protocol.md section 3)
        valid = valid and to != empty(address) and len(witnesses[1].value) == 0
    if valid:
        struct_hash: bytes32 = keccak256(abi_encode(typehash, sender, to, amount, tx_nonce))
        digest: bytes32 = keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))
        valid = self._signed_by(digest, v, r, s, sender)
    if not valid:
        return self._check_all(pre_root, witnesses)

    sender_value: Bytes[64] = abi_encode(collateral - amount, nonce + 1)
    if kind == TYPE_TRANSFER:
        return self._write_two(pre_root, witnesses, sender_value, abi_encode(to_collateral + amount, to_nonce))
    return self._write_two(pre_root, witnesses, sender_value, abi_encode(to, amount))


@internal
@view
def _domain_separator() -> bytes32:
    """
    @dev Returns the EIP-712 domain separator for this chain and the Rollup.
    """
    return keccak256(
        abi_encode(EIP712_DOMAIN_TYPEHASH, EIP712_NAME_HASH, EIP712_VERSION_HASH, chain.id, ROLLUP)
    )


@internal
@pure
def _signed_by(digest: bytes32, v: uint256, r: uint256, s: uint256, signer: address) -> bool:
    """
    @dev Returns whether `(v, r, s)` is a valid, non-malleable signature of
         `digest` by `signer`: `v` in {27, 28}, `0 < r < n`, `0 < s <= n/2`.
         A failed recovery (the zero address) never matches.
    """
    if v != 27 and v != 28:
        return False
    if r == 0 or r >= SECP256K1_N or s == 0 or s > SECP256K1_N_HALF:
        return False
    recovered: address = ecrecover(digest, v, r, s)
    return recovered != empty(address) and recovered == signer


@internal
@pure
def _address_at(data: Bytes[MAX_TX_BYTES], start: uint256) -> address:
    """
    @dev Returns the 20-byte address at `data[start : start + 20]`
         (`start + 32 <= len(data)`).
    """
    return convert(convert(extract32(data, start, output_type=uint256) >> 96, uint160), address)


@internal
@pure
def _read_word(data: Bytes[smt.MAX_VALUE_BYTES]) -> uint256:
    """
    @dev Decodes a one-word value (absent = 0); any other size is a bad witness.
    """
    if len(data) == 0:
        return 0
    assert len(data) == 32, "verifier: bad witness"
    return extract32(data, 0, output_type=uint256)


@internal
@pure
def _read_account(data: Bytes[smt.MAX_VALUE_BYTES]) -> (uint256, uint256):
    """
    @dev Decodes an Account value `collateral || nonce` (absent = 0, 0);
         any other size is a bad witness.
    """
    if len(data) == 0:
        return 0, 0
    assert len(data) == 64, "verifier: bad witness"
    return extract32(data, 0, output_type=uint256), extract32(data, 32, output_type=uint256)


@internal
@pure
def _check_all(root: bytes32, witnesses: DynArray[smt.Witness, MAX_WITNESSES]) -> bytes32:
    """
    @dev A no-op: every witness is checked against `root` (writing a key's
         old value leaves the root unchanged), which is returned.
    """
    for w: smt.Witness in witnesses:
        assert smt.check(root, w), "verifier: bad witness"
    return root


@internal
@pure
def _write_two(
    pre_root: bytes32,
    witnesses: DynArray[smt.Witness, MAX_WITNESSES],
    first: Bytes[64],
    second: Bytes[64],
) -> bytes32:
    """
    @dev Checks witness 0 against `pre_root` and writes `first`, then
         checks witness 1 against the new root and writes `second`.
    """
    assert smt.check(pre_root, witnesses[0]), "verifier: bad witness"
    root: bytes32 = smt.write(witnesses[0], first)
    assert smt.check(root, witnesses[1]), "verifier: bad witness"
    return smt.write(witnesses[1], second)
