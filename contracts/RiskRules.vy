# pragma version ~=0.4.3
"""
@title Risk Rules
@custom:contract-name RiskRules
@license MIT
@notice The rules of protocol.md section 3 ("Risk") for Liquidate and
        Deleverage, executed for the FraudVerifier (section 5): `execute`
        returns the keys a transaction touches (repeats removed), whether
        it applies, and the new value of each key.
@dev `execute` is a view over its arguments: it checks no witness (the
     FraudVerifier does). It reverts with "verifier: bad witness" on a
     value of the wrong shape for its leaf. A liquidation's shortfall is
     paid by the Insurance fund; what it cannot pay is taken from one
     opposite position at the bankruptcy price (auto-deleveraging).
"""

import accounts
import eip712
import margin
import markets
import state_keys
import txdata


# @dev Longest encoded transaction.
MAX_TX_BYTES: constant(uint256) = txdata.MAX_TX_BYTES


# @dev Most state leaves one transaction touches.
MAX_WITNESSES: constant(uint256) = 12


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


# @dev Basis points in one whole.
BPS: constant(uint256) = 10000


MASK16: constant(uint256) = 2**16 - 1
MASK64: constant(uint256) = 2**64 - 1
MASK80: constant(uint256) = 2**80 - 1
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
    @dev Executes one Liquidate or Deleverage on the values of its touched
         keys (protocol.md sections 3 and 5).
    @param tx_data The encoded transaction.
    @param values The value of each touched key before the transaction
           (empty = absent), in touched-key order.
    @param queue_end The batch's `queue_end` (unused by these types).
    @param l2_time The batch's `l2_time`.
    @return DynArray[bytes32, 12] The touched keys, repeats removed (none
            if the transaction does not decode).
    @return bool Whether the transaction applies.
    @return DynArray[bytes32, 12] When it applies, `keccak` of the new
            value of each key (of the old one for a key it leaves unchanged).
    """
    size: uint256 = len(tx_data)
    if size == 0:
        return [], False, []
    tx_type: uint256 = convert(slice(tx_data, 0, 1), uint256)
    first: address = empty(address)
    second: address = empty(address)
    tail: uint256 = 0
    if tx_type == txdata.TYPE_LIQUIDATE and size == txdata.LIQUIDATE_LENGTH:
        first = txdata.word_address(extract32(tx_data, 1, output_type=uint256))
        second = txdata.word_address(extract32(tx_data, 21, output_type=uint256))
    elif tx_type == txdata.TYPE_DELEVERAGE and size == txdata.DELEVERAGE_LENGTH:
        first = txdata.word_address(extract32(tx_data, 1, output_type=uint256))
        # the last word: the counterparty from its byte 2, then market(2) and nonce(8)
        tail = extract32(tx_data, 19, output_type=uint256)
        second = convert(convert((tail >> 80) & MASK160, uint160), address)
    else:
        return [], False, []
    # Account(first), Account(second) (a repeat when they are one account), Markets, Insurance.
    keys: DynArray[bytes32, MAX_WITNESSES] = [state_keys.account_key(first)]
    if second != first:
        keys.append(state_keys.account_key(second))
    keys.append(state_keys.MARKETS_KEY)
    keys.append(state_keys.INSURANCE_KEY)
    if len(values) != len(keys) or second == first:
        return keys, False, []

    mk: Bytes[MAX_VALUE_BYTES] = values[2]
    markets.count(mk)
    insurance: uint256 = 0
    if len(values[3]) != 0:
        assert len(values[3]) == 32, "verifier: bad witness"
        insurance = extract32(values[3], 0, output_type=uint256)
    ok: bool = False
    a: accounts.Account = empty(accounts.Account)
    b: accounts.Account = empty(accounts.Account)
    new_insurance: Bytes[MAX_VALUE_BYTES] = values[3]
    if tx_type == txdata.TYPE_LIQUIDATE:
        if not self._liquidation_signed(tx_data, first, second):
            return keys, False, []
        ok, a, b, insurance = self._liquidate(
            extract32(tx_data, 41, output_type=uint256),
            accounts.decode(values[0]),
            accounts.decode(values[1]),
            mk,
            insurance,
            l2_time,
        )
        new_insurance = abi_encode(insurance)
    else:
        ok, a, b = self._deleverage(
            tail & MASK80,
            accounts.decode(values[0]),
            accounts.decode(values[1]),
            mk,
            insurance,
            l2_time,
        )
        if insurance != 0:
            new_insurance = abi_encode(convert(0, uint256))
    if not ok:
        return keys, False, []
    return keys, True, [
        keccak256(accounts.encode(a)),
        keccak256(accounts.encode(b)),
        keccak256(mk),
        keccak256(new_insurance),
    ]


@internal
@view
def _liquidation_signed(tx_data: Bytes[MAX_TX_BYTES], liquidator: address, account: address) -> bool:
    """
    @dev Whether a Liquidate `type || liquidator(20) || account(20) ||
         market(2) || size(8) || nonce(8) || sig(65)` carries the
         liquidator's signature of `Liquidate(liquidator, account, market,
         size, nonce)`.
    """
    w: uint256 = extract32(tx_data, 41, output_type=uint256)
    struct_hash: bytes32 = keccak256(
        abi_encode(
            eip712.LIQUIDATE_TYPEHASH, liquidator, account, w >> 240, (w >> 176) & MASK64, (w >> 112) & MASK64
        )
    )
    return eip712.signed_by(
        eip712.digest(ROLLUP, struct_hash),
        extract32(tx_data, 59, output_type=uint256),
        extract32(tx_data, 91, output_type=uint256),
        extract32(tx_data, 92, output_type=uint256) & 255,
        liquidator,
    )


@internal
@pure
def _liquidate(
    w: uint256,
    liquidator: accounts.Account,
    account: accounts.Account,
    mk: Bytes[MAX_VALUE_BYTES],
    insurance: uint256,
    now: uint256,
) -> (bool, accounts.Account, accounts.Account, uint256):
    """
    @dev Liquidate (signature checked): valid iff `nonce` is the
         liquidator's, the market is listed, `size` is a positive multiple
         of the lot and at most `|s|` of the account's position, and after
         settling both: `all_fresh(account)` and `equity(account) <
         mmr(account)`. Effect: the account closes `size` at the mark and
         pays `ceil(size * mark * liquidation_penalty_bps / BPS)` into
         Insurance; the liquidator takes the size at the mark
         (`max_position`, fresh and `risk_ok` when it increases; no halt
         check); an account left without positions and with negative
         collateral has its debt paid by Insurance (invalid if Insurance
         is short); `nonce(liquidator) += 1`.
    @param w The word at offset 41: market(2), size(8), nonce(8).
    @return bool Whether it applies.
    @return accounts.Account The liquidator after.
    @return accounts.Account The account after.
    @return uint256 The Insurance balance after.
    """
    market: uint256 = w >> 240
    size: uint256 = (w >> 176) & MASK64
    if (w >> 112) & MASK64 != liquidator.nonce or market >= len(mk) // markets.RECORD_BYTES:
        return False, liquidator, account, insurance
    at: uint256 = markets.RECORD_BYTES * market
    w0: uint256 = extract32(mk, at, output_type=uint256)
    w2: uint256 = extract32(mk, at + 64, output_type=uint256)
    w3: uint256 = extract32(mk, at + 96, output_type=uint256)
    if size == 0 or size % ((w2 >> 128) & MASK64) != 0:
        return False, liquidator, account, insurance
    a: accounts.Account = margin.settle(account, mk)
    s: int256 = margin.size_of(a, market)
    if s == 0 or convert(size, int256) > abs(s):
        return False, liquidator, account, insurance
    if not margin.all_fresh(a, mk, now):
        return False, liquidator, account, insurance
    equity: int256 = 0
    imr: int256 = 0
    mmr: int256 = 0
    equity, imr, mmr = margin.risk(a, mk)
    if equity >= mmr:
        return False, liquidator, account, insurance
    mark: uint256 = w0 >> 192
    funding_index: int256 = margin.funding_index(mk, market)
    taken: int256 = convert(size, int256)
    if s < 0:
        taken = -taken
    ok: bool = False
    a, ok = margin.trade(a, market, -taken, convert(mark, int256), funding_index)
    penalty: uint256 = (size * mark * ((w3 >> 176) & MASK16) + BPS - 1) // BPS
    a.collateral -= convert(penalty, int256)
    balance: uint256 = insurance + penalty

    l: accounts.Account = margin.settle(liquidator, mk)
    equity, imr, mmr = margin.risk(l, mk)
    before: int256 = margin.size_of(l, market)
    l, ok = margin.trade(l, market, taken, convert(mark, int256), funding_index)
    if not ok:
        return False, liquidator, account, insurance
    after: int256 = margin.size_of(l, market)
    grew: bool = margin.increases(before, after)
    if grew:
        # max_position and a fresh price; a circuit breaker never stops a liquidation
        if abs(after) > abs(before) and convert(abs(after), uint256) > (w2 >> 64) & MASK64:
            return False, liquidator, account, insurance
        if not margin.fresh(w0, w3, now):
            return False, liquidator, account, insurance
    if not margin.risk_ok(l, mk, grew, equity, mmr):
        return False, liquidator, account, insurance

    if a.count == 0 and a.collateral < 0:
        debt: uint256 = convert(-a.collateral, uint256)
        if balance < debt:
            return False, liquidator, account, insurance
        balance -= debt
        a.collateral = 0
    l.nonce += 1
    return True, l, a, balance


@internal
@pure
def _deleverage(
    w: uint256,
    account: accounts.Account,
    counterparty: accounts.Account,
    mk: Bytes[MAX_VALUE_BYTES],
    insurance: uint256,
    now: uint256,
) -> (bool, accounts.Account, accounts.Account):
    """
    @dev Deleverage `type || account(20) || counterparty(20) ||
         market(2) || nonce(8)`: valid iff `nonce` is the account's, the
         market is listed and, after settling both, fresh; the account's
         only position is in it (size `s`, open notional `N`), `E =
         equity(account) < 0`, `Insurance < -E`, and the counterparty
         holds an opposite position of at least `|s|`. Effect: Insurance is exhausted into the account (`C =
         collateral + Insurance`); the position closes at the bankruptcy
         price `ceil((N - C) / s)` (long) or `(C - N) // |s|` (short,
         invalid if `C - N < 0`) against the counterparty, which must end
         with `equity >= 0`; `nonce(account) += 1`.
    @param w The last 10 bytes of the transaction: market(2), nonce(8).
    @return bool Whether it applies.
    @return accounts.Account The account after.
    @return accounts.Account The counterparty after.
    """
    market: uint256 = w >> 64
    if w & MASK64 != account.nonce or market >= len(mk) // markets.RECORD_BYTES:
        return False, account, counterparty
    a: accounts.Account = margin.settle(account, mk)
    c: accounts.Account = margin.settle(counterparty, mk)
    if not margin.market_fresh(mk, market, now):
        return False, account, counterparty
    if a.count != 1 or a.positions[0].market != market:
        return False, account, counterparty
    s: int256 = a.positions[0].size
    notional: int256 = a.positions[0].open_notional
    equity: int256 = 0
    imr: int256 = 0
    mmr: int256 = 0
    equity, imr, mmr = margin.risk(a, mk)
    # Insurance is below 2**128 in an honest tree (fees and penalties of bounded trades).
    if equity >= 0 or convert(insurance, int256) >= -equity:
        return False, account, counterparty
    sc: int256 = margin.size_of(c, market)
    if sc == 0 or (sc > 0) == (s > 0) or abs(sc) < abs(s):
        return False, account, counterparty
    collateral: int256 = a.collateral + convert(insurance, int256)
    price: int256 = 0
    if s > 0:
        # N - C > s * mark >= 0 here (E < 0 and Insurance < -E): a positive dividend.
        price = (notional - collateral + s - 1) // s
    else:
        if collateral - notional < 0:
            return False, account, counterparty
        price = (collateral - notional) // -s
    a.collateral = collateral
    funding_index: int256 = margin.funding_index(mk, market)
    ok: bool = False
    a, ok = margin.trade(a, market, -s, price, funding_index)
    c, ok = margin.trade(c, market, s, price, funding_index)
    equity, imr, mmr = margin.risk(c, mk)
    if equity < 0:
        return False, account, counterparty
    a.nonce += 1
    return True, a, c
