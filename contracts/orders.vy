# pragma version ~=0.4.3
"""
@title Orders
@custom:contract-name orders
@license MIT
@notice Library module: the order of protocol.md section 3 (`trader(20)
        || market(2) || side(1) || price(8) || size(8) || flags(1) ||
        expiry(8) || salt(8)`), its EIP-712 struct hash, the shape,
        tick, lot and liveness rules every order of a Fill or bundle
        passes, and the Order leaf value `word(filled) ||
        word(cancelled)`.
@dev The module holds no state: `import orders`. An order is decoded
     from two words of the transaction (`extract32` at its offset and 24
     bytes later), so the transaction is never copied into a callee.
"""

import eip712


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


# @dev Bytes of an encoded order and of an order with its signature.
ORDER_BYTES: constant(uint256) = 56
SIGNED_ORDER_BYTES: constant(uint256) = 121


# @dev Sides and flags.
SIDE_BUY: constant(uint256) = 0
SIDE_SELL: constant(uint256) = 1
FLAG_POST_ONLY: constant(uint256) = 1
FLAG_REDUCE_ONLY: constant(uint256) = 2
FLAG_IOC: constant(uint256) = 4
KNOWN_FLAGS: constant(uint256) = 7


MASK64: constant(uint256) = 2**64 - 1


# @dev A decoded order.
struct Order:
    trader: address
    market: uint256
    side: uint256
    price: uint256
    size: uint256
    flags: uint256
    expiry: uint256
    salt: uint256


@internal
@pure
def decode(head: uint256, tail: uint256) -> Order:
    """
    @dev Decodes an order from the word at its offset `b` (`head`, bytes
         `b .. b+31`) and the word at `b + 24` (`tail`, bytes `b+24 ..
         b+55`).
    @param head `extract32(tx, b)`.
    @param tail `extract32(tx, b + 24)`.
    @return Order The order.
    """
    return Order(
        trader=convert(convert(head >> 96, uint160), address),
        market=(head >> 80) & 65535,
        side=(head >> 72) & 255,
        price=(head >> 8) & MASK64,
        size=(tail >> 136) & MASK64,
        flags=(tail >> 128) & 255,
        expiry=(tail >> 64) & MASK64,
        salt=tail & MASK64,
    )


@internal
@pure
def struct_hash(o: Order) -> bytes32:
    """
    @dev Returns `hashStruct(Order)`.
    @param o The order.
    @return bytes32 The struct hash.
    """
    return keccak256(
        abi_encode(
            eip712.ORDER_TYPEHASH, o.trader, o.market, o.side, o.price, o.size, o.flags, o.expiry, o.salt
        )
    )


@internal
@pure
def check(o: Order, tick_size: uint256, lot_size: uint256, now: uint256) -> bool:
    """
    @dev The rules one order of a Fill or bundle passes in its market:
         side 0 or 1, flags of the three known bits and not both
         `POST_ONLY` and `IOC`, price a positive multiple of the tick,
         size a positive multiple of the lot, live at `now`.
    @param o The order.
    @param tick_size The market's tick (positive for a listed market).
    @param lot_size The market's lot (positive for a listed market).
    @param now The batch's `l2_time`.
    @return bool Whether the order passes.
    """
    if o.side > SIDE_SELL:
        return False
    if o.flags & ~KNOWN_FLAGS != 0 or (o.flags & FLAG_POST_ONLY != 0 and o.flags & FLAG_IOC != 0):
        return False
    if o.price == 0 or o.price % tick_size != 0 or o.size == 0 or o.size % lot_size != 0:
        return False
    return o.expiry == 0 or now < o.expiry


@internal
@pure
def leaf(data: Bytes[MAX_VALUE_BYTES]) -> (uint256, bool):
    """
    @dev Decodes an Order leaf value: absent (filled 0, not cancelled) or
         64 bytes; any other length is a bad witness. Cancelled is the
         last byte of the second word, as the state machine reads it.
    @param data The Order leaf value.
    @return uint256 The filled size.
    @return bool Whether the order is cancelled.
    """
    if len(data) == 0:
        return 0, False
    assert len(data) == 64, "verifier: bad witness"
    return extract32(data, 0, output_type=uint256), extract32(data, 32, output_type=uint256) & 255 != 0
