# pragma version ~=0.4.3
"""
@title Market Records
@custom:contract-name markets
@license MIT
@notice Library module: the Markets leaf value of protocol.md section 2,
        `n` records of 128 bytes (market `i` is record `i`; a market is
        listed iff its id is below `n`), each packing big-endian fields
        at fixed offsets (signed fields in two's complement).
@dev The module holds no state: `import markets`. A value whose length
     is not a multiple of 128 never occurs in an honest tree: `count`
     reverts with "verifier: bad witness" on one.
"""


# @dev Longest encoded leaf value (16 records).
MAX_VALUE_BYTES: constant(uint256) = 2048


# @dev Bytes of one market record.
RECORD_BYTES: constant(uint256) = 128


# @dev Most markets.
MAX_MARKETS: constant(uint256) = 16


MASK16: constant(uint256) = 2**16 - 1
MASK32: constant(uint256) = 2**32 - 1
MASK64: constant(uint256) = 2**64 - 1


# @dev One market's record: live state (set by OracleUpdate and Funding)
#      and parameters (set by SetMarket), in record order.
struct Market:
    mark_price: uint256
    index_price: uint256
    oracle_time: uint256
    halted_until: uint256
    funding_index: int256
    last_funding_time: uint256
    breaker_ref_time: uint256
    tick_size: uint256
    lot_size: uint256
    max_position: uint256
    breaker_ref_price: uint256
    imr_bps: uint256
    mmr_bps: uint256
    maker_fee_bps: int256
    taker_fee_bps: int256
    liquidation_penalty_bps: uint256
    breaker_bps: uint256
    max_funding_bps: uint256
    funding_interval: uint256
    breaker_window: uint256
    max_oracle_age: uint256


@internal
@pure
def _signed(word: uint256) -> int256:
    """
    @dev Returns `word` read as a two's complement signed integer.
    """
    return convert(convert(word, bytes32), int256)


@internal
@pure
def _unsigned(x: int256) -> uint256:
    """
    @dev Returns the two's complement word of `x`.
    """
    return convert(convert(x, bytes32), uint256)


@internal
@pure
def fee_bps(w3: uint256) -> (int256, int256):
    """
    @dev Returns the signed fee rates held in a record's last word.
    @param w3 Bytes 96-127 of the record.
    @return int256 `maker_fee_bps`.
    @return int256 `taker_fee_bps`.
    """
    return self._signed(w3 << 32) >> 240, self._signed(w3 << 48) >> 240


@internal
@pure
def count(data: Bytes[MAX_VALUE_BYTES]) -> uint256:
    """
    @dev Returns the number of listed markets (0 when the leaf is absent).
    @param data The Markets leaf value.
    @return uint256 `n = len(data) / 128`.
    """
    assert len(data) % RECORD_BYTES == 0, "verifier: bad witness"
    return len(data) // RECORD_BYTES


@internal
@pure
def record(data: Bytes[MAX_VALUE_BYTES], market: uint256) -> Market:
    """
    @dev Decodes record `market` (which must be below `count(data)`).
    @param data The Markets leaf value.
    @param market The market id.
    @return Market The record's fields.
    """
    at: uint256 = RECORD_BYTES * market
    w0: uint256 = extract32(data, at, output_type=uint256)
    w1: uint256 = extract32(data, at + 32, output_type=uint256)
    w2: uint256 = extract32(data, at + 64, output_type=uint256)
    w3: uint256 = extract32(data, at + 96, output_type=uint256)
    return Market(
        mark_price=w0 >> 192,
        index_price=(w0 >> 128) & MASK64,
        oracle_time=(w0 >> 64) & MASK64,
        halted_until=w0 & MASK64,
        funding_index=self._signed(w1) >> 128,
        last_funding_time=(w1 >> 64) & MASK64,
        breaker_ref_time=w1 & MASK64,
        tick_size=w2 >> 192,
        lot_size=(w2 >> 128) & MASK64,
        max_position=(w2 >> 64) & MASK64,
        breaker_ref_price=w2 & MASK64,
        imr_bps=w3 >> 240,
        mmr_bps=(w3 >> 224) & MASK16,
        maker_fee_bps=self._signed(w3 << 32) >> 240,
        taker_fee_bps=self._signed(w3 << 48) >> 240,
        liquidation_penalty_bps=(w3 >> 176) & MASK16,
        breaker_bps=(w3 >> 160) & MASK16,
        max_funding_bps=(w3 >> 144) & MASK16,
        funding_interval=(w3 >> 96) & MASK32,
        breaker_window=(w3 >> 64) & MASK32,
        max_oracle_age=(w3 >> 32) & MASK32,
    )


@internal
@pure
def words(m: Market) -> (uint256, uint256, uint256, uint256):
    """
    @dev Returns the four words of a record (the inverse of `record`; the
         zero padding at offsets 110 and 124 is written as zero). Every
         field must fit its width: 8 bytes, `funding_index` 16 signed
         bytes, the bps fields 2 bytes (fees signed), the durations 4
         bytes.
    @param m The record.
    @return uint256 Bytes 0-31 (mark, index, oracle_time, halted_until).
    @return uint256 Bytes 32-63 (funding_index, last_funding_time, breaker_ref_time).
    @return uint256 Bytes 64-95 (tick, lot, max_position, breaker_ref_price).
    @return uint256 Bytes 96-127 (the bps fields and durations).
    """
    w0: uint256 = (m.mark_price << 192) | (m.index_price << 128) | (m.oracle_time << 64) | m.halted_until
    w1: uint256 = (
        ((self._unsigned(m.funding_index) & (2**128 - 1)) << 128)
        | (m.last_funding_time << 64)
        | m.breaker_ref_time
    )
    w2: uint256 = (m.tick_size << 192) | (m.lot_size << 128) | (m.max_position << 64) | m.breaker_ref_price
    w3: uint256 = (
        (m.imr_bps << 240)
        | (m.mmr_bps << 224)
        | ((self._unsigned(m.maker_fee_bps) & MASK16) << 208)
        | ((self._unsigned(m.taker_fee_bps) & MASK16) << 192)
        | (m.liquidation_penalty_bps << 176)
        | (m.breaker_bps << 160)
        | (m.max_funding_bps << 144)
        | (m.funding_interval << 96)
        | (m.breaker_window << 64)
        | (m.max_oracle_age << 32)
    )
    return w0, w1, w2, w3


@internal
@pure
def encode(m: Market) -> Bytes[RECORD_BYTES]:
    """
    @dev Encodes a record (the inverse of `record`, see `words`).
    @param m The record.
    @return Bytes[128] The 128 bytes of the record.
    """
    w0: uint256 = 0
    w1: uint256 = 0
    w2: uint256 = 0
    w3: uint256 = 0
    w0, w1, w2, w3 = self.words(m)
    return abi_encode(w0, w1, w2, w3)


@internal
@pure
def write(data: Bytes[MAX_VALUE_BYTES], market: uint256, m: Market) -> Bytes[MAX_VALUE_BYTES]:
    """
    @dev Returns the Markets value with record `market` replaced by `m`,
         or appended when `market` is the count (a new listing).
    @param data The Markets value.
    @param market The market id, at most `count(data)` and below `MAX_MARKETS`.
    @param m The new record.
    @return Bytes[2048] The new Markets value.
    """
    n: uint256 = len(data) // RECORD_BYTES
    records: uint256[4 * MAX_MARKETS] = empty(uint256[4 * MAX_MARKETS])
    for i: uint256 in range(4 * n, bound=4 * MAX_MARKETS):
        records[i] = extract32(data, 32 * i, output_type=uint256)
    at: uint256 = 4 * market
    records[at], records[at + 1], records[at + 2], records[at + 3] = self.words(m)
    return slice(abi_encode(records), 0, RECORD_BYTES * max(n, market + 1))
