# pragma version ~=0.4.3
"""
@title Trade Rules
@custom:contract-name TradeRules
@license MIT
@notice The rules of protocol.md section 3 ("Trading") for Fill and
        BundleFill, executed for the FraudVerifier (section 5): `execute`
        returns the keys a transaction touches (repeats removed), whether
        it applies, and the new value of each key.
@dev `execute` is a view over its arguments: it checks no witness (the
     FraudVerifier does). It reverts with "verifier: bad witness" on a
     value of the wrong shape for its leaf. Every trade is at the
     maker's price; each account is settled once, traded, charged its
     fee, then checked (reduce-only, max position, halt, fresh, risk_ok)
     over every market it traded. Gas: `values` is decoded once in
     `execute` and never passed whole to a helper.
"""

import accounts
import eip712
import margin
import markets
import orders
import state_keys
import txdata


# @dev Longest encoded transaction.
MAX_TX_BYTES: constant(uint256) = txdata.MAX_TX_BYTES


# @dev Most state leaves one transaction touches.
MAX_WITNESSES: constant(uint256) = 12


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


# @dev A Fill is `type || maker_order(56) || maker_sig(65) ||
#      taker_order(56) || taker_sig(65) || size(8)`.
FILL_MAKER_AT: constant(uint256) = 1
FILL_TAKER_AT: constant(uint256) = 122
FILL_SIZE_END: constant(uint256) = 251


# @dev A BundleFill is `type || trader(20) || expiry(8) || salt(8) ||
#      count(1)`, `count` legs of 19 bytes (`market(2) || side(1) ||
#      price(8) || size(8)`), the signature (65) and `count` signed maker
#      orders (121 bytes each), with 1 to `MAX_LEGS` legs.
MAX_LEGS: constant(uint256) = 4
BUNDLE_HEADER_BYTES: constant(uint256) = 38
BUNDLE_FIXED_BYTES: constant(uint256) = 103
BUNDLE_LEG_BYTES: constant(uint256) = 140
LEG_BYTES: constant(uint256) = 19


# @dev A bundle touches its trader and at most one more account per leg.
MAX_BUNDLE_ACCOUNTS: constant(uint256) = MAX_LEGS + 1


# @dev Keys of a bundle before its legs: Account(trader), Order(bundle), Markets, Insurance.
BUNDLE_FIXED_KEYS: constant(uint256) = 4


MASK64: constant(uint256) = 2**64 - 1


# @dev One leg of a bundle.
struct Leg:
    market: uint256
    side: uint256
    price: uint256
    size: uint256


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
    @dev Executes one Fill or BundleFill on the values of its touched keys
         (protocol.md sections 3 and 5).
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
    keys: DynArray[bytes32, MAX_WITNESSES] = []
    if tx_type == txdata.TYPE_FILL and size == txdata.FILL_LENGTH:
        # Fill: valid iff the traders differ, both signatures are valid,
        # neither order is cancelled and both have room for `size`, the
        # taker passes the order rules and is not `POST_ONLY`, and the
        # maker, the size and the trades pass `_bundle` as a one-leg
        # bundle of the taker. Both orders' `filled += size`; Insurance is
        # written when the fees sum to non-zero.
        maker: orders.Order = empty(orders.Order)
        taker: orders.Order = empty(orders.Order)
        maker_digest: bytes32 = empty(bytes32)
        taker_digest: bytes32 = empty(bytes32)
        keys, maker, taker, maker_digest, taker_digest = self._fill_keys(tx_data)
        if len(values) != len(keys) or maker.trader == taker.trader:
            return keys, False, []
        fill_mk: Bytes[MAX_VALUE_BYTES] = values[4]
        markets.count(fill_mk)
        fill_insurance: uint256 = self._read_word(values[5])
        maker_filled: uint256 = 0
        taker_filled: uint256 = 0
        cancelled: bool = False
        maker_filled, cancelled = orders.leaf(values[2])
        if cancelled:
            return keys, False, []
        taker_filled, cancelled = orders.leaf(values[3])
        if cancelled:
            return keys, False, []
        fill_size: uint256 = extract32(tx_data, FILL_SIZE_END - 32, output_type=uint256) & MASK64
        if maker_filled + fill_size > maker.size or taker_filled + fill_size > taker.size:
            return keys, False, []
        if not eip712.signed_by(
            maker_digest,
            extract32(tx_data, FILL_MAKER_AT + 56, output_type=uint256),
            extract32(tx_data, FILL_MAKER_AT + 88, output_type=uint256),
            extract32(tx_data, FILL_MAKER_AT + 89, output_type=uint256) & 255,
            maker.trader,
        ):
            return keys, False, []
        if not eip712.signed_by(
            taker_digest,
            extract32(tx_data, FILL_TAKER_AT + 56, output_type=uint256),
            extract32(tx_data, FILL_TAKER_AT + 88, output_type=uint256),
            extract32(tx_data, FILL_TAKER_AT + 89, output_type=uint256) & 255,
            taker.trader,
        ):
            return keys, False, []
        # The taker's own rules; the rest is a one-leg bundle against the maker.
        if taker.market >= len(fill_mk) // markets.RECORD_BYTES:
            return keys, False, []
        w2: uint256 = extract32(fill_mk, markets.RECORD_BYTES * taker.market + 64, output_type=uint256)
        if not orders.check(taker, w2 >> 192, (w2 >> 128) & MASK64, l2_time):
            return keys, False, []
        if taker.flags & orders.FLAG_POST_ONLY != 0:
            return keys, False, []
        fill_book: accounts.Account[MAX_BUNDLE_ACCOUNTS] = empty(accounts.Account[MAX_BUNDLE_ACCOUNTS])
        fill_book[0] = accounts.decode(values[1])
        fill_book[1] = accounts.decode(values[0])
        filled_ok: bool = False
        fill_fees: int256 = 0
        filled_ok, fill_book, fill_fees = self._bundle(
            0,
            [
                Leg(market=taker.market, side=taker.side, price=taker.price, size=fill_size),
                empty(Leg),
                empty(Leg),
                empty(Leg),
            ],
            1,
            [maker, empty(orders.Order), empty(orders.Order), empty(orders.Order)],
            [maker_filled, 0, 0, 0],
            fill_book,
            [1, 0, 0, 0],
            2,
            taker.flags & orders.FLAG_REDUCE_ONLY != 0,
            fill_mk,
            l2_time,
        )
        if not filled_ok:
            return keys, False, []
        new_insurance: Bytes[MAX_VALUE_BYTES] = values[5]
        if fill_fees != 0:
            new_insurance = abi_encode(convert(convert(fill_insurance, int256) + fill_fees, uint256))
        return keys, True, [
            keccak256(accounts.encode(fill_book[1])),
            keccak256(accounts.encode(fill_book[0])),
            keccak256(abi_encode(maker_filled + fill_size, convert(0, uint256))),
            keccak256(abi_encode(taker_filled + fill_size, convert(0, uint256))),
            keccak256(fill_mk),
            keccak256(new_insurance),
        ]
    if tx_type != txdata.TYPE_BUNDLE_FILL or size < BUNDLE_HEADER_BYTES:
        return [], False, []
    count: uint256 = convert(slice(tx_data, BUNDLE_HEADER_BYTES - 1, 1), uint256)
    if count == 0 or count > MAX_LEGS or size != BUNDLE_FIXED_BYTES + BUNDLE_LEG_BYTES * count:
        return [], False, []

    # Keys: Account(trader), Order(bundle), Markets, Insurance, then
    # Account(maker_i), Order(maker_i) for each leg, repeats removed.
    trader: address = txdata.word_address(extract32(tx_data, 1, output_type=uint256))
    bundle_digest: bytes32 = self._bundle_digest(tx_data, count)
    keys = [
        state_keys.account_key(trader),
        state_keys.order_key(bundle_digest),
        state_keys.MARKETS_KEY,
        state_keys.INSURANCE_KEY,
    ]
    makers: orders.Order[MAX_LEGS] = empty(orders.Order[MAX_LEGS])
    maker_digests: bytes32[MAX_LEGS] = empty(bytes32[MAX_LEGS])
    account_at: uint256[MAX_LEGS] = empty(uint256[MAX_LEGS])
    order_at: uint256[MAX_LEGS] = empty(uint256[MAX_LEGS])
    makers_at: uint256 = BUNDLE_FIXED_BYTES + LEG_BYTES * count
    for i: uint256 in range(count, bound=MAX_LEGS):
        at: uint256 = makers_at + orders.SIGNED_ORDER_BYTES * i
        makers[i] = orders.decode(
            extract32(tx_data, at, output_type=uint256), extract32(tx_data, at + 24, output_type=uint256)
        )
        maker_digests[i] = eip712.digest(ROLLUP, orders.struct_hash(makers[i]))
        keys, account_at[i] = self._listed(keys, state_keys.account_key(makers[i].trader))
        keys, order_at[i] = self._listed(keys, state_keys.order_key(maker_digests[i]))
    if len(values) != len(keys):
        return keys, False, []

    # Decode every value once: the accounts (slot 0 is the trader, then
    # each distinct maker), the order leaves, the Markets and Insurance.
    mk: Bytes[MAX_VALUE_BYTES] = values[2]
    markets.count(mk)
    insurance: uint256 = self._read_word(values[3])
    bundle_filled: uint256 = 0
    bundle_cancelled: bool = False
    bundle_filled, bundle_cancelled = orders.leaf(values[1])
    if bundle_cancelled or bundle_filled != 0:
        return keys, False, []
    book: accounts.Account[MAX_BUNDLE_ACCOUNTS] = empty(accounts.Account[MAX_BUNDLE_ACCOUNTS])
    book[0] = accounts.decode(values[0])
    slots: uint256[MAX_LEGS] = empty(uint256[MAX_LEGS])
    slot_keys: uint256[MAX_BUNDLE_ACCOUNTS] = empty(uint256[MAX_BUNDLE_ACCOUNTS])
    used: uint256 = 1
    filled: uint256[MAX_LEGS] = empty(uint256[MAX_LEGS])
    for i: uint256 in range(count, bound=MAX_LEGS):
        if makers[i].trader == trader:
            return keys, False, []  # self trade
        cancelled: bool = False
        filled[i], cancelled = orders.leaf(values[order_at[i]])
        if cancelled:
            return keys, False, []
        # A maker met at an earlier leg keeps its slot (its key is listed once).
        slot: uint256 = used
        for j: uint256 in range(1, used, bound=MAX_BUNDLE_ACCOUNTS):
            if slot_keys[j] == account_at[i]:
                slot = j
                break
        if slot == used:
            book[used] = accounts.decode(values[account_at[i]])
            slot_keys[used] = account_at[i]
            used += 1
        slots[i] = slot

    # The signatures, then the legs.
    sig_at: uint256 = BUNDLE_HEADER_BYTES + LEG_BYTES * count
    if not eip712.signed_by(
        bundle_digest,
        extract32(tx_data, sig_at, output_type=uint256),
        extract32(tx_data, sig_at + 32, output_type=uint256),
        extract32(tx_data, sig_at + 33, output_type=uint256) & 255,
        trader,
    ):
        return keys, False, []
    for i: uint256 in range(count, bound=MAX_LEGS):
        at: uint256 = makers_at + orders.SIGNED_ORDER_BYTES * i + orders.ORDER_BYTES
        if not eip712.signed_by(
            maker_digests[i],
            extract32(tx_data, at, output_type=uint256),
            extract32(tx_data, at + 32, output_type=uint256),
            extract32(tx_data, at + 33, output_type=uint256) & 255,
            makers[i].trader,
        ):
            return keys, False, []
    legs: Leg[MAX_LEGS] = empty(Leg[MAX_LEGS])
    for i: uint256 in range(count, bound=MAX_LEGS):
        w: uint256 = extract32(tx_data, BUNDLE_HEADER_BYTES + LEG_BYTES * i, output_type=uint256)
        legs[i] = Leg(
            market=w >> 240, side=(w >> 232) & 255, price=(w >> 168) & MASK64, size=(w >> 104) & MASK64
        )

    ok: bool = False
    fees: int256 = 0
    ok, book, fees = self._bundle(
        extract32(tx_data, 21, output_type=uint256) >> 192,
        legs,
        count,
        makers,
        filled,
        book,
        slots,
        used,
        False,
        mk,
        l2_time,
    )
    if not ok:
        return keys, False, []

    new_hashes: DynArray[bytes32, MAX_WITNESSES] = [
        keccak256(accounts.encode(book[0])),
        keccak256(abi_encode(convert(1, uint256), convert(0, uint256))),
        keccak256(mk),
        keccak256(values[3]),
    ]
    if fees != 0:
        new_hashes[3] = keccak256(abi_encode(convert(convert(insurance, int256) + fees, uint256)))
    for i: uint256 in range(count, bound=MAX_LEGS):
        if account_at[i] == len(new_hashes):
            new_hashes.append(keccak256(accounts.encode(book[slots[i]])))
        new_hashes.append(keccak256(abi_encode(filled[i] + legs[i].size, convert(0, uint256))))
    return keys, True, new_hashes


@internal
@view
def _fill_keys(
    tx_data: Bytes[MAX_TX_BYTES],
) -> (DynArray[bytes32, MAX_WITNESSES], orders.Order, orders.Order, bytes32, bytes32):
    """
    @dev The orders of a Fill `type || maker_order(56) || maker_sig(65) ||
         taker_order(56) || taker_sig(65) || size(8)`, their digests, and
         its touched keys: Account(maker), Account(taker), Order(maker),
         Order(taker), Markets, Insurance (repeats removed).
    """
    maker: orders.Order = orders.decode(
        extract32(tx_data, FILL_MAKER_AT, output_type=uint256),
        extract32(tx_data, FILL_MAKER_AT + 24, output_type=uint256),
    )
    taker: orders.Order = orders.decode(
        extract32(tx_data, FILL_TAKER_AT, output_type=uint256),
        extract32(tx_data, FILL_TAKER_AT + 24, output_type=uint256),
    )
    maker_digest: bytes32 = eip712.digest(ROLLUP, orders.struct_hash(maker))
    taker_digest: bytes32 = eip712.digest(ROLLUP, orders.struct_hash(taker))
    keys: DynArray[bytes32, MAX_WITNESSES] = [state_keys.account_key(maker.trader)]
    at: uint256 = 0
    keys, at = self._listed(keys, state_keys.account_key(taker.trader))
    keys, at = self._listed(keys, state_keys.order_key(maker_digest))
    keys, at = self._listed(keys, state_keys.order_key(taker_digest))
    keys.append(state_keys.MARKETS_KEY)
    keys.append(state_keys.INSURANCE_KEY)
    return keys, maker, taker, maker_digest, taker_digest


@internal
@pure
def _bundle(
    expiry: uint256,
    legs: Leg[MAX_LEGS],
    count: uint256,
    makers: orders.Order[MAX_LEGS],
    filled: uint256[MAX_LEGS],
    book: accounts.Account[MAX_BUNDLE_ACCOUNTS],
    slots: uint256[MAX_LEGS],
    used: uint256,
    taker_reduce_only: bool,
    mk: Bytes[MAX_VALUE_BYTES],
    now: uint256,
) -> (bool, accounts.Account[MAX_BUNDLE_ACCOUNTS], int256):
    """
    @dev The market rules and the execution of a BundleFill whose
         signatures and bundle leaf were checked: the bundle is live, the
         legs' markets distinct and listed, each leg passes its market's
         tick and lot and crosses a valid maker order of its market on the
         other side (not `IOC`, not cancelled, with room); every account
         is settled once, the legs trade in order at the makers' prices
         with fees (`taker_fee_bps` for the trader); then each account's
         checks over all of its changed markets.
         A Fill is the one-leg case: its taker is the trader (its own
         order rules checked by the caller, `taker_reduce_only` its flag).
    @param expiry The bundle's expiry (0: never; a Fill passes 0).
    @param legs The legs (a Fill's: the taker's market, side and price, the fill size).
    @param count The number of legs.
    @param makers The maker order of each leg.
    @param filled The filled size of each maker order.
    @param book The accounts: slot 0 the trader, then the distinct makers.
    @param slots The slot of each leg's maker.
    @param used The number of slots in use.
    @param taker_reduce_only Whether the trader's position may only shrink.
    @return bool Whether the bundle is valid.
    @return accounts.Account[5] The accounts after the bundle.
    @return int256 The sum of all fees (what Insurance gains).
    """
    if expiry != 0 and now >= expiry:
        return False, book, 0
    n: uint256 = len(mk) // markets.RECORD_BYTES
    for i: uint256 in range(count, bound=MAX_LEGS):
        leg: Leg = legs[i]
        if leg.market >= n:
            return False, book, 0
        for j: uint256 in range(i, bound=MAX_LEGS):
            if legs[j].market == leg.market:
                return False, book, 0
        w2: uint256 = extract32(mk, markets.RECORD_BYTES * leg.market + 64, output_type=uint256)
        tick_size: uint256 = w2 >> 192
        lot_size: uint256 = (w2 >> 128) & MASK64
        if leg.side > orders.SIDE_SELL or leg.price == 0 or leg.price % tick_size != 0:
            return False, book, 0
        if leg.size == 0 or leg.size % lot_size != 0:
            return False, book, 0
        maker: orders.Order = makers[i]
        if maker.market != leg.market or not orders.check(maker, tick_size, lot_size, now):
            return False, book, 0
        if maker.side == leg.side or maker.flags & orders.FLAG_IOC != 0:
            return False, book, 0
        if leg.side == orders.SIDE_BUY:
            if leg.price < maker.price:
                return False, book, 0
        elif leg.price > maker.price:
            return False, book, 0
        if filled[i] + leg.size > maker.size:
            return False, book, 0

    accts: accounts.Account[MAX_BUNDLE_ACCOUNTS] = book
    equity_before: int256[MAX_BUNDLE_ACCOUNTS] = empty(int256[MAX_BUNDLE_ACCOUNTS])
    mmr_before: int256[MAX_BUNDLE_ACCOUNTS] = empty(int256[MAX_BUNDLE_ACCOUNTS])
    imr: int256 = 0
    for s: uint256 in range(used, bound=MAX_BUNDLE_ACCOUNTS):
        accts[s] = margin.settle(accts[s], mk)
        equity_before[s], imr, mmr_before[s] = margin.risk(accts[s], mk)

    trader_before: int256[MAX_LEGS] = empty(int256[MAX_LEGS])
    maker_before: int256[MAX_LEGS] = empty(int256[MAX_LEGS])
    fees: int256 = 0
    ok: bool = False
    for i: uint256 in range(count, bound=MAX_LEGS):
        leg: Leg = legs[i]
        s: uint256 = slots[i]
        funding_index: int256 = margin.funding_index(mk, leg.market)
        trader_before[i] = margin.size_of(accts[0], leg.market)
        maker_before[i] = margin.size_of(accts[s], leg.market)
        price: int256 = convert(makers[i].price, int256)
        delta: int256 = convert(leg.size, int256)
        if leg.side != orders.SIDE_BUY:
            delta = -delta
        accts[0], ok = margin.trade(accts[0], leg.market, delta, price, funding_index)
        if not ok:
            return False, book, 0
        accts[s], ok = margin.trade(accts[s], leg.market, -delta, price, funding_index)
        if not ok:
            return False, book, 0
        w3: uint256 = extract32(mk, markets.RECORD_BYTES * leg.market + 96, output_type=uint256)
        notional: uint256 = leg.size * makers[i].price
        maker_bps: int256 = 0
        taker_bps: int256 = 0
        maker_bps, taker_bps = markets.fee_bps(w3)
        maker_fee: int256 = margin.fee(notional, maker_bps)
        taker_fee: int256 = margin.fee(notional, taker_bps)
        accts[s].collateral -= maker_fee
        accts[0].collateral -= taker_fee
        fees += maker_fee + taker_fee

    grew: bool[MAX_BUNDLE_ACCOUNTS] = empty(bool[MAX_BUNDLE_ACCOUNTS])
    increased: bool = False
    for i: uint256 in range(count, bound=MAX_LEGS):
        m: uint256 = legs[i].market
        s: uint256 = slots[i]
        ok, increased = self._change_ok(
            mk, m, trader_before[i], margin.size_of(accts[0], m), taker_reduce_only, now
        )
        if not ok:
            return False, book, 0
        grew[0] = grew[0] or increased
        reduce_only: bool = makers[i].flags & orders.FLAG_REDUCE_ONLY != 0
        ok, increased = self._change_ok(mk, m, maker_before[i], margin.size_of(accts[s], m), reduce_only, now)
        if not ok:
            return False, book, 0
        grew[s] = grew[s] or increased
    for s: uint256 in range(used, bound=MAX_BUNDLE_ACCOUNTS):
        if not margin.risk_ok(accts[s], mk, grew[s], equity_before[s], mmr_before[s]):
            return False, book, 0
    return True, accts, fees


@internal
@pure
def _change_ok(
    mk: Bytes[MAX_VALUE_BYTES],
    market: uint256,
    before: int256,
    after: int256,
    reduce_only: bool,
    now: uint256,
) -> (bool, bool):
    """
    @dev The checks of a position that changed from `before` to `after`:
         if it `increases`, it must not be reduce-only, must end within
         `max_position` when `|size|` grew, the market must not be halted
         and its price must be fresh.
    @return bool Whether the change passes.
    @return bool Whether it increased.
    """
    if not margin.increases(before, after):
        return True, False
    at: uint256 = markets.RECORD_BYTES * market
    w0: uint256 = extract32(mk, at, output_type=uint256)
    if reduce_only or now < w0 & MASK64:
        return False, True
    max_position: uint256 = (extract32(mk, at + 64, output_type=uint256) >> 64) & MASK64
    if abs(after) > abs(before) and convert(abs(after), uint256) > max_position:
        return False, True
    return margin.fresh(w0, extract32(mk, at + 96, output_type=uint256), now), True


@internal
@view
def _bundle_digest(tx_data: Bytes[MAX_TX_BYTES], count: uint256) -> bytes32:
    """
    @dev Returns the bundle's EIP-712 digest: `hashStruct(Bundle) =
         keccak(BUNDLE_TYPEHASH || word(trader) || keccak(hashStruct(leg_0)
         || ...) || word(expiry) || word(salt))`.
    """
    leg_hashes: bytes32[MAX_LEGS] = empty(bytes32[MAX_LEGS])
    for i: uint256 in range(count, bound=MAX_LEGS):
        w: uint256 = extract32(tx_data, BUNDLE_HEADER_BYTES + LEG_BYTES * i, output_type=uint256)
        leg_hashes[i] = keccak256(
            abi_encode(
                eip712.LEG_TYPEHASH, w >> 240, (w >> 232) & 255, (w >> 168) & MASK64, (w >> 104) & MASK64
            )
        )
    struct_hash: bytes32 = keccak256(
        abi_encode(
            eip712.BUNDLE_TYPEHASH,
            txdata.word_address(extract32(tx_data, 1, output_type=uint256)),
            keccak256(slice(abi_encode(leg_hashes), 0, 32 * count)),
            extract32(tx_data, 21, output_type=uint256) >> 192,
            extract32(tx_data, 29, output_type=uint256) >> 192,
        )
    )
    return eip712.digest(ROLLUP, struct_hash)


@internal
@pure
def _listed(
    keys: DynArray[bytes32, MAX_WITNESSES], key: bytes32
) -> (DynArray[bytes32, MAX_WITNESSES], uint256):
    """
    @dev Appends `key` unless it is listed already (a key that appears
         twice is listed once, at its first place).
    @return DynArray[bytes32, 12] The keys.
    @return uint256 The place of `key` in them.
    """
    for i: uint256 in range(len(keys), bound=MAX_WITNESSES):
        if keys[i] == key:
            return keys, i
    keys.append(key)
    return keys, len(keys) - 1


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
