"""The sequencer's durable log (SQLite in WAL mode).

A transaction is acknowledged only after its row is committed here, so a crash (kill -9) of the
process loses nothing it acknowledged: on restart the node reloads every transaction that is not
yet in an L1 batch and admits it again. WAL with `synchronous=NORMAL` makes a commit durable
against a process crash (the log is in the OS page cache); `synchronous=FULL` (the `fsync`
setting) also covers a machine crash at the cost of one fsync per commit.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS txs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT, -- admission order
    hash        BLOB NOT NULL UNIQUE,               -- keccak of the encoded transaction
    raw         BLOB NOT NULL,                      -- the encoded transaction (protocol section 3)
    received_ms INTEGER NOT NULL,                   -- wall clock at admission
    status      TEXT NOT NULL DEFAULT 'pending',    -- pending | batched | dropped
    batch_index INTEGER,                            -- L1 batch that holds it, once posted
    reason      TEXT                                -- why it was dropped (after an L1 revert)
);
CREATE INDEX IF NOT EXISTS txs_status ON txs(status, seq);
CREATE TABLE IF NOT EXISTS meta (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredTx:
    """A row of the log."""

    seq: int
    """Admission order (monotonic)."""
    hash: bytes
    """keccak of `raw`."""
    raw: bytes
    """The encoded transaction."""
    status: str
    """pending, batched or dropped."""
    batch_index: int | None
    """The L1 batch that holds it, once posted."""
    reason: str | None = None
    """Why it was dropped, if it was."""


class Store:
    """The SQLite log of acknowledged transactions."""

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def add(self, tx_hash: bytes, raw: bytes) -> int:
        """Append one admitted transaction durably; returns its sequence number."""
        cur = self.db.execute(
            "INSERT INTO txs(hash, raw, received_ms) VALUES (?, ?, ?)",
            (tx_hash, raw, int(time.time() * 1000)),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def add_many(
        self,
        rows: list[tuple[bytes, bytes]],
        extra: Callable[[sqlite3.Connection, list[int]], None] | None = None,
        revived: frozenset[bytes] = frozenset(),
    ) -> list[int]:
        """Append several admitted transactions in one commit; returns their sequence numbers.

        A transaction whose hash is in `revived` was logged before and dropped: it becomes pending
        again under a new sequence number (after every other), so the log's order stays the
        admission order. `extra(db, seqs)` runs inside the same SQLite transaction after the
        inserts, so what it writes (e.g. order records) is durable exactly when the transactions
        are.
        """
        now = int(time.time() * 1000)
        seqs: list[int] = []
        self.db.execute("BEGIN")
        try:
            for tx_hash, raw in rows:
                if tx_hash in revived:
                    self.db.execute(
                        "UPDATE txs SET seq = (SELECT MAX(seq) FROM txs) + 1, status = 'pending',"
                        " batch_index = NULL, reason = NULL, received_ms = ?"
                        " WHERE hash = ? AND status = 'dropped'",
                        (now, tx_hash),
                    )
                    row = self.db.execute("SELECT seq, status FROM txs WHERE hash = ?", (tx_hash,)).fetchone()
                    assert row is not None and row[1] == "pending"
                    seqs.append(row[0])
                    continue
                cur = self.db.execute(
                    "INSERT INTO txs(hash, raw, received_ms) VALUES (?, ?, ?)", (tx_hash, raw, now)
                )
                assert cur.lastrowid is not None
                seqs.append(cur.lastrowid)
            if extra is not None:
                extra(self.db, seqs)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return seqs

    def has(self, tx_hash: bytes) -> bool:
        """Whether a transaction with this hash was ever acknowledged."""
        return self.db.execute("SELECT 1 FROM txs WHERE hash = ?", (tx_hash,)).fetchone() is not None

    def get(self, tx_hash: bytes) -> StoredTx | None:
        """Look a transaction up by hash."""
        row = self.db.execute(
            "SELECT seq, hash, raw, status, batch_index, reason FROM txs WHERE hash = ?", (tx_hash,)
        ).fetchone()
        return StoredTx(*row) if row else None

    def pending(self) -> list[StoredTx]:
        """Every acknowledged transaction not yet in an L1 batch, in admission order."""
        rows = self.db.execute(
            "SELECT seq, hash, raw, status, batch_index, reason FROM txs"
            " WHERE status = 'pending' ORDER BY seq"
        ).fetchall()
        return [StoredTx(*r) for r in rows]

    def unfinished(self) -> list[StoredTx]:
        """Every pending or batched transaction, in admission order (for reconciling with L1)."""
        rows = self.db.execute(
            "SELECT seq, hash, raw, status, batch_index, reason FROM txs"
            " WHERE status IN ('pending', 'batched') ORDER BY seq"
        ).fetchall()
        return [StoredTx(*r) for r in rows]

    def mark_pending(self, seqs: list[int]) -> None:
        """Put batched transactions back to pending (their batch is not on L1 any more)."""
        self.db.execute("BEGIN")
        self.db.executemany(
            "UPDATE txs SET status = 'pending', batch_index = NULL WHERE seq = ?", [(s,) for s in seqs]
        )
        self.db.execute("COMMIT")

    def mark_batched(self, seqs: list[int], batch_index: int) -> None:
        """Record that these transactions are in L1 batch `batch_index`."""
        self.db.execute("BEGIN")
        self.db.executemany(
            "UPDATE txs SET status = 'batched', batch_index = ? WHERE seq = ?",
            [(batch_index, s) for s in seqs],
        )
        self.db.execute("COMMIT")

    def unbatch_from(self, batch_index: int) -> int:
        """Return the transactions of reverted batches (index >= batch_index) to pending."""
        cur = self.db.execute(
            "UPDATE txs SET status = 'pending', batch_index = NULL"
            " WHERE status = 'batched' AND batch_index >= ?",
            (batch_index,),
        )
        return cur.rowcount

    def drop(self, seq: int, reason: str) -> None:
        """Mark a pending transaction as dropped (it no longer applies after an L1 revert)."""
        self.db.execute("UPDATE txs SET status = 'dropped', reason = ? WHERE seq = ?", (reason, seq))

    def counts(self) -> dict[str, int]:
        """Number of transactions per status."""
        rows = self.db.execute("SELECT status, COUNT(*) FROM txs GROUP BY status").fetchall()
        return {status: n for status, n in rows}

    def get_meta(self, key: str) -> str | None:
        """Read a metadata value."""
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Write a metadata value."""
        self.db.execute(
            "INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", (key, value)
        )
