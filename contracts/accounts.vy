# pragma version ~=0.4.3
"""
@title Account Values
@custom:contract-name accounts
@license MIT
@notice Library module: the Account leaf value of protocol.md section 2,
        `int(collateral) || word(nonce) || positions`, the positions being
        128-byte records `word(market) || int(size) || int(open_notional)
        || int(funding_snapshot)` sorted by market, at most
        `MAX_POSITIONS`, none with `size = 0`. An absent account is
        collateral 0, nonce 0, no position.
@dev The module holds no state: `import accounts`. A value of the wrong
     shape never occurs in an honest tree: the readers revert with
     "verifier: bad witness" on one (the challenge is malformed). The
     rules work on an `Account`, a fixed-size record whose first `count`
     positions are the open ones; `encode` writes it back.
"""


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


# @dev Bytes before the positions: collateral and nonce.
HEAD_BYTES: constant(uint256) = 64


# @dev Bytes of one position record.
POSITION_BYTES: constant(uint256) = 128


# @dev Most open positions of one account.
MAX_POSITIONS: constant(uint256) = 8


# @dev Longest Account value: the head and `MAX_POSITIONS` records.
MAX_ACCOUNT_BYTES: constant(uint256) = HEAD_BYTES + POSITION_BYTES * MAX_POSITIONS


# @dev The first 64 bytes of an Account value.
struct Head:
    collateral: int256
    nonce: uint256


# @dev One open position (protocol.md section 2, "Positions").
struct Position:
    market: uint256
    size: int256
    open_notional: int256
    funding_snapshot: int256


# @dev An account being worked on: positions `0 .. count-1` are open,
#      sorted by market; the others are zero.
struct Account:
    collateral: int256
    nonce: uint256
    count: uint256
    positions: Position[MAX_POSITIONS]


@internal
@pure
def read(data: Bytes[MAX_VALUE_BYTES]) -> (int256, uint256, uint256):
    """
    @dev Decodes an Account value's head and checks its shape: absent, or
         64 bytes plus at most `MAX_POSITIONS` records in strictly
         ascending market order with non-zero sizes.
    @param data The Account leaf value (empty = absent).
    @return int256 The collateral (signed).
    @return uint256 The nonce.
    @return uint256 The number of positions.
    """
    size: uint256 = len(data)
    if size == 0:
        return 0, 0, 0
    assert size >= HEAD_BYTES and (size - HEAD_BYTES) % POSITION_BYTES == 0, "verifier: bad witness"
    count: uint256 = (size - HEAD_BYTES) // POSITION_BYTES
    assert count <= MAX_POSITIONS, "verifier: bad witness"
    previous: uint256 = 0
    for i: uint256 in range(count, bound=MAX_POSITIONS):
        at: uint256 = HEAD_BYTES + POSITION_BYTES * i
        market: uint256 = extract32(data, at, output_type=uint256)
        assert i == 0 or market > previous, "verifier: bad witness"
        assert extract32(data, at + 32, output_type=int256) != 0, "verifier: bad witness"
        previous = market
    return extract32(data, 0, output_type=int256), extract32(data, 32, output_type=uint256), count


@internal
@pure
def position(data: Bytes[MAX_VALUE_BYTES], i: uint256) -> Position:
    """
    @dev Returns position `i` of an Account value already checked by `read`.
    @param data The Account leaf value.
    @param i The position's place, below the count `read` returned.
    @return Position The record.
    """
    at: uint256 = HEAD_BYTES + POSITION_BYTES * i
    return Position(
        market=extract32(data, at, output_type=uint256),
        size=extract32(data, at + 32, output_type=int256),
        open_notional=extract32(data, at + 64, output_type=int256),
        funding_snapshot=extract32(data, at + 96, output_type=int256),
    )


@internal
@pure
def decode(data: Bytes[MAX_VALUE_BYTES]) -> Account:
    """
    @dev Decodes an Account value (absent = collateral 0, nonce 0, no
         position) with the shape checks of `read`.
    @param data The Account leaf value (empty = absent).
    @return Account The working record.
    @dev Gas: the value is padded with zero records to its longest size
         and ABI-decoded in one copy (the records past `count` decode as
         zero), instead of one `extract32` per field.
    """
    size: uint256 = len(data)
    if size == 0:
        return empty(Account)
    assert size >= HEAD_BYTES and (size - HEAD_BYTES) % POSITION_BYTES == 0, "verifier: bad witness"
    count: uint256 = (size - HEAD_BYTES) // POSITION_BYTES
    assert count <= MAX_POSITIONS, "verifier: bad witness"
    a: Account = empty(Account)
    a.collateral, a.nonce, a.positions = abi_decode(
        slice(concat(data, abi_encode(empty(Position[MAX_POSITIONS]))), 0, MAX_ACCOUNT_BYTES),
        (int256, uint256, Position[MAX_POSITIONS]),
    )
    a.count = count
    previous: uint256 = 0
    for i: uint256 in range(count, bound=MAX_POSITIONS):
        market: uint256 = a.positions[i].market
        assert i == 0 or market > previous, "verifier: bad witness"
        assert a.positions[i].size != 0, "verifier: bad witness"
        previous = market
    return a


@internal
@pure
def encode(a: Account) -> Bytes[MAX_ACCOUNT_BYTES]:
    """
    @dev Returns the Account value of a working record: the head and its
         `count` open positions (the ABI encoding of the fixed record, cut
         after the last open position).
    @param a The record.
    @return Bytes[1088] `int(collateral) || word(nonce) || positions`.
    """
    return slice(abi_encode(a.collateral, a.nonce, a.positions), 0, HEAD_BYTES + POSITION_BYTES * a.count)


@internal
@pure
def encode_head(collateral: int256, nonce: uint256) -> Bytes[HEAD_BYTES]:
    """
    @dev Returns the value of an account without positions.
    @param collateral The collateral (signed).
    @param nonce The nonce.
    @return Bytes[64] `int(collateral) || word(nonce)`.
    """
    return abi_encode(collateral, nonce)
