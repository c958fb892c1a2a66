"""The exchange's stream messages: fills and book changes as the node's `Stream` publishes them
(JSON objects; addresses and digests as 0x-hex)."""

from __future__ import annotations

from typing import Any

from sequencer.exchange.records import FillRecord
from sequencer.matching import BookEvent, OrderAdded, OrderBook, OrderReduced
from sequencer.wire import wire_int


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def book_message(event: BookEvent) -> dict[str, Any]:
    """The stream message of a book change."""
    if isinstance(event, OrderAdded):
        o = event.order
        return {
            "type": "book",
            "change": "added",
            "market": o.market,
            "order": _hex(o.order_id),
            "trader": _hex(o.trader),
            "side": int(o.side),
            "price": wire_int(o.price),
            "size": wire_int(o.size),
        }
    message: dict[str, Any] = {
        "type": "book",
        "change": "reduced" if isinstance(event, OrderReduced) else "removed",
        "market": event.market,
        "order": _hex(event.order_id),
        "trader": _hex(event.trader),
        "side": int(event.side),
        "price": wire_int(event.price),
        "size": wire_int(event.size),
    }
    if isinstance(event, OrderReduced):
        message["remaining"] = wire_int(event.remaining)
    else:
        message["reason"] = event.reason.name.lower()
    return message


def fill_message(record: FillRecord) -> dict[str, Any]:
    """The stream message of a fill (its seq given by the commit)."""
    return {
        "type": "fill",
        "market": record.market,
        "price": wire_int(record.price),
        "size": wire_int(record.size),
        "taker_side": record.taker_side,
        "maker": _hex(record.maker),
        "taker": _hex(record.taker),
        "maker_order": _hex(record.maker_order),
        "taker_order": _hex(record.taker_order),
        "tx_hash": _hex(record.tx_hash),
        "seq": record.seq,
    }


def snapshot_message(market_id: int, book: OrderBook) -> dict[str, Any]:
    """The stream message of a whole book's depth (after a rebuild)."""
    bids, asks = book.depth(1 << 30)
    return {
        "type": "book_snapshot",
        "market": market_id,
        "bids": [[wire_int(p), wire_int(q)] for p, q in bids],
        "asks": [[wire_int(p), wire_int(q)] for p, q in asks],
    }
