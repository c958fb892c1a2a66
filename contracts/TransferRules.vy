# pragma version ~=0.4.3
"""
@title Transfer Rules
@custom:contract-name TransferRules
@license MIT
@notice The rules of protocol.md section 3 for the transactions that
        move collateral, consume the L1 queue or maintain markets:
        Deposit, Transfer, Withdraw, L1Message, Cancel, OracleUpdate and
        Funding. The FraudVerifier hands `execute` the values of the
        witnesses of one transaction; `execute` returns the keys the
        transaction touches (repeats removed), whether it applies, and the
        new value of each key (section 5).
@dev `execute` is a view over its arguments and the Bridge's queue: it
     checks no witness (the FraudVerifier does). It reverts with
     "verifier: bad witness" on a value of the wrong shape for its leaf.
     Accounts are read as `int(collateral) || word(nonce)`; the account
     settlement and margin rules of accounts with positions, and the
     rules of L1Message, Cancel, OracleUpdate and Funding, are the v2
     rules follow-up (marked TODO below): until then `execute` reverts
     on them ("rules: not implemented"), so no proof about them can
     succeed (none can slash an honest sequencer either).
"""

import accounts
import eip712
import markets
import state_keys
import txdata


# @dev The Bridge: the L1 queue a Deposit or L1Message must match.
interface IBridge:
    def queue_hash(index: uint256) -> bytes32: view


# @dev Longest encoded transaction.
MAX_TX_BYTES: constant(uint256) = txdata.MAX_TX_BYTES


# @dev Most state leaves one transaction touches.
MAX_WITNESSES: constant(uint256) = 12


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


# @dev Cap on the sum of all deposits ever; a larger Transfer/Withdraw amount is invalid.
MAX_TOTAL_DEPOSITS: constant(uint256) = 2**128 - 1


# @dev Bounds of an OracleUpdate's price list and its layout.
MAX_PRICE_SIGNATURES: constant(uint256) = 11
ORACLE_HEADER_BYTES: constant(uint256) = 4
PRICE_ENTRY_BYTES: constant(uint256) = 89


# @dev An L1Message is `type || queue_index(8) || payload` with a payload of one byte or more.
L1_MESSAGE_HEADER_BYTES: constant(uint256) = 9


# STORAGE #


# @dev The Rollup contract: the EIP-712 `verifyingContract`.
ROLLUP: public(immutable(address))


# @dev The Bridge contract, whose `queue_hash` a Deposit or L1Message must match.
BRIDGE: public(immutable(IBridge))


@deploy
def __init__(rollup: address, bridge: address):
    """
    @dev Sets the Rollup (signing domain) and the Bridge (L1 queue).
    @param rollup The Rollup address.
    @param bridge The Bridge address.
    """
    assert rollup != empty(address) and bridge != empty(address), "rules: zero address"
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
    @dev Executes one transaction of a TransferRules type on the values
         of its touched keys (protocol.md sections 3 and 5).
    @param tx_data The encoded transaction.
    @param values The value of each touched key before the transaction
           (empty = absent), in touched-key order.
    @param queue_end The batch's `queue_end`.
    @param l2_time The batch's `l2_time`.
    @return DynArray[bytes32, 12] The touched keys, repeats removed (none
            if the transaction does not decode).
    @return bool Whether the transaction applies (false for a no-op, or
            when `values` does not hold one value per key).
    @return DynArray[Bytes[2048], 12] When it applies, the new value of
            each key (the old one for a key it leaves unchanged).
    @dev Gas: `values` is never passed whole to a helper (each copy of it
         is 25 KB of memory); helpers take decoded fields.
    """
    size: uint256 = len(tx_data)
    if size == 0:
        return [], False, []
    tx_type: uint256 = convert(slice(tx_data, 0, 1), uint256)
    is_deposit: bool = tx_type == txdata.TYPE_DEPOSIT and size == txdata.DEPOSIT_LENGTH
    is_signed: bool = (
        tx_type == txdata.TYPE_TRANSFER or tx_type == txdata.TYPE_WITHDRAW
    ) and size == txdata.SIGNED_LENGTH
    if not is_deposit and not is_signed:
        # TODO(v2 rules follow-up): L1Message, Cancel, OracleUpdate and Funding.
        # They decode here (so an undecodable one stays a no-op without
        # witnesses) and revert until their rules are written.
        assert not self._decodes_pending(tx_type, tx_data), "rules: not implemented"
        return [], False, []

    # Both fields are at the same offsets in the two layouts: a Deposit's
    # `to` at 9, a signed transaction's `from` at 1 and `to` at 21.
    keys: DynArray[bytes32, MAX_WITNESSES] = []
    if is_deposit:
        keys = [
            state_keys.GLOBAL_KEY,
            state_keys.account_key(txdata.word_address(extract32(tx_data, 9, output_type=uint256))),
            state_keys.MARKETS_KEY,
        ]
    else:
        keys = self._signed_keys(tx_type, tx_data)
    if len(values) != len(keys):
        return keys, False, []
    markets.count(values[len(keys) - 1])

    applies: bool = False
    first: Bytes[64] = b""
    second: Bytes[64] = b""
    if is_deposit:
        collateral: int256 = 0
        nonce: uint256 = 0
        positions: uint256 = 0
        collateral, nonce, positions = accounts.read(values[1])
        # TODO(v2 rules follow-up): settle an account with positions first.
        assert positions == 0, "rules: not implemented"
        applies, first, second = self._deposit(tx_data, self._read_word(values[0]), collateral, nonce, queue_end)
    else:
        sender: accounts.Head = self._head(values[0])
        second_head: accounts.Head = empty(accounts.Head)
        second_length: uint256 = 0
        if len(keys) == 3:
            second_length = len(values[1])
            if tx_type == txdata.TYPE_TRANSFER:
                second_head = self._head(values[1])
            else:
                assert second_length == 0 or second_length == 64, "verifier: bad witness"
        applies, first, second = self._signed(tx_type, tx_data, sender, second_head, second_length)
    if not applies:
        return keys, False, []
    new_values: DynArray[Bytes[MAX_VALUE_BYTES], MAX_WITNESSES] = [first, second, values[2]]
    return keys, True, new_values


@internal
@pure
def _decodes_pending(tx_type: uint256, tx_data: Bytes[MAX_TX_BYTES]) -> bool:
    """
    @dev Returns whether `tx_data` decodes as an L1Message, Cancel,
         OracleUpdate or Funding (type byte and exact length, section 3).
    """
    size: uint256 = len(tx_data)
    if tx_type == txdata.TYPE_L1_MESSAGE:
        return size > L1_MESSAGE_HEADER_BYTES
    if tx_type == txdata.TYPE_CANCEL:
        return size == txdata.CANCEL_LENGTH
    if tx_type == txdata.TYPE_FUNDING:
        return size == txdata.FUNDING_LENGTH
    if tx_type == txdata.TYPE_ORACLE_UPDATE and size >= ORACLE_HEADER_BYTES:
        count: uint256 = convert(slice(tx_data, 3, 1), uint256)
        return count >= 1 and count <= MAX_PRICE_SIGNATURES and size == ORACLE_HEADER_BYTES + PRICE_ENTRY_BYTES * count
    return False


@internal
@pure
def _signed_keys(tx_type: uint256, tx_data: Bytes[MAX_TX_BYTES]) -> DynArray[bytes32, MAX_WITNESSES]:
    """
    @dev The touched keys of a Transfer (Account(from), Account(to),
         Markets; Account(to) is a repeat when `from == to`) or a Withdraw
         (Account(from), Withdrawal(from, nonce), Markets).
    """
    sender: address = txdata.word_address(extract32(tx_data, 1, output_type=uint256))
    keys: DynArray[bytes32, MAX_WITNESSES] = [state_keys.account_key(sender)]
    if tx_type == txdata.TYPE_WITHDRAW:
        tx_nonce: uint256 = txdata.word_uint(extract32(tx_data, 73, output_type=uint256), 8)
        keys.append(state_keys.withdrawal_key(sender, tx_nonce))
    else:
        to: address = txdata.word_address(extract32(tx_data, 21, output_type=uint256))
        if to != sender:
            keys.append(state_keys.account_key(to))
    keys.append(state_keys.MARKETS_KEY)
    return keys


@internal
@pure
def _head(data: Bytes[MAX_VALUE_BYTES]) -> accounts.Head:
    """
    @dev Decodes an Account value (`accounts.read`) into its head.
    """
    head: accounts.Head = empty(accounts.Head)
    positions: uint256 = 0
    head.collateral, head.nonce, positions = accounts.read(data)
    # TODO(v2 rules follow-up): settle accounts with positions and apply
    # the margin rule (all_fresh, equity >= imr after a debit).
    assert positions == 0, "rules: not implemented"
    return head


@internal
@view
def _deposit(
    tx_data: Bytes[MAX_TX_BYTES], next_index: uint256, collateral: int256, nonce: uint256, queue_end: uint256
) -> (bool, Bytes[64], Bytes[64]):
    """
    @dev Deposit `type || queue_index(8) || to(20) || amount(32)`; touches
         Global, Account(to), Markets. Valid iff `queue_index` is the next
         queue index, below `queue_end`, and its hash is the Bridge's
         `queue_hash(queue_index)`. Effect: `next_queue_index += 1`,
         `collateral(to) += amount`.
    @return bool Whether it applies.
    @return Bytes[64] The new Global value.
    @return Bytes[64] The new Account(to) value.
    """
    queue_index: uint256 = txdata.word_uint(extract32(tx_data, 1, output_type=uint256), 8)
    to: address = txdata.word_address(extract32(tx_data, 9, output_type=uint256))
    amount: uint256 = extract32(tx_data, 29, output_type=uint256)
    if queue_index != next_index or queue_index >= queue_end:
        return False, b"", b""
    if keccak256(abi_encode(queue_index, to, amount)) != staticcall BRIDGE.queue_hash(queue_index):
        return False, b"", b""
    # The Bridge's cap on all deposits ever keeps `amount` below 2**128.
    return True, abi_encode(next_index + 1), accounts.encode_head(collateral + convert(amount, int256), nonce)


@internal
@view
def _signed(
    tx_type: uint256,
    tx_data: Bytes[MAX_TX_BYTES],
    sender_head: accounts.Head,
    second_head: accounts.Head,
    second_length: uint256,
) -> (bool, Bytes[64], Bytes[64]):
    """
    @dev Transfer / Withdraw `type || from(20) || to(20) || amount(32) ||
         nonce(8) || r(32) || s(32) || v(1)`. Valid iff the signature is
         `from`'s, `0 < amount <= MAX_TOTAL_DEPOSITS`, `nonce` is the
         account's, `amount <= collateral(from)`, and for a Transfer
         `from != to`, for a Withdraw `to != 0x0` and the Withdrawal leaf
         absent (`second_length == 0`). Effect: `collateral(from) -=
         amount`, `nonce(from) += 1`, then `collateral(to) += amount`
         (Transfer) or the Withdrawal leaf becomes `word(to) ||
         word(amount)` (Withdraw).
    @param sender_head The sender's account.
    @param second_head The recipient's account (Transfer to another account).
    @param second_length The length of the second key's value (0 = absent).
    @return bool Whether it applies.
    @return Bytes[64] The new Account(from) value.
    @return Bytes[64] The new value of the second key.
    """
    sender: address = txdata.word_address(extract32(tx_data, 1, output_type=uint256))
    to: address = txdata.word_address(extract32(tx_data, 21, output_type=uint256))
    amount: uint256 = extract32(tx_data, 41, output_type=uint256)
    tx_nonce: uint256 = txdata.word_uint(extract32(tx_data, 73, output_type=uint256), 8)
    is_transfer: bool = tx_type == txdata.TYPE_TRANSFER

    if amount == 0 or amount > MAX_TOTAL_DEPOSITS or tx_nonce != sender_head.nonce:
        return False, b"", b""
    if convert(amount, int256) > sender_head.collateral:
        return False, b"", b""
    if is_transfer and to == sender:
        return False, b"", b""
    # a payout to the zero address would lock the funds on L1 (protocol.md section 3)
    if not is_transfer and (to == empty(address) or second_length != 0):
        return False, b"", b""
    typehash: bytes32 = eip712.TRANSFER_TYPEHASH
    if not is_transfer:
        typehash = eip712.WITHDRAW_TYPEHASH
    digest: bytes32 = eip712.digest(ROLLUP, keccak256(abi_encode(typehash, sender, to, amount, tx_nonce)))
    r: uint256 = extract32(tx_data, 81, output_type=uint256)
    s: uint256 = extract32(tx_data, 113, output_type=uint256)
    v: uint256 = extract32(tx_data, 114, output_type=uint256) & 255
    if not eip712.signed_by(digest, r, s, v, sender):
        return False, b"", b""

    debited: Bytes[64] = accounts.encode_head(sender_head.collateral - convert(amount, int256), sender_head.nonce + 1)
    if is_transfer:
        return True, debited, accounts.encode_head(second_head.collateral + convert(amount, int256), second_head.nonce)
    return True, debited, abi_encode(to, amount)


@internal
@pure
def _read_word(data: Bytes[MAX_VALUE_BYTES]) -> uint256:
    """
    @dev Decodes a one-word value (absent = 0); any other size is a bad witness.
    """
    if len(data) == 0:
        return 0
    assert len(data) == 32, "verifier: bad witness"
    return extract32(data, 0, output_type=uint256)
