"""The exchange's durable records, in the sequencer's SQLite log next to the transactions.

`orders` holds every order (and bundle) the exchange accepted: the signed bytes, its arrival
sequence number (time priority), and its status; `fills` indexes the Fill and BundleFill
transactions of the `txs` table by trader and order (the fill's price and size are read from the
transaction itself). They are written by `OrderWrites.apply` inside the same SQLite transaction
that logs the fills (`Staging.commit`), so an acknowledged order and its fills are durable
together: a kill -9 loses neither.

A resting order's remaining size is not stored: it is the order's size minus what its Order leaf
says is filled in the mempool's view (the chain plus pending transactions), so it is right after a
restart or an L1 revert without bookkeeping here.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sequencer.exchange.records import FillRecord
from sequencer.journal import OrderRecords
from sequencer.stf.codec import decode_tx
from sequencer.stf.errors import RollupError
from sequencer.stf.types import BundleFill, Fill
from sequencer.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    digest      BLOB PRIMARY KEY,       -- EIP-712 digest of the order (or bundle): its id
    seq         INTEGER NOT NULL,       -- arrival order: time priority in the book
    kind        TEXT NOT NULL,          -- order | bundle
    trader      BLOB NOT NULL,          -- the signer
    market      INTEGER NOT NULL,       -- market id (-1 for a bundle)
    raw         BLOB NOT NULL,          -- signed order (121 bytes) or the encoded BundleFill
    status      TEXT NOT NULL,          -- resting | filled | cancelled | expired | rejected | refused
    reason      TEXT,                   -- "code: message" for cancelled, rejected, refused
    received_ms INTEGER NOT NULL        -- wall clock at acceptance
);
CREATE INDEX IF NOT EXISTS orders_status ON orders(status, seq);
DROP INDEX IF EXISTS orders_trader; -- no query reads it; each insert paid for it (open orders are in memory)
CREATE TABLE IF NOT EXISTS fills (
    tx_seq      INTEGER NOT NULL,       -- txs.seq of the Fill or BundleFill
    leg         INTEGER NOT NULL,       -- 0 for a Fill; the leg index in a BundleFill
    maker       BLOB NOT NULL,
    taker       BLOB NOT NULL,
    maker_order BLOB NOT NULL,
    taker_order BLOB NOT NULL,
    PRIMARY KEY (tx_seq, leg)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fills_maker ON fills(maker, tx_seq);
CREATE INDEX IF NOT EXISTS fills_taker ON fills(taker, tx_seq);
CREATE INDEX IF NOT EXISTS fills_maker_order ON fills(maker_order);
CREATE INDEX IF NOT EXISTS fills_taker_order ON fills(taker_order);
"""


@dataclass(frozen=True, slots=True)
class OrderRow:
    """A row of `orders`."""

    digest: bytes
    """The order's digest."""
    seq: int
    """Arrival order."""
    kind: str
    """order or bundle."""
    trader: bytes
    """The signer."""
    market: int
    """Market id (-1 for a bundle)."""
    raw: bytes
    """The signed order, or the encoded BundleFill."""
    status: str
    """Stored status (`records.STORED_STATUSES`)."""
    reason: str | None
    """Why it was cancelled, rejected or refused."""


@dataclass(frozen=True, slots=True)
class FillRow:
    """A fill as logged: the transaction (raw, status) and which leg."""

    tx_hash: bytes
    """The transaction's hash."""
    tx_seq: int
    """The transaction's sequence number."""
    tx_status: str
    """pending, batched or dropped."""
    raw: bytes
    """The encoded Fill or BundleFill."""
    leg: int
    """0 for a Fill; the leg of a BundleFill."""
    maker_order: bytes
    """The maker order's digest."""
    taker_order: bytes
    """The taker order's (bundle's) digest."""


_ORDER_COLUMNS = "digest, seq, kind, trader, market, raw, status, reason"


@dataclass
class OrderWrites:
    """Order-log changes gathered while placing orders, written by `apply` inside the commit that
    logs the transactions they go with: one statement per kind of change, not one per change.

    Changes are kept so that applying them in that order gives what applying each in turn would:
    an order's status set after its insertion goes into the inserted row, and of several status
    changes of one order the last stands; fills moved to a new seq are moved before new fill rows
    are written."""

    inserts: dict[bytes, list[object]] = field(default_factory=dict)
    """New orders by digest: the row's values (status and reason updated in place)."""
    statuses: dict[bytes, tuple[str, str | None]] = field(default_factory=dict)
    """Orders logged before: their latest status and reason."""
    fills: list[tuple[bytes, int, bytes, bytes, bytes, bytes]] = field(default_factory=list)
    moves: list[tuple[bytes, int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.inserts or self.statuses or self.fills or self.moves)

    def insert(self, row: OrderRow) -> None:
        """A newly accepted order."""
        self.inserts[row.digest] = [
            row.digest,
            row.seq,
            row.kind,
            row.trader,
            row.market,
            row.raw,
            row.status,
            row.reason,
        ]

    def status(self, digest: bytes, status: str, reason: str | None = None) -> None:
        """An order's new status."""
        row = self.inserts.get(digest)
        if row is not None:
            row[6], row[7] = status, reason
        else:
            self.statuses[digest] = (status, reason)

    def fill(
        self, tx_hash: bytes, leg: int, maker: bytes, taker: bytes, maker_order: bytes, taker_order: bytes
    ) -> None:
        """A fill carried by the transaction `tx_hash` (its seq is known only at commit)."""
        self.fills.append((tx_hash, leg, maker, taker, maker_order, taker_order))

    def move_fill(self, tx_hash: bytes, old_seq: int) -> None:
        """A dropped fill transaction is pending again under a new seq: its rows follow it."""
        self.moves.append((tx_hash, old_seq))

    def apply(self, db: sqlite3.Connection, seqs: dict[bytes, int]) -> OrderRecords:
        """Write everything, with `seqs` mapping transaction hashes to their seqs; returns the
        rows written (what the set's log carries, `sequencer.journal`)."""
        records = OrderRecords(
            inserts=[tuple(row) for row in self.inserts.values()],  # type: ignore[misc]
            statuses=[(digest, status, reason) for digest, (status, reason) in self.statuses.items()],
            moves=[(seqs[tx_hash], old_seq) for tx_hash, old_seq in self.moves],
            fills=[(seqs[tx_hash], *rest) for tx_hash, *rest in self.fills],  # type: ignore[misc]
        )
        write_records(db, records)
        return records


def write_records(db: sqlite3.Connection, records: OrderRecords) -> None:
    """Write a commit's order records (inside the caller's SQLite transaction)."""
    if records.inserts:
        now = int(time.time() * 1000)
        db.executemany(
            f"INSERT INTO orders({_ORDER_COLUMNS}, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row, now) for row in records.inserts],
        )
    if records.statuses:
        db.executemany(
            "UPDATE orders SET status = ?, reason = ? WHERE digest = ?",
            [(status, reason, digest) for digest, status, reason in records.statuses],
        )
    for new_seq, old_seq in records.moves:
        db.execute("UPDATE fills SET tx_seq = ? WHERE tx_seq = ?", (new_seq, old_seq))
    if records.fills:
        db.executemany(
            "INSERT OR IGNORE INTO fills(tx_seq, leg, maker, taker, maker_order, taker_order)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            records.fills,
        )


class OrderLog:
    """Reads of the order tables (writes go through `OrderWrites` in a transaction commit)."""

    def __init__(self, store: Store) -> None:
        self.db = store.db
        self.db.executescript(SCHEMA)

    def get(self, digest: bytes) -> OrderRow | None:
        """The order with this digest, if the exchange ever accepted it."""
        row = self.db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE digest = ?", (digest,)).fetchone()
        return OrderRow(*row) if row else None

    def known(self, digests: Sequence[bytes]) -> set[bytes]:
        """Those of `digests` the exchange ever accepted (one query)."""
        if not digests:
            return set()
        marks = ", ".join("?" * len(digests))
        query = f"SELECT digest FROM orders WHERE digest IN ({marks})"
        return {r[0] for r in self.db.execute(query, list(digests)).fetchall()}

    def max_seq(self) -> int:
        """The highest arrival sequence number given so far (-1 if none)."""
        row = self.db.execute("SELECT MAX(seq) FROM orders").fetchone()
        return -1 if row[0] is None else int(row[0])

    def resting(self) -> list[OrderRow]:
        """Every order recorded as resting, in arrival order."""
        rows = self.db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status = 'resting' ORDER BY seq"
        ).fetchall()
        return [OrderRow(*r) for r in rows]

    def with_dropped_fills(self) -> list[OrderRow]:
        """Orders recorded as filled one of whose fills was dropped (after an L1 revert or at
        batch building it no longer applied): part of them is unfilled again."""
        rows = self.db.execute(
            f"SELECT DISTINCT {', '.join('o.' + c for c in _ORDER_COLUMNS.split(', '))}"
            " FROM txs t JOIN fills f ON f.tx_seq = t.seq"
            " JOIN orders o ON o.digest = f.maker_order OR o.digest = f.taker_order"
            " WHERE t.status = 'dropped' AND o.status = 'filled' AND o.kind = 'order'"
        ).fetchall()
        return [OrderRow(*r) for r in rows]

    def fills_of_order(self, digest: bytes) -> list[FillRow]:
        """Every fill of an order (as maker or taker), oldest first."""
        return self._fills(
            "SELECT tx_seq, leg, maker_order, taker_order FROM fills WHERE maker_order = ?"
            " UNION SELECT tx_seq, leg, maker_order, taker_order FROM fills WHERE taker_order = ?",
            (digest, digest),
            "ORDER BY f.tx_seq, f.leg",
        )

    def fills_of_account(self, account: bytes, limit: int, before_seq: int | None = None) -> list[FillRow]:
        """The latest `limit` fills of an account (as maker or taker), newest first; with
        `before_seq`, only those of transactions logged before it (to page back)."""
        bound = (1 << 62) if before_seq is None else before_seq
        return self._fills(
            "SELECT tx_seq, leg, maker_order, taker_order FROM fills WHERE maker = ? AND tx_seq < ?"
            " UNION SELECT tx_seq, leg, maker_order, taker_order FROM fills WHERE taker = ? AND tx_seq < ?",
            (account, bound, account, bound),
            f"ORDER BY f.tx_seq DESC, f.leg DESC LIMIT {int(limit)}",
        )

    def _fills(self, select: str, args: tuple[object, ...], order: str) -> list[FillRow]:
        rows = self.db.execute(
            "SELECT t.hash, t.seq, t.status, t.raw, f.leg, f.maker_order, f.taker_order"
            f" FROM ({select}) f JOIN txs t ON t.seq = f.tx_seq {order}",
            args,
        ).fetchall()
        return [FillRow(*r) for r in rows]


def fill_record(row: FillRow) -> FillRecord:
    """The fill a logged row stands for (price, size and sides read from the transaction)."""
    tx = decode_tx(row.raw)
    if isinstance(tx, Fill):
        maker, taker = tx.maker.order, tx.taker.order
        market, price, size, side, taker_address = (
            maker.market,
            maker.price,
            tx.size,
            taker.side,
            taker.trader,
        )
    elif isinstance(tx, BundleFill):
        leg = tx.bundle.legs[row.leg]
        maker = tx.makers[row.leg].order
        market, price, size, side, taker_address = (
            leg.market,
            maker.price,
            leg.size,
            leg.side,
            tx.bundle.trader,
        )
    else:
        raise ValueError("not a fill transaction")
    return FillRecord(
        tx_hash=row.tx_hash,
        seq=row.tx_seq,
        market=market,
        price=price,
        size=size,
        taker_side=side,
        maker=maker.trader,
        taker=taker_address,
        maker_order=row.maker_order,
        taker_order=row.taker_order,
        status=row.tx_status,
    )


def logged_reason(exc: RollupError) -> str:
    """The `reason` an order's record keeps for a refusal: `code: message`."""
    return f"{exc.code}: {exc}"
