"""Shared builders for the order-book tests."""

from __future__ import annotations

from sequencer.matching import BookOrder, OrderFlags, Side

MARKET = 7
TICK = 5
LOT = 10
ALICE = b"\xaa" * 20
BOB = b"\xbb" * 20
CAROL = b"\xcc" * 20


def oid(n: int) -> bytes:
    """A 32-byte order id for order number `n`."""
    return n.to_bytes(32, "big")


def order(
    n: int,
    side: Side,
    price: int,
    size: int,
    trader: bytes = ALICE,
    flags: OrderFlags = OrderFlags.NONE,
    expiry: int = 0,
    *,
    seq: int | None = None,
    market: int = MARKET,
) -> BookOrder:
    """Order number `n` (its id and, unless given, its seq)."""
    return BookOrder(oid(n), trader, market, side, price, size, flags, expiry, n if seq is None else seq)
