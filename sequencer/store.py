"""The sequencer's durable log (SQLite in WAL mode).

A transaction is acknowledged only after its row is committed here, so a crash (kill -9) of the
process loses nothing it acknowledged: on restart the node reloads every transaction that is not
yet in an L1 batch and admits it again. WAL with `synchronous=NORMAL` makes a commit durable
against a process crash (the log is in the OS page cache); `synchronous=FULL` (the `fsync`
setting) also covers a machine crash at the cost of one fsync per commit.

Checkpoints (copying the WAL back into the database file, with its fsyncs) run in a background
thread on a connection of their own (`Checkpointer`), not in the committing thread: a commit then
only appends to the WAL, and the event loop never waits for a checkpoint's disk writes.
Checkpoints have nothing to do with durability: a committed transaction is in the WAL.

A member of a sequencer set keeps its log as a working copy (`durable=False`): the set's
replicated log holds every commit before it is answered, and the member's file is deleted and
rebuilt from that log at every start, so nothing in the file has to survive a crash. Its writes
then go into one SQLite transaction that stays open for up to `FLUSH_S` (each unit of writes a
savepoint in it, undone alone if it fails), and are committed together: a page that several
commits change (an index's page takes many random keys) is written once per flush instead of
once per commit. The connection reads its own uncommitted writes, so the node sees no
difference; another connection sees them at the next flush.

Under steady commits the WAL does not start over from its beginning by itself (every passive
checkpoint copies everything, and still the writer keeps appending), so it would grow for as long
as the load lasts. Starting it over takes a RESTART checkpoint, which holds the writer's lock
while it copies the last frames and syncs. Run from the background thread, a commit that met it
waited on SQLite's busy handler, which sleeps longer after each try, and longer still whenever
that thread was not scheduled. So the thread only says when the WAL is long (`restart_due`,
65,536 frames: 256 MB), and the committing thread runs the RESTART itself right after a commit,
without waiting on any lock (`Store.restart_wal_if_due`): it copies what the last passive
checkpoint left and syncs, then goes on.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from contracts.logs import get_logger
from sequencer.metrics import TXS_DROPPED

log = get_logger("store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS txs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT, -- admission order
    hash        BLOB NOT NULL UNIQUE,               -- keccak of the encoded transaction
    raw         BLOB NOT NULL,                      -- the encoded transaction (protocol section 3)
    received_ms INTEGER NOT NULL,                   -- wall clock at admission
    status      TEXT NOT NULL DEFAULT 'pending',    -- pending | batched | dropped
    batch_index INTEGER,                            -- L1 batch that holds it, once posted
    reason      TEXT,                               -- why it was dropped (after an L1 revert)
    clock       INTEGER NOT NULL DEFAULT 0          -- the batch clock it was admitted at (0: unknown)
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
    clock: int = 0
    """The batch clock it was admitted at (`PendingTx.clock`; 0 if unknown): a restarted node
    re-checks it at that clock, as the running node would have."""


FLUSH_S = 0.25
"""Longest a working copy's writes stay uncommitted while more writes come (`Store.flush`)."""
BUSY_TIMEOUT_MS = 5_000
"""How long the log's connection waits for a lock another connection holds (SQLite's busy
handler); the WAL restart it runs itself does not wait at all."""


class Checkpointer:
    """A thread that checkpoints a WAL database from its own connection (module docstring).

    Every `interval` seconds it runs a PASSIVE checkpoint, which never blocks the writer. Once
    the WAL holds more than `restart_frames` frames it sets `restart_due`, and the writer starts
    the WAL over (`Store.restart_wal_if_due`)."""

    def __init__(self, path: str, *, interval: float = 0.1, restart_frames: int = 65_536) -> None:
        self.path = path
        self.interval = interval
        self.restart_frames = restart_frames
        self.checkpoints = 0
        """Checkpoints run so far."""
        self.restart_due = False
        """The WAL held more than `restart_frames` frames at the last checkpoint."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after its current checkpoint)."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=0")
        try:
            while not self._stop.wait(self.interval):
                try:
                    ((busy, frames, _),) = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.OperationalError:  # busy, or the database went away: next turn
                    continue
                self.checkpoints += 1
                self.restart_due = not busy and frames > self.restart_frames
        finally:
            db.close()


class Store:
    """The SQLite log of acknowledged transactions."""

    def __init__(
        self,
        path: str | Path,
        *,
        fsync: bool = False,
        background_checkpoints: bool = True,
        durable: bool = True,
    ) -> None:
        """Open (or create) the log at `path`; `durable=False` makes it a working copy whose
        writes are committed every `FLUSH_S` (module docstring)."""
        self.path = str(path)
        self.durable = durable
        self._opened = 0.0
        """When a working copy's open transaction began (monotonic seconds)."""
        self.db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        if not durable:
            # a savepoint keeps the pages it changes until it is released: in memory, not a file
            self.db.execute("PRAGMA temp_store=MEMORY")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(txs)")}
        if "clock" not in columns:  # a log written before the column existed
            self.db.execute("ALTER TABLE txs ADD COLUMN clock INTEGER NOT NULL DEFAULT 0")
        self._top_seq: int | None = None
        """The highest seq given (None: not read yet)."""
        self.wal_restarts = 0
        """Times this connection started the WAL over (`restart_wal_if_due`)."""
        self.checkpointer: Checkpointer | None = None
        """Runs the checkpoints (None: SQLite runs them in the committing thread)."""
        if background_checkpoints:
            self.db.execute("PRAGMA wal_autocheckpoint=0")
            self.checkpointer = Checkpointer(self.path)

    def close(self) -> None:
        """Commit what is uncommitted, and close the database."""
        self.flush()
        if self.checkpointer is not None:
            self.checkpointer.stop()
            self.checkpointer = None
        self.db.close()

    def flush(self) -> None:
        """Commit a working copy's open transaction, if any (a durable log has none between
        calls)."""
        if self.db.in_transaction:
            self.db.execute("COMMIT")
            self.restart_wal_if_due()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One unit of writes: its own transaction in a durable log, a savepoint in the open
        transaction of a working copy (committed once it is `FLUSH_S` old). If the body raises,
        its writes, and only they, are undone."""
        db = self.db
        if self.durable:
            db.execute("BEGIN")
        else:
            if not db.in_transaction:
                db.execute("BEGIN")
                self._opened = time.monotonic()
            db.execute("SAVEPOINT unit")
        try:
            yield db
            db.execute("COMMIT" if self.durable else "RELEASE unit")
        except BaseException:
            if not db.in_transaction:  # SQLite ended the transaction itself (an I/O error, a full disk)
                if not self.durable:
                    log.error("store_uncommitted_writes_lost")
            elif self.durable:
                db.execute("ROLLBACK")
            else:
                db.execute("ROLLBACK TO unit")
                db.execute("RELEASE unit")
            raise
        if self.durable:
            self.restart_wal_if_due()
        elif time.monotonic() - self._opened >= FLUSH_S:
            self.flush()

    def add(self, tx_hash: bytes, raw: bytes) -> int:
        """Append one admitted transaction durably; returns its sequence number."""
        (seq,) = self.add_many([(tx_hash, raw)])
        return seq

    def add_many(
        self,
        rows: list[tuple[bytes, bytes]],
        extra: Callable[[sqlite3.Connection, list[int]], None] | None = None,
        revived: frozenset[bytes] = frozenset(),
        clock: int = 0,
    ) -> list[int]:
        """Append several admitted transactions in one commit, admitted at the batch clock
        `clock`; returns their sequence numbers.

        A transaction whose hash is in `revived` was logged before and dropped: it becomes pending
        again under a new sequence number (after every other), so the log's order stays the
        admission order. `extra(db, seqs)` runs inside the same SQLite transaction after the
        inserts, so what it writes (e.g. order records) is durable exactly when the transactions
        are.
        """
        now = int(time.time() * 1000)
        try:
            with self._writing() as db:
                seqs = self._add_rows(db, rows, extra, revived, clock, now)
        except BaseException:
            self._top_seq = None
            raise
        if seqs:
            self._top_seq = seqs[-1]
        return seqs

    def _add_rows(
        self,
        db: sqlite3.Connection,
        rows: list[tuple[bytes, bytes]],
        extra: Callable[[sqlite3.Connection, list[int]], None] | None,
        revived: frozenset[bytes],
        clock: int,
        now: int,
    ) -> list[int]:
        """The rows of `add_many`, inside its unit of writes."""
        # Sequence numbers in row order after the highest so far, as AUTOINCREMENT would give
        # them (rows are never deleted, so MAX(seq) is the highest ever used), written by ONE
        # statement for the new rows instead of one per row.
        top = self._top_seq
        if top is None:  # the only writer of seqs is this method: read it once
            top = db.execute("SELECT MAX(seq) FROM txs").fetchone()[0] or 0
        seqs = list(range(top + 1, top + 1 + len(rows)))
        inserts: list[tuple[int, bytes, bytes, int, int]] = []
        for seq, (tx_hash, raw) in zip(seqs, rows, strict=True):
            if tx_hash in revived:
                cur = db.execute(
                    "UPDATE txs SET seq = ?, status = 'pending', batch_index = NULL, reason = NULL,"
                    " received_ms = ?, clock = ? WHERE hash = ? AND status = 'dropped'",
                    (seq, now, clock, tx_hash),
                )
                assert cur.rowcount == 1
            else:
                inserts.append((seq, tx_hash, raw, now, clock))
        if inserts:
            db.executemany(
                "INSERT INTO txs(seq, hash, raw, received_ms, clock) VALUES (?, ?, ?, ?, ?)", inserts
            )
        if extra is not None:
            extra(db, seqs)
        return seqs

    def replay(
        self,
        rows: list[tuple[int, bytes, bytes, int]],
        extra: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Write transactions logged by the leader of the sequencer set, pending under the
        sequence numbers it gave them, in one commit with `extra(db)` (its order records). Each
        row is (seq, hash, raw, clock). A transaction logged here before (dropped, or the same
        one again) takes the new row's place."""
        now = int(time.time() * 1000)
        try:
            with self._writing() as db:
                db.executemany(
                    "INSERT INTO txs(seq, hash, raw, received_ms, clock) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT(hash) DO UPDATE SET seq = excluded.seq, status = 'pending',"
                    " batch_index = NULL, reason = NULL, clock = excluded.clock",
                    [(seq, h, raw, now, clock) for seq, h, raw, clock in rows],
                )
                if extra is not None:
                    extra(db)
        finally:
            self._top_seq = None

    def top_seq(self) -> int:
        """The highest sequence number logged so far (0 if none)."""
        return int(self.db.execute("SELECT MAX(seq) FROM txs").fetchone()[0] or 0)

    def restart_wal_if_due(self) -> bool:
        """Start the WAL over if the checkpointer found it long (module docstring); only if no
        other connection is in the way at this moment (no waiting). Returns whether it did."""
        checkpointer = self.checkpointer
        if checkpointer is None or not checkpointer.restart_due:
            return False
        db = self.db
        try:
            db.execute("PRAGMA busy_timeout=0")
            try:
                ((busy, _, _),) = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            finally:
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.OperationalError:  # another connection in the way: after a later commit
            return False
        except sqlite3.Error as exc:  # never fails the commit before it, which stands
            log.warning("wal_restart_failed", error=str(exc))
            return False
        if not busy:
            checkpointer.restart_due = False
            self.wal_restarts += 1
        return not busy

    def has(self, tx_hash: bytes) -> bool:
        """Whether a transaction with this hash was ever acknowledged."""
        return self.db.execute("SELECT 1 FROM txs WHERE hash = ?", (tx_hash,)).fetchone() is not None

    def get(self, tx_hash: bytes) -> StoredTx | None:
        """Look a transaction up by hash."""
        row = self.db.execute(
            "SELECT seq, hash, raw, status, batch_index, reason, clock FROM txs WHERE hash = ?", (tx_hash,)
        ).fetchone()
        return StoredTx(*row) if row else None

    def pending(self) -> list[StoredTx]:
        """Every acknowledged transaction not yet in an L1 batch, in admission order."""
        rows = self.db.execute(
            "SELECT seq, hash, raw, status, batch_index, reason, clock FROM txs"
            " WHERE status = 'pending' ORDER BY seq"
        ).fetchall()
        return [StoredTx(*r) for r in rows]

    def unfinished(self) -> list[StoredTx]:
        """Every pending or batched transaction, in admission order (for reconciling with L1)."""
        rows = self.db.execute(
            "SELECT seq, hash, raw, status, batch_index, reason, clock FROM txs"
            " WHERE status IN ('pending', 'batched') ORDER BY seq"
        ).fetchall()
        return [StoredTx(*r) for r in rows]

    def mark_pending(self, seqs: list[int]) -> None:
        """Put batched transactions back to pending (their batch is not on L1 any more)."""
        with self._writing() as db:
            db.executemany(
                "UPDATE txs SET status = 'pending', batch_index = NULL WHERE seq = ?", [(s,) for s in seqs]
            )

    def mark_batched(self, seqs: list[int], batch_index: int) -> None:
        """Record that these transactions are in L1 batch `batch_index`."""
        with self._writing() as db:
            db.executemany(
                "UPDATE txs SET status = 'batched', batch_index = ? WHERE seq = ?",
                [(batch_index, s) for s in seqs],
            )

    def mark_batched_hashes(self, hashes: list[bytes], batch_index: int) -> None:
        """Record that the logged transactions with these hashes are in L1 batch `batch_index`,
        whatever their status (a batch that came back with an L1 reorganisation holds them)."""
        with self._writing() as db:
            db.executemany(
                "UPDATE txs SET status = 'batched', batch_index = ?, reason = NULL WHERE hash = ?",
                [(batch_index, h) for h in hashes],
            )

    def unbatch_from(self, batch_index: int) -> int:
        """Return the transactions of reverted batches (index >= batch_index) to pending."""
        with self._writing() as db:
            cur = db.execute(
                "UPDATE txs SET status = 'pending', batch_index = NULL"
                " WHERE status = 'batched' AND batch_index >= ?",
                (batch_index,),
            )
        return cur.rowcount

    def drop(self, seq: int, reason: str) -> None:
        """Mark a pending transaction as dropped (it no longer applies after an L1 revert)."""
        self.drop_many([(seq, reason)])

    def drop_many(self, drops: list[tuple[int, str]]) -> None:
        """Mark pending transactions as dropped, (seq, reason) each, in one commit (a deep revert
        may drop thousands at once)."""
        if not drops:
            return
        with self._writing() as db:
            db.executemany(
                "UPDATE txs SET status = 'dropped', reason = ? WHERE seq = ?", [(r, s) for s, r in drops]
            )
        for _, reason in drops:
            TXS_DROPPED.labels(code=reason.split(":", 1)[0]).inc()

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
        with self._writing() as db:
            db.execute(
                "INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                (key, value),
            )
