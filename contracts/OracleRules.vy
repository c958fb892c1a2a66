# pragma version ~=0.4.3
"""
@title Oracle Rules
@custom:contract-name OracleRules
@license MIT
@notice The rules of protocol.md section 3 ("Oracle and funding") for
        OracleUpdate and Funding, executed for the FraudVerifier (section
        5): `execute` returns the keys a transaction touches, whether it
        applies, and the new value of each key.
@dev `execute` is a view over its arguments: it checks no witness (the
     FraudVerifier does). It reverts with "verifier: bad witness" on a
     value of the wrong shape for its leaf (a Markets value that is not
     128-byte records, an Oracle value that is not whole words).
"""

import eip712
import markets
import state_keys
import txdata


# @dev Longest encoded transaction.
MAX_TX_BYTES: constant(uint256) = txdata.MAX_TX_BYTES


# @dev Most state leaves one transaction touches.
MAX_WITNESSES: constant(uint256) = 12


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


# @dev Bounds of an OracleUpdate's price list and its layout
#      (`type || market(2) || count(1) || count x (mark(8) || index(8) ||
#      timestamp(8) || sig(65))`).
MAX_PRICE_SIGNATURES: constant(uint256) = 11
ORACLE_HEADER_BYTES: constant(uint256) = 4
PRICE_ENTRY_BYTES: constant(uint256) = 89


# @dev Most members an Oracle value can name (`word(threshold)` then one word each).
MAX_MEMBERS: constant(uint256) = MAX_VALUE_BYTES // 32 - 1


# @dev Basis points in one whole.
BPS: constant(uint256) = 10000


# @dev The range of the 16-byte `funding_index` field.
INT128_MIN: constant(int256) = -(2**127)
INT128_MAX: constant(int256) = 2**127 - 1


MASK64: constant(uint256) = 2**64 - 1
MASK160: constant(uint256) = 2**160 - 1


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
) -> (DynArray[bytes32, MAX_WITNESSES], bool, DynArray[bytes32, MAX_WITNESSES]):
    """
    @dev Executes one OracleUpdate or Funding on the values of its touched
         keys (protocol.md sections 3 and 5).
    @param tx_data The encoded transaction.
    @param values The value of each touched key before the transaction
           (empty = absent), in touched-key order.
    @param queue_end The batch's `queue_end` (unused by these types).
    @param l2_time The batch's `l2_time`.
    @return DynArray[bytes32, 12] The touched keys (none if the
            transaction does not decode): Oracle and Markets for an
            OracleUpdate, Markets for a Funding.
    @return bool Whether the transaction applies.
    @return DynArray[bytes32, 12] When it applies, `keccak` of the new
            value of each key (of the old one for a key it leaves unchanged).
    """
    size: uint256 = len(tx_data)
    if size == 0:
        return [], False, []
    tx_type: uint256 = convert(slice(tx_data, 0, 1), uint256)
    applies: bool = False
    new_markets: Bytes[MAX_VALUE_BYTES] = b""
    if tx_type == txdata.TYPE_FUNDING and size == txdata.FUNDING_LENGTH:
        if len(values) != 1:
            return [state_keys.MARKETS_KEY], False, []
        applies, new_markets = self._funding(
            convert(slice(tx_data, 1, 2), uint256), convert(slice(tx_data, 3, 8), uint256), values[0], l2_time
        )
        if not applies:
            return [state_keys.MARKETS_KEY], False, []
        return [state_keys.MARKETS_KEY], True, [keccak256(new_markets)]
    if tx_type != txdata.TYPE_ORACLE_UPDATE or size < ORACLE_HEADER_BYTES:
        return [], False, []
    count: uint256 = convert(slice(tx_data, 3, 1), uint256)
    if count == 0 or count > MAX_PRICE_SIGNATURES or size != ORACLE_HEADER_BYTES + PRICE_ENTRY_BYTES * count:
        return [], False, []
    if len(values) != 2:
        return [state_keys.ORACLE_KEY, state_keys.MARKETS_KEY], False, []
    applies, new_markets = self._oracle_update(tx_data, count, values[0], values[1], l2_time)
    if not applies:
        return [state_keys.ORACLE_KEY, state_keys.MARKETS_KEY], False, []
    return (
        [state_keys.ORACLE_KEY, state_keys.MARKETS_KEY],
        True,
        [keccak256(values[0]), keccak256(new_markets)],
    )


@internal
@view
def _oracle_update(
    tx_data: Bytes[MAX_TX_BYTES],
    count: uint256,
    committee: Bytes[MAX_VALUE_BYTES],
    mk: Bytes[MAX_VALUE_BYTES],
    now: uint256,
) -> (bool, Bytes[MAX_VALUE_BYTES]):
    """
    @dev OracleUpdate: valid iff the market is listed, the Oracle leaf
         holds a committee, `count >= threshold`, every price is signed by
         a committee member (`Price(market, mark, index, timestamp)`), the
         signers are distinct, every `mark > 0`, `index > 0`, `timestamp
         <= now`, and the lower median `t` of the timestamps is after the
         market's `oracle_time`. Effect: the circuit breaker's window and
         halt, then `mark_price`, `index_price` (lower medians),
         `oracle_time = t`, and `last_funding_time = t` if funding had not
         started.
    @param count The number of prices (1 to `MAX_PRICE_SIGNATURES`).
    @param committee The Oracle value (`word(threshold) || word(member)...`).
    @param mk The Markets value.
    @return bool Whether it applies.
    @return Bytes[2048] The new Markets value.
    """
    n: uint256 = markets.count(mk)
    committee_bytes: uint256 = len(committee)
    assert committee_bytes % 32 == 0, "verifier: bad witness"
    market: uint256 = extract32(tx_data, 1, output_type=uint256) >> 240
    if market >= n or committee_bytes == 0:
        return False, b""
    if count < extract32(committee, 0, output_type=uint256):
        return False, b""
    members: uint256 = committee_bytes // 32 - 1
    domain: bytes32 = eip712.domain_separator(ROLLUP)
    marks: uint256[MAX_PRICE_SIGNATURES] = empty(uint256[MAX_PRICE_SIGNATURES])
    indexes: uint256[MAX_PRICE_SIGNATURES] = empty(uint256[MAX_PRICE_SIGNATURES])
    times: uint256[MAX_PRICE_SIGNATURES] = empty(uint256[MAX_PRICE_SIGNATURES])
    signers: address[MAX_PRICE_SIGNATURES] = empty(address[MAX_PRICE_SIGNATURES])
    for i: uint256 in range(count, bound=MAX_PRICE_SIGNATURES):
        at: uint256 = ORACLE_HEADER_BYTES + PRICE_ENTRY_BYTES * i
        w: uint256 = extract32(tx_data, at, output_type=uint256)
        mark: uint256 = w >> 192
        index: uint256 = (w >> 128) & MASK64
        timestamp: uint256 = (w >> 64) & MASK64
        if mark == 0 or index == 0 or timestamp > now:
            return False, b""
        digest: bytes32 = keccak256(
            concat(
                b"\x19\x01",
                domain,
                keccak256(abi_encode(eip712.PRICE_TYPEHASH, market, mark, index, timestamp)),
            )
        )
        signer: address = eip712.recover(
            digest,
            extract32(tx_data, at + 24, output_type=uint256),
            extract32(tx_data, at + 56, output_type=uint256),
            extract32(tx_data, at + 57, output_type=uint256) & 255,
        )
        if signer == empty(address):
            return False, b""
        member: bool = False
        for j: uint256 in range(members, bound=MAX_MEMBERS):
            if extract32(committee, 32 + 32 * j, output_type=uint256) & MASK160 == convert(signer, uint256):
                member = True
                break
        if not member:
            return False, b""
        for j: uint256 in range(i, bound=MAX_PRICE_SIGNATURES):
            if signers[j] == signer:
                return False, b""
        signers[i] = signer
        marks[i] = mark
        indexes[i] = index
        times[i] = timestamp
    t: uint256 = self._lower_median(times, count)
    record: markets.Market = markets.record(mk, market)
    if t <= record.oracle_time:
        return False, b""
    mark_median: uint256 = self._lower_median(marks, count)
    if record.breaker_bps != 0:
        if record.breaker_ref_time == 0 or t >= record.breaker_ref_time + record.breaker_window:
            record.breaker_ref_price = record.mark_price
            if record.mark_price == 0:
                record.breaker_ref_price = mark_median
            record.breaker_ref_time = t
        move: uint256 = 0
        if mark_median > record.breaker_ref_price:
            move = mark_median - record.breaker_ref_price
        else:
            move = record.breaker_ref_price - mark_median
        if move * BPS > record.breaker_bps * record.breaker_ref_price:
            record.halted_until = t + record.breaker_window
    record.mark_price = mark_median
    record.index_price = self._lower_median(indexes, count)
    record.oracle_time = t
    if record.last_funding_time == 0:
        record.last_funding_time = t
    return True, markets.write(mk, market, record)


@internal
@pure
def _lower_median(v: uint256[MAX_PRICE_SIGNATURES], count: uint256) -> uint256:
    """
    @dev Returns element `(count - 1) // 2` of the first `count` values ordered.
    """
    ordered: uint256[MAX_PRICE_SIGNATURES] = v
    for i: uint256 in range(1, MAX_PRICE_SIGNATURES):
        if i >= count:
            break
        x: uint256 = ordered[i]
        j: uint256 = i
        for _: uint256 in range(MAX_PRICE_SIGNATURES):
            if j == 0 or ordered[j - 1] <= x:
                break
            ordered[j] = ordered[j - 1]
            j -= 1
        ordered[j] = x
    return ordered[(count - 1) // 2]


@internal
@pure
def _funding(
    market: uint256, since: uint256, mk: Bytes[MAX_VALUE_BYTES], now: uint256
) -> (bool, Bytes[MAX_VALUE_BYTES]):
    """
    @dev Funding `type || market(2) || since(8)`; touches Markets. Valid iff
         the market is listed, `since == last_funding_time` (the step names
         the period it settles from, so a replayed step is a no-op), the
         price is fresh, `last_funding_time > 0` and `now >=
         last_funding_time + funding_interval`. Effect: `periods = (now -
         last_funding_time) // funding_interval`, `cap = index_price *
         max_funding_bps // BPS`, `premium = clamp(mark_price -
         index_price, -cap, cap)`, `funding_index += premium * periods`
         (invalid if it leaves int128), `last_funding_time += periods *
         funding_interval`.
    @return bool Whether it applies.
    @return Bytes[2048] The new Markets value.
    """
    if market >= markets.count(mk):
        return False, b""
    record: markets.Market = markets.record(mk, market)
    if since != record.last_funding_time:
        return False, b""
    if record.oracle_time == 0 or now > record.oracle_time + record.max_oracle_age:
        return False, b""
    if record.last_funding_time == 0 or now < record.last_funding_time + record.funding_interval:
        return False, b""
    periods: uint256 = (now - record.last_funding_time) // record.funding_interval
    cap: int256 = convert(record.index_price * record.max_funding_bps // BPS, int256)
    premium: int256 = convert(record.mark_price, int256) - convert(record.index_price, int256)
    premium = max(-cap, min(cap, premium))
    index: int256 = record.funding_index + premium * convert(periods, int256)
    if index < INT128_MIN or index > INT128_MAX:
        return False, b""
    record.funding_index = index
    record.last_funding_time += periods * record.funding_interval
    return True, markets.write(mk, market, record)
