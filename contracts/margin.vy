# pragma version ~=0.4.3
"""
@title Cross-Margin Risk Math
@custom:contract-name margin
@license MIT
@notice Library module: the definitions of protocol.md section 3
        ("Common rules") on a working `accounts.Account` and the Markets
        leaf value: settle, equity, initial and maintenance margin,
        fresh, halted, trade, increases, fee and risk_ok. Integers only;
        every division has a non-negative dividend (absolute values are
        taken first, as the protocol states), so the EVM's truncating
        signed division is never asked to round a negative number.
@dev The module holds no state: `import margin`. Market fields are read
     straight from the Markets value (`extract32` at the record's
     offsets) instead of through a decoding call, so the value is copied
     once per call, not once per position. A position in a market that
     is not listed never occurs in an honest tree: `settle` reverts with
     "verifier: bad witness" on one, and every account a rule reads is
     settled first. Bounds (protocol.md, "Arithmetic"): sizes and prices
     below 2**64, collateral and open notional below 2**128, the funding
     index int128, so every product here fits an int256.
"""

import accounts


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


# @dev Bytes of one market record.
RECORD_BYTES: constant(uint256) = 128


# @dev Basis points in one whole.
BPS: constant(uint256) = 10000


# @dev Most open positions of one account.
MAX_POSITIONS: constant(uint256) = accounts.MAX_POSITIONS


MASK16: constant(uint256) = 2**16 - 1
MASK32: constant(uint256) = 2**32 - 1
MASK64: constant(uint256) = 2**64 - 1


@internal
@pure
def funding_index(mk: Bytes[MAX_VALUE_BYTES], market: uint256) -> int256:
    """
    @dev Returns the `funding_index` of a listed market (record offset 32,
         16 signed bytes).
    @param mk The Markets value.
    @param market The market id, below the count.
    @return int256 The cumulative funding index.
    """
    return extract32(mk, RECORD_BYTES * market + 32, output_type=int256) >> 128


@internal
@pure
def fresh(w0: uint256, w3: uint256, now: uint256) -> bool:
    """
    @dev `fresh(m)`: the market has a price (`oracle_time > 0`) no older
         than `max_oracle_age` at `now`.
    @param w0 The record's first word (mark, index, oracle_time, halted_until).
    @param w3 The record's last word (the bps fields and durations).
    @param now The batch's `l2_time`.
    @return bool Whether the price is fresh.
    """
    oracle_time: uint256 = (w0 >> 64) & MASK64
    return oracle_time > 0 and now <= oracle_time + ((w3 >> 32) & MASK32)


@internal
@pure
def market_fresh(mk: Bytes[MAX_VALUE_BYTES], market: uint256, now: uint256) -> bool:
    """
    @dev `fresh(m)` of a listed market, read from the Markets value.
    @param mk The Markets value.
    @param market The market id, below the count.
    @param now The batch's `l2_time`.
    @return bool Whether its price is fresh.
    """
    at: uint256 = RECORD_BYTES * market
    return self.fresh(
        extract32(mk, at, output_type=uint256), extract32(mk, at + 96, output_type=uint256), now
    )


@internal
@pure
def settle(a: accounts.Account, mk: Bytes[MAX_VALUE_BYTES]) -> accounts.Account:
    """
    @dev `settle(A)`: for each position, `collateral -= size *
         (funding_index - snapshot)` and the snapshot becomes the index.
         Reverts ("verifier: bad witness") on a position in a market that
         is not listed.
    @param a The account.
    @param mk The Markets value.
    @return accounts.Account The settled account.
    """
    n: uint256 = len(mk) // RECORD_BYTES
    for i: uint256 in range(a.count, bound=MAX_POSITIONS):
        m: uint256 = a.positions[i].market
        assert m < n, "verifier: bad witness"
        index: int256 = extract32(mk, unsafe_add(unsafe_mul(RECORD_BYTES, m), 32), output_type=int256) >> 128
        snapshot: int256 = a.positions[i].funding_snapshot
        if snapshot != index:
            # |size| < 2**64 and both indexes are int128: the product is below 2**193.
            a.collateral -= unsafe_mul(a.positions[i].size, unsafe_sub(index, snapshot))
            a.positions[i].funding_snapshot = index
    return a


@internal
@pure
def risk(a: accounts.Account, mk: Bytes[MAX_VALUE_BYTES]) -> (int256, int256, int256):
    """
    @dev Equity and margins of a settled account: `equity = collateral +
         sum(size * mark - open_notional)`, `imr` and `mmr` the sums of
         `ceil(|size| * mark * bps / BPS)` with `imr_bps` and `mmr_bps`.
    @param a The account (its markets are listed: it was settled).
    @param mk The Markets value.
    @return int256 The equity.
    @return int256 The initial margin.
    @return int256 The maintenance margin.
    """
    equity: int256 = a.collateral
    imr: uint256 = 0
    mmr: uint256 = 0
    for i: uint256 in range(a.count, bound=MAX_POSITIONS):
        p: accounts.Position = a.positions[i]
        at: uint256 = unsafe_mul(RECORD_BYTES, p.market)
        mark: uint256 = extract32(mk, at, output_type=uint256) >> 192
        w3: uint256 = extract32(mk, unsafe_add(at, 96), output_type=uint256)
        # |size| and mark are below 2**64, bps below 2**16: no product reaches 2**145,
        # and the sum of 8 notionals and the collateral stays far below 2**255.
        size: int256 = p.size
        equity = unsafe_add(equity, unsafe_sub(unsafe_mul(size, convert(mark, int256)), p.open_notional))
        if size < 0:
            size = unsafe_sub(0, size)
        exposure: uint256 = unsafe_mul(convert(size, uint256), mark)
        imr = unsafe_add(imr, unsafe_div(unsafe_add(unsafe_mul(exposure, w3 >> 240), BPS - 1), BPS))
        mmr_bps: uint256 = (w3 >> 224) & MASK16
        mmr = unsafe_add(mmr, unsafe_div(unsafe_add(unsafe_mul(exposure, mmr_bps), BPS - 1), BPS))
    return equity, convert(imr, int256), convert(mmr, int256)


@internal
@pure
def all_fresh(a: accounts.Account, mk: Bytes[MAX_VALUE_BYTES], now: uint256) -> bool:
    """
    @dev `all_fresh(A)`: every market of the account's positions is fresh.
    @param a The account (its markets are listed: it was settled).
    @param mk The Markets value.
    @param now The batch's `l2_time`.
    @return bool Whether every price it holds is fresh.
    """
    for i: uint256 in range(a.count, bound=MAX_POSITIONS):
        at: uint256 = RECORD_BYTES * a.positions[i].market
        w0: uint256 = extract32(mk, at, output_type=uint256)
        if not self.fresh(w0, extract32(mk, at + 96, output_type=uint256), now):
            return False
    return True


@internal
@pure
def size_of(a: accounts.Account, market: uint256) -> int256:
    """
    @dev Returns the signed size the account holds in `market` (0 if none).
    @param a The account.
    @param market The market id.
    @return int256 The size.
    """
    for i: uint256 in range(a.count, bound=MAX_POSITIONS):
        if a.positions[i].market == market:
            return a.positions[i].size
    return 0


@internal
@pure
def increases(before: int256, after: int256) -> bool:
    """
    @dev `increases(s, s')`: `|s'| > |s|`, or a flip to the other side.
    @param before The size before.
    @param after The size after.
    @return bool Whether the change adds risk.
    """
    return abs(after) > abs(before) or (after != 0 and before != 0 and (after > 0) != (before > 0))


@internal
@pure
def fee(notional: uint256, bps: int256) -> int256:
    """
    @dev `fee(notional, bps)`: `ceil(notional * bps / BPS)` for a charge
         (`bps >= 0`), `-(notional * |bps| // BPS)` for a rebate.
    @param notional The non-negative notional `size * price`.
    @param bps The signed fee rate.
    @return int256 The fee (negative: a rebate).
    """
    if bps >= 0:
        return convert((notional * convert(bps, uint256) + BPS - 1) // BPS, int256)
    return -convert(notional * convert(-bps, uint256) // BPS, int256)


@internal
@pure
def trade(
    a: accounts.Account, market: uint256, delta: int256, price: int256, funding_index: int256
) -> (accounts.Account, bool):
    """
    @dev `trade(A, m, delta, price)`: the account buys `delta > 0` (sells
         `delta < 0`) at `price`. Adding to a position (or opening one)
         adds `delta * price` to its open notional; the part that closes
         realizes `sign(s) * c * price - removed` with `c = min(|delta|,
         |s|)` and `removed = sign(N) * (|N| * c // |s|)`; a flip reopens
         the rest at `price`. A closed position is removed, a new one
         snapshots `funding_index` (the account is settled).
    @param a The settled account.
    @param market The market id.
    @param delta The signed size bought (non-zero).
    @param price The price.
    @param funding_index The market's funding index.
    @return accounts.Account The account after the trade.
    @return bool False when it would open a position past `MAX_POSITIONS`.
    """
    count: uint256 = a.count
    at: uint256 = count
    found: bool = False
    for i: uint256 in range(count, bound=MAX_POSITIONS):
        if a.positions[i].market >= market:
            at = i
            found = a.positions[i].market == market
            break
    if not found:
        # A new position at its sorted place.
        if count == MAX_POSITIONS:
            return a, False
        for j: uint256 in range(count - at, bound=MAX_POSITIONS):
            k: uint256 = count - j
            a.positions[k] = a.positions[k - 1]
        a.positions[at] = accounts.Position(
            market=market, size=delta, open_notional=delta * price, funding_snapshot=funding_index
        )
        a.count = count + 1
        return a, True
    s: int256 = a.positions[at].size
    n: int256 = a.positions[at].open_notional
    if (delta > 0) == (s > 0):
        a.positions[at].size = s + delta
        a.positions[at].open_notional = n + delta * price
        return a, True
    c: int256 = min(abs(delta), abs(s))
    removed: int256 = abs(n) * c // abs(s)
    if n < 0:
        removed = -removed
    if s > 0:
        a.collateral += c * price - removed
    else:
        a.collateral += -c * price - removed
    if abs(delta) > abs(s):
        a.positions[at].size = delta + s
        a.positions[at].open_notional = (delta + s) * price
        a.positions[at].funding_snapshot = funding_index
    elif abs(delta) == abs(s):
        for j: uint256 in range(at, count - 1, bound=MAX_POSITIONS):
            a.positions[j] = a.positions[j + 1]
        a.positions[count - 1] = empty(accounts.Position)
        a.count = count - 1
    else:
        a.positions[at].size = s + delta
        a.positions[at].open_notional = n - removed
    return a, True


@internal
@pure
def risk_ok(
    a: accounts.Account,
    mk: Bytes[MAX_VALUE_BYTES],
    increased: bool,
    equity_before: int256,
    mmr_before: int256,
) -> bool:
    """
    @dev `risk_ok(A_before, A_after, increased)` without the freshness of
         the increased markets (the caller checks it): `equity >= imr`,
         or, when no position grew, `equity >= 0` and `equity - mmr >=
         equity_before - mmr_before` (a risk-reducing trade may not lose
         more than the maintenance margin it frees).
    @param a The account after its trades and fees.
    @param mk The Markets value.
    @param increased Whether a changed market's position increased.
    @param equity_before The equity after settlement, before the trades.
    @param mmr_before The maintenance margin then.
    @return bool Whether the account passes.
    """
    equity: int256 = 0
    imr: int256 = 0
    mmr: int256 = 0
    equity, imr, mmr = self.risk(a, mk)
    if equity >= imr:
        return True
    if increased:
        return False
    return equity >= 0 and equity - mmr >= equity_before - mmr_before
