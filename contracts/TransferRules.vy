# pragma version ~=0.4.3
"""
@title Transfer Rules
@custom:contract-name TransferRules
@license MIT
@notice The rules of protocol.md section 3 for the transactions that
        move collateral, consume the L1 queue or cancel an order:
        Deposit, Transfer, Withdraw, L1Message (with its SetMarket and
        SetCommittee payloads), Cancel and ForcedTx (a Transfer,
        Withdraw or Cancel forced through the L1 queue). The FraudVerifier hands
        `execute` the values of the witnesses of one transaction;
        `execute` returns the keys the transaction touches (repeats
        removed), whether it applies, and the new value of each key
        (section 5).
@dev `execute` is a view over its arguments and the Bridge's queue: it
     checks no witness (the FraudVerifier does). It reverts with
     "verifier: bad witness" on a value of the wrong shape for its leaf.
     Every account it writes is settled first; a debit from an account
     with positions needs fresh prices and `equity >= imr` after it.
"""

import accounts
import eip712
import margin
import markets
import orders
import state_keys
import txdata


# @dev The Bridge: the L1 queue a Deposit, L1Message or ForcedTx must match.
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


# @dev An L1Message is `type || queue_index(8) || payload` with a payload of one byte or more.
L1_MESSAGE_HEADER_BYTES: constant(uint256) = 9


# @dev The middle word of a message's queue hash (no address: a message never matches a deposit).
MESSAGE_TAG: constant(uint256) = max_value(uint256)


# @dev The middle word of a forced transaction's queue hash (neither an address nor MESSAGE_TAG).
FORCED_TAG: constant(uint256) = max_value(uint256) - 1


# @dev Governance payload kinds and layouts (protocol.md section 3, L1Message).
MSG_SET_MARKET: constant(uint256) = 1
MSG_SET_COMMITTEE: constant(uint256) = 2
SET_MARKET_PAYLOAD_BYTES: constant(uint256) = 53
SET_COMMITTEE_HEADER_BYTES: constant(uint256) = 3


# @dev Protocol bounds of markets, fees and the oracle committee.
BPS: constant(uint256) = 10000
MAX_FEE_BPS: constant(int256) = 1000
MAX_MARKETS: constant(uint256) = 16
MAX_COMMITTEE: constant(uint256) = 15
MAX_PRICE_SIGNATURES: constant(uint256) = 11


MASK160: constant(uint256) = 2**160 - 1


# STORAGE #


# @dev The Rollup contract: the EIP-712 `verifyingContract`.
ROLLUP: public(immutable(address))


# @dev The Bridge contract, whose `queue_hash` a Deposit, L1Message or ForcedTx must match.
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
) -> (DynArray[bytes32, MAX_WITNESSES], bool, DynArray[bytes32, MAX_WITNESSES]):
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
    @return DynArray[bytes32, 12] When it applies, `keccak` of the new
            value of each key (of the old one for a key it leaves unchanged).
    @dev Gas: `values` is never passed whole to a helper (each copy of it
         is 25 KB of memory); helpers take decoded fields.
    """
    size: uint256 = len(tx_data)
    if size == 0:
        return [], False, []
    tx_type: uint256 = convert(slice(tx_data, 0, 1), uint256)
    keys: DynArray[bytes32, MAX_WITNESSES] = []
    if tx_type == txdata.TYPE_DEPOSIT and size == txdata.DEPOSIT_LENGTH:
        keys = [
            state_keys.GLOBAL_KEY,
            state_keys.account_key(txdata.word_address(extract32(tx_data, 9, output_type=uint256))),
            state_keys.MARKETS_KEY,
        ]
    elif size == txdata.SIGNED_LENGTH and (
        tx_type == txdata.TYPE_TRANSFER or tx_type == txdata.TYPE_WITHDRAW
    ):
        keys = self._signed_keys(tx_type, tx_data)
    elif tx_type == txdata.TYPE_L1_MESSAGE and size > L1_MESSAGE_HEADER_BYTES:
        keys = [state_keys.GLOBAL_KEY, state_keys.MARKETS_KEY, state_keys.ORACLE_KEY]
    elif tx_type == txdata.TYPE_FORCED and size > txdata.FORCED_HEADER_BYTES:
        # Global, then the inner Transfer's, Withdraw's or Cancel's keys (none for any other inner
        # bytes).
        keys = [state_keys.GLOBAL_KEY]
        inner_type: uint256 = convert(slice(tx_data, txdata.FORCED_HEADER_BYTES, 1), uint256)
        if size == txdata.FORCED_HEADER_BYTES + txdata.SIGNED_LENGTH and (
            inner_type == txdata.TYPE_TRANSFER or inner_type == txdata.TYPE_WITHDRAW
        ):
            inner_keys: DynArray[bytes32, MAX_WITNESSES] = self._signed_keys(
                inner_type, slice(tx_data, txdata.FORCED_HEADER_BYTES, txdata.SIGNED_LENGTH)
            )
            for key: bytes32 in inner_keys:
                keys.append(key)
        elif size == txdata.FORCED_HEADER_BYTES + txdata.CANCEL_LENGTH and inner_type == txdata.TYPE_CANCEL:
            keys.append(self._order_key(tx_data, txdata.FORCED_HEADER_BYTES))
    elif tx_type == txdata.TYPE_CANCEL and size == txdata.CANCEL_LENGTH:
        keys = [self._order_key(tx_data, 0)]
    else:
        return [], False, []
    if len(values) != len(keys):
        return keys, False, []

    applies: bool = False
    if tx_type == txdata.TYPE_CANCEL:
        new_order: Bytes[64] = b""
        applies, new_order = self._cancel(tx_data, 0, values[0])
        if not applies:
            return keys, False, []
        return keys, True, [keccak256(new_order)]

    first: Bytes[MAX_VALUE_BYTES] = b""
    if tx_type == txdata.TYPE_FORCED:
        applies, first = self._consume_entry(tx_data, FORCED_TAG, self._read_word(values[0]), queue_end)
        if not applies:
            return keys, False, []
        return keys, True, self._forced(tx_data, keccak256(first), values, len(keys), l2_time)

    mk: Bytes[MAX_VALUE_BYTES] = values[len(keys) - 1]
    if tx_type == txdata.TYPE_L1_MESSAGE:
        mk = values[1]
    n: uint256 = markets.count(mk)

    second: Bytes[MAX_VALUE_BYTES] = b""
    if tx_type == txdata.TYPE_DEPOSIT:
        applies, first, second = self._deposit(
            tx_data, self._read_word(values[0]), accounts.decode(values[1]), mk, queue_end
        )
        if not applies:
            return keys, False, []
        return keys, True, [keccak256(first), keccak256(second), keccak256(mk)]
    if tx_type == txdata.TYPE_L1_MESSAGE:
        applies, first = self._consume_entry(tx_data, MESSAGE_TAG, self._read_word(values[0]), queue_end)
        if not applies:
            return keys, False, []
        new_markets: Bytes[MAX_VALUE_BYTES] = mk
        new_oracle: Bytes[MAX_VALUE_BYTES] = values[2]
        kind: uint256 = convert(slice(tx_data, L1_MESSAGE_HEADER_BYTES, 1), uint256)
        valid: bool = False
        if kind == MSG_SET_MARKET:
            valid, second = self._set_market(tx_data, mk, n)
            if valid:
                new_markets = second
        elif kind == MSG_SET_COMMITTEE:
            valid, second = self._set_committee(tx_data)
            if valid:
                new_oracle = second
        return keys, True, [keccak256(first), keccak256(new_markets), keccak256(new_oracle)]

    # Transfer or Withdraw: keys are Account(from), then Account(to) or
    # Withdrawal(from, nonce) (none for a Transfer to oneself), then Markets.
    h0: bytes32 = empty(bytes32)
    h1: bytes32 = empty(bytes32)
    applies, h0, h1 = self._signed(tx_type, tx_data, values[0], values[1], mk, l2_time)
    if not applies:
        return keys, False, []
    return keys, True, [h0, h1, keccak256(mk)]


@internal
@view
def _forced(
    tx_data: Bytes[MAX_TX_BYTES],
    global_hash: bytes32,
    values: DynArray[Bytes[MAX_VALUE_BYTES], MAX_WITNESSES],
    n: uint256,
    l2_time: uint256,
) -> DynArray[bytes32, MAX_WITNESSES]:
    """
    @dev The new value hashes of a ForcedTx `type || queue_index(8) ||
         tx` whose queue entry is consumed (`global_hash`): its `n - 1`
         inner keys change as the inner Transfer, Withdraw or Cancel says
         when it applies; otherwise (no inner keys: the bytes are none of
         the three; or it breaks a rule) they keep their values.
    @dev `values` is passed whole once, only on this path (a forced
         transaction is rare).
    """
    hashes: DynArray[bytes32, MAX_WITNESSES] = [global_hash]
    if n == 1:
        return hashes
    applies: bool = False
    if convert(slice(tx_data, txdata.FORCED_HEADER_BYTES, 1), uint256) == txdata.TYPE_CANCEL:
        new_order: Bytes[64] = b""
        applies, new_order = self._cancel(tx_data, txdata.FORCED_HEADER_BYTES, values[1])
        if applies:
            return [global_hash, keccak256(new_order)]
        return [global_hash, keccak256(values[1])]
    inner: Bytes[MAX_TX_BYTES] = slice(tx_data, txdata.FORCED_HEADER_BYTES, txdata.SIGNED_LENGTH)
    mk: Bytes[MAX_VALUE_BYTES] = values[n - 1]
    markets.count(mk)  # the shape check every Transfer and Withdraw makes
    h0: bytes32 = empty(bytes32)
    h1: bytes32 = empty(bytes32)
    applies, h0, h1 = self._signed(
        convert(slice(inner, 0, 1), uint256), inner, values[1], values[2], mk, l2_time
    )
    if applies:
        return [global_hash, h0, h1, keccak256(mk)]
    for j: uint256 in range(1, n, bound=MAX_WITNESSES):
        hashes.append(keccak256(values[j]))
    return hashes


@internal
@view
def _signed(
    tx_type: uint256,
    tx_data: Bytes[MAX_TX_BYTES],
    sender_value: Bytes[MAX_VALUE_BYTES],
    second: Bytes[MAX_VALUE_BYTES],
    mk: Bytes[MAX_VALUE_BYTES],
    l2_time: uint256,
) -> (bool, bytes32, bytes32):
    """
    @dev A Transfer or Withdraw (`tx_data` is exactly the 146-byte
         transaction) on the values of Account(from), then Account(to) or
         Withdrawal(from, nonce) (`second`; for a Transfer to oneself it is
         not read: the transfer is invalid), and Markets.
    @return bool Whether it applies.
    @return bytes32 `keccak` of the new Account(from) value.
    @return bytes32 `keccak` of the new Account(to) or Withdrawal value.
    """
    sender: address = txdata.word_address(extract32(tx_data, 1, output_type=uint256))
    to: address = txdata.word_address(extract32(tx_data, 21, output_type=uint256))
    is_transfer: bool = tx_type == txdata.TYPE_TRANSFER
    if is_transfer and to == sender:
        return False, empty(bytes32), empty(bytes32)
    recipient: accounts.Account = empty(accounts.Account)
    if is_transfer:
        recipient = accounts.decode(second)
    else:
        assert len(second) == 0 or len(second) == 64, "verifier: bad witness"
        if len(second) != 0:
            return False, empty(bytes32), empty(bytes32)  # the Withdrawal leaf exists
        if to == empty(address):
            # a payout to the zero address would lock the funds on L1
            return False, empty(bytes32), empty(bytes32)
    applies: bool = False
    debited: accounts.Account = empty(accounts.Account)
    applies, debited = self._debit(tx_type, tx_data, accounts.decode(sender_value), mk, l2_time)
    if not applies:
        return False, empty(bytes32), empty(bytes32)
    amount: uint256 = extract32(tx_data, 41, output_type=uint256)
    if is_transfer:
        recipient = margin.settle(recipient, mk)
        recipient.collateral += convert(amount, int256)
        return True, keccak256(accounts.encode(debited)), keccak256(accounts.encode(recipient))
    return True, keccak256(accounts.encode(debited)), keccak256(abi_encode(to, amount))


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
@view
def _queue_entry(index: uint256, next_index: uint256, queue_end: uint256, entry_hash: bytes32) -> bool:
    """
    @dev Whether queue entry `index` is the next one, inside the batch
         (`index < queue_end`), and the Bridge's `queue_hash(index)`.
    """
    if index != next_index or index >= queue_end:
        return False
    return entry_hash == staticcall BRIDGE.queue_hash(index)


@internal
@view
def _deposit(
    tx_data: Bytes[MAX_TX_BYTES],
    next_index: uint256,
    recipient: accounts.Account,
    mk: Bytes[MAX_VALUE_BYTES],
    queue_end: uint256,
) -> (bool, Bytes[MAX_VALUE_BYTES], Bytes[MAX_VALUE_BYTES]):
    """
    @dev Deposit `type || queue_index(8) || to(20) || amount(32)`; touches
         Global, Account(to), Markets. Valid iff `queue_index` is the next
         queue index, below `queue_end`, and its hash is the Bridge's
         `queue_hash(queue_index)`. Effect: `next_queue_index += 1`,
         settle `to`, `collateral(to) += amount`.
    @return bool Whether it applies.
    @return Bytes[2048] The new Global value.
    @return Bytes[2048] The new Account(to) value.
    """
    queue_index: uint256 = txdata.word_uint(extract32(tx_data, 1, output_type=uint256), 8)
    to: address = txdata.word_address(extract32(tx_data, 9, output_type=uint256))
    amount: uint256 = extract32(tx_data, 29, output_type=uint256)
    entry_hash: bytes32 = keccak256(abi_encode(queue_index, to, amount))
    if not self._queue_entry(queue_index, next_index, queue_end, entry_hash):
        return False, b"", b""
    # The Bridge's cap on all deposits ever keeps `amount` below 2**128.
    credited: accounts.Account = margin.settle(recipient, mk)
    credited.collateral += convert(amount, int256)
    return True, abi_encode(next_index + 1), accounts.encode(credited)


@internal
@view
def _debit(
    tx_type: uint256,
    tx_data: Bytes[MAX_TX_BYTES],
    a: accounts.Account,
    mk: Bytes[MAX_VALUE_BYTES],
    l2_time: uint256,
) -> (bool, accounts.Account):
    """
    @dev The sender's side of a Transfer / Withdraw `type || from(20) ||
         to(20) || amount(32) || nonce(8) || r(32) || s(32) || v(1)`:
         valid iff the signature is `from`'s, `from != to` for a Transfer,
         `0 < amount <= MAX_TOTAL_DEPOSITS`, `nonce` is the account's and,
         after settling, `amount <= collateral` and, for an account with
         positions, `all_fresh` and `equity >= imr` after the debit.
         Effect: `collateral -= amount`, `nonce += 1`.
    @param a The sender's account.
    @return bool Whether the sender's side holds.
    @return accounts.Account The sender after the debit.
    """
    sender: address = txdata.word_address(extract32(tx_data, 1, output_type=uint256))
    to: address = txdata.word_address(extract32(tx_data, 21, output_type=uint256))
    amount: uint256 = extract32(tx_data, 41, output_type=uint256)
    tx_nonce: uint256 = txdata.word_uint(extract32(tx_data, 73, output_type=uint256), 8)
    if amount == 0 or amount > MAX_TOTAL_DEPOSITS or tx_nonce != a.nonce:
        return False, a
    typehash: bytes32 = eip712.TRANSFER_TYPEHASH
    if tx_type != txdata.TYPE_TRANSFER:
        typehash = eip712.WITHDRAW_TYPEHASH
    digest: bytes32 = eip712.digest(ROLLUP, keccak256(abi_encode(typehash, sender, to, amount, tx_nonce)))
    r: uint256 = extract32(tx_data, 81, output_type=uint256)
    s: uint256 = extract32(tx_data, 113, output_type=uint256)
    v: uint256 = extract32(tx_data, 114, output_type=uint256) & 255
    if not eip712.signed_by(digest, r, s, v, sender):
        return False, a
    debited: accounts.Account = margin.settle(a, mk)
    if convert(amount, int256) > debited.collateral:
        return False, a
    debited.collateral -= convert(amount, int256)
    debited.nonce += 1
    if debited.count != 0:
        if not margin.all_fresh(debited, mk, l2_time):
            return False, a
        equity: int256 = 0
        imr: int256 = 0
        mmr: int256 = 0
        equity, imr, mmr = margin.risk(debited, mk)
        if equity < imr:
            return False, a
    return True, debited


@internal
@view
def _order_key(tx_data: Bytes[MAX_TX_BYTES], at: uint256) -> bytes32:
    """
    @dev The Order key of the Cancel at byte `at` of `tx_data` (0, or
         the inner transaction of a ForcedTx): the order's digest's.
    """
    order: orders.Order = orders.decode(
        extract32(tx_data, at + 1, output_type=uint256), extract32(tx_data, at + 25, output_type=uint256)
    )
    return state_keys.order_key(eip712.digest(ROLLUP, orders.struct_hash(order)))


@internal
@view
def _cancel(tx_data: Bytes[MAX_TX_BYTES], at: uint256, leaf: Bytes[MAX_VALUE_BYTES]) -> (bool, Bytes[64]):
    """
    @dev Cancel `type || order(56) || sig(65)` at byte `at` of `tx_data`
         (0, or the inner transaction of a ForcedTx); touches
         Order(digest). Valid iff the signature is a valid `Cancel`
         signature by the order's trader and the order is not cancelled
         yet. Effect: `cancelled = 1`, `filled` kept.
    @param leaf The Order leaf value.
    @return bool Whether it applies.
    @return Bytes[64] The new Order value.
    """
    filled: uint256 = 0
    cancelled: bool = False
    filled, cancelled = orders.leaf(leaf)
    if cancelled:
        return False, b""
    order: orders.Order = orders.decode(
        extract32(tx_data, at + 1, output_type=uint256), extract32(tx_data, at + 25, output_type=uint256)
    )
    digest: bytes32 = eip712.digest(
        ROLLUP, keccak256(abi_encode(eip712.CANCEL_TYPEHASH, orders.struct_hash(order)))
    )
    r: uint256 = extract32(tx_data, at + 57, output_type=uint256)
    s: uint256 = extract32(tx_data, at + 89, output_type=uint256)
    v: uint256 = extract32(tx_data, at + 90, output_type=uint256) & 255
    if not eip712.signed_by(digest, r, s, v, order.trader):
        return False, b""
    return True, abi_encode(filled, convert(1, uint256))


@internal
@view
def _consume_entry(
    tx_data: Bytes[MAX_TX_BYTES], tag: uint256, next_index: uint256, queue_end: uint256
) -> (bool, Bytes[MAX_VALUE_BYTES]):
    """
    @dev L1Message `type || queue_index(8) || payload` (`tag` is
         MESSAGE_TAG) or ForcedTx `type || queue_index(8) || tx` (`tag` is
         FORCED_TAG): valid iff `queue_index` is the next queue index,
         below `queue_end`, and `keccak(word(queue_index) || word(tag) ||
         keccak(payload or tx))` is the Bridge's `queue_hash(queue_index)`.
         Effect: `next_queue_index += 1` (the payload's or inner
         transaction's effect is separate).
    @return bool Whether it applies.
    @return Bytes[2048] The new Global value.
    """
    # (a message may be shorter than 33 bytes: no word read at offset 1)
    queue_index: uint256 = convert(slice(tx_data, 1, 8), uint256)
    payload_hash: bytes32 = keccak256(
        slice(tx_data, L1_MESSAGE_HEADER_BYTES, len(tx_data) - L1_MESSAGE_HEADER_BYTES)
    )
    entry_hash: bytes32 = keccak256(abi_encode(queue_index, tag, payload_hash))
    if not self._queue_entry(queue_index, next_index, queue_end, entry_hash):
        return False, b""
    return True, abi_encode(next_index + 1)


@internal
@pure
def _set_market(
    tx_data: Bytes[MAX_TX_BYTES], mk: Bytes[MAX_VALUE_BYTES], n: uint256
) -> (bool, Bytes[MAX_VALUE_BYTES]):
    """
    @dev SetMarket payload `0x01 || market(2) || tick_size(8) ||
         lot_size(8) || max_position(8) || imr_bps(2) || mmr_bps(2) ||
         maker_fee_bps(2, signed) || taker_fee_bps(2, signed) ||
         liquidation_penalty_bps(2) || breaker_bps(2) ||
         max_funding_bps(2) || funding_interval(4) || breaker_window(4) ||
         max_oracle_age(4)` (53 bytes, at offset 9 of the transaction).
         Valid iff `market <= n`, `market < MAX_MARKETS`, the sizes and
         durations are positive, `0 < mmr <= imr <= BPS`, `penalty <=
         mmr`, `0 <= taker <= 1000`, `-taker <= maker <= 1000`, `breaker
         <= BPS`, `max_funding <= BPS`. Effect: a new record (market `n`,
         dynamic fields zero) or the parameters replaced (the dynamic
         fields, `breaker_ref_price` included, kept).
    @return bool Whether the payload is valid.
    @return Bytes[2048] The new Markets value.
    """
    if len(tx_data) != L1_MESSAGE_HEADER_BYTES + SET_MARKET_PAYLOAD_BYTES:
        return False, b""
    # The payload is at offset 9: market at 10, tick 12, lot 20, max_position
    # 28, imr 36, mmr 38, maker fee 40, taker fee 42 (the word at 12 ends
    # there), penalty 44, breaker 46, max_funding 48, funding_interval 50,
    # breaker_window 54, max_oracle_age 58 (the word at 30 ends there).
    m: uint256 = extract32(tx_data, 10, output_type=uint256) >> 240
    w: uint256 = extract32(tx_data, 12, output_type=uint256)
    tick_size: uint256 = w >> 192
    lot_size: uint256 = (w >> 128) & markets.MASK64
    max_position: uint256 = (w >> 64) & markets.MASK64
    imr_bps: uint256 = (w >> 48) & markets.MASK16
    mmr_bps: uint256 = (w >> 32) & markets.MASK16
    maker_fee_bps: int256 = self._int16((w >> 16) & markets.MASK16)
    taker_fee_bps: int256 = self._int16(w & markets.MASK16)
    t: uint256 = extract32(tx_data, 30, output_type=uint256)
    penalty_bps: uint256 = (t >> 128) & markets.MASK16
    breaker_bps: uint256 = (t >> 112) & markets.MASK16
    max_funding_bps: uint256 = (t >> 96) & markets.MASK16
    funding_interval: uint256 = (t >> 64) & markets.MASK32
    breaker_window: uint256 = (t >> 32) & markets.MASK32
    max_oracle_age: uint256 = t & markets.MASK32
    if m > n or m >= MAX_MARKETS:
        return False, b""
    if (
        tick_size == 0
        or lot_size == 0
        or max_position == 0
        or funding_interval == 0
        or breaker_window == 0
        or max_oracle_age == 0
    ):
        return False, b""
    if mmr_bps == 0 or mmr_bps > imr_bps or imr_bps > BPS or penalty_bps > mmr_bps:
        return False, b""
    if taker_fee_bps < 0 or taker_fee_bps > MAX_FEE_BPS:
        return False, b""
    if maker_fee_bps < -taker_fee_bps or maker_fee_bps > MAX_FEE_BPS:
        return False, b""
    if breaker_bps > BPS or max_funding_bps > BPS:
        return False, b""
    record: markets.Market = empty(markets.Market)
    if m < n:
        record = markets.record(mk, m)
    record.tick_size = tick_size
    record.lot_size = lot_size
    record.max_position = max_position
    record.imr_bps = imr_bps
    record.mmr_bps = mmr_bps
    record.maker_fee_bps = maker_fee_bps
    record.taker_fee_bps = taker_fee_bps
    record.liquidation_penalty_bps = penalty_bps
    record.breaker_bps = breaker_bps
    record.max_funding_bps = max_funding_bps
    record.funding_interval = funding_interval
    record.breaker_window = breaker_window
    record.max_oracle_age = max_oracle_age
    return True, markets.write(mk, m, record)


@internal
@pure
def _set_committee(tx_data: Bytes[MAX_TX_BYTES]) -> (bool, Bytes[MAX_VALUE_BYTES]):
    """
    @dev SetCommittee payload `0x02 || threshold(1) || count(1) || count
         x member(20)` (at offset 9 of the transaction). Valid iff `1 <=
         threshold <= count <= MAX_COMMITTEE`, `threshold <=
         MAX_PRICE_SIGNATURES`, members non-zero and distinct. Effect: the
         Oracle leaf becomes `word(threshold) || word(member)...`.
    @return bool Whether the payload is valid.
    @return Bytes[2048] The new Oracle value.
    """
    size: uint256 = len(tx_data)
    at: uint256 = L1_MESSAGE_HEADER_BYTES + SET_COMMITTEE_HEADER_BYTES
    if size < at:
        return False, b""
    head: uint256 = convert(slice(tx_data, L1_MESSAGE_HEADER_BYTES + 1, 2), uint256)
    threshold: uint256 = head >> 8
    count: uint256 = head & 255
    if size != at + 20 * count:
        return False, b""
    if threshold == 0 or threshold > count or count > MAX_COMMITTEE or threshold > MAX_PRICE_SIGNATURES:
        return False, b""
    members: address[MAX_COMMITTEE] = empty(address[MAX_COMMITTEE])
    for i: uint256 in range(count, bound=MAX_COMMITTEE):
        # the word ending at the member's last byte (the last member ends the transaction)
        member: address = convert(
            convert(extract32(tx_data, at + 20 * i - 12, output_type=uint256) & MASK160, uint160), address
        )
        if member == empty(address):
            return False, b""
        for j: uint256 in range(i, bound=MAX_COMMITTEE):
            if members[j] == member:
                return False, b""
        members[i] = member
    return True, slice(abi_encode(threshold, members), 0, 32 * (count + 1))


@internal
@pure
def _int16(field: uint256) -> int256:
    """
    @dev Returns a 16-bit two's complement field as a signed integer.
    """
    if field >= 2**15:
        return convert(field, int256) - 2**16
    return convert(field, int256)


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
