"""The durable log's batched writes: sequence numbers as AUTOINCREMENT gives them (revived rows
included), order-log changes gathered per commit and written as their one-by-one application
would leave them, and checkpoints run by a background thread."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from sequencer.exchange.orderlog import OrderLog, OrderRow, OrderWrites
from sequencer.metrics import REGISTRY
from sequencer.store import Store


def row(digest: bytes, seq: int, status: str = "resting") -> OrderRow:
    return OrderRow(digest, seq, "order", b"\x01" * 20, 0, b"\x02" * 121, status, None)


def test_add_many__seqs_follow_the_highest_revived_rows_get_new_ones_in_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.sqlite")
    assert store.add_many([(b"a" * 32, b"A"), (b"b" * 32, b"B")]) == [1, 2]
    store.drop(1, "bad_nonce: reverted")
    seqs = store.add_many(
        [(b"c" * 32, b"C"), (b"a" * 32, b"A"), (b"d" * 32, b"D")], revived=frozenset({b"a" * 32})
    )
    assert seqs == [3, 4, 5]
    assert [(r.seq, r.raw, r.status) for r in store.pending()] == [
        (2, b"B", "pending"),
        (3, b"C", "pending"),
        (4, b"A", "pending"),
        (5, b"D", "pending"),
    ]
    assert store.add(b"e" * 32, b"E") == 6
    store.close()
    reopened = Store(tmp_path / "log.sqlite")  # the next seq is read again after a restart
    assert reopened.add(b"f" * 32, b"F") == 7
    reopened.close()


def test_add_many__clock__kept_with_each_row_and_revived_rows_take_the_new_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.sqlite")
    store.add_many([(b"a" * 32, b"A"), (b"b" * 32, b"B")], clock=1_000)
    store.drop(1, "bad_nonce: reverted")
    store.add_many([(b"a" * 32, b"A")], revived=frozenset({b"a" * 32}), clock=1_500)
    assert [(r.raw, r.clock) for r in store.pending()] == [(b"B", 1_000), (b"A", 1_500)]
    store.close()


def test_open__log_written_before_the_clock_column__column_added_rows_unknown_clock(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE txs (seq INTEGER PRIMARY KEY AUTOINCREMENT, hash BLOB NOT NULL UNIQUE,"
        " raw BLOB NOT NULL, received_ms INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'pending',"
        " batch_index INTEGER, reason TEXT);"
        " INSERT INTO txs(hash, raw, received_ms) VALUES (x'01', x'aa', 0);"
    )
    old.commit()
    old.close()
    store = Store(path)
    assert [(r.seq, r.raw, r.clock) for r in store.pending()] == [(1, b"\xaa", 0)]
    store.add_many([(b"c" * 32, b"C")], clock=7)
    assert [r.clock for r in store.pending()] == [0, 7]
    store.close()


def test_add_many__commit_fails__nothing_logged_and_seqs_not_consumed(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.sqlite")
    store.add_many([(b"a" * 32, b"A")])

    def fail(db: sqlite3.Connection, seqs: list[int]) -> None:
        raise OSError("disk full")

    try:
        store.add_many([(b"b" * 32, b"B")], extra=fail)
    except OSError:
        pass
    assert store.counts() == {"pending": 1}
    assert store.add_many([(b"c" * 32, b"C")]) == [2]
    store.close()


def test_order_writes__statuses_fold_into_inserts_last_status_wins(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.sqlite")
    log = OrderLog(store)
    first = OrderWrites()
    first.insert(row(b"1" * 32, 1))
    store.add_many([], extra=first.apply)
    writes = OrderWrites()
    writes.insert(row(b"2" * 32, 2))
    writes.status(b"2" * 32, "filled")  # inserted in this commit: goes into its row
    writes.status(b"1" * 32, "rejected", "insufficient_margin: x")
    writes.status(b"1" * 32, "cancelled", "cancelled: by its trader")  # the last one stands
    (seq,) = store.add_many([(b"t" * 32, b"T")], extra=writes.apply)
    writes2 = OrderWrites()
    writes2.fill(b"t" * 32, 0, b"m" * 20, b"k" * 20, b"1" * 32, b"2" * 32)
    store.add_many([], extra=lambda db, _: writes2.apply(db, {b"t" * 32: seq}))
    assert (log.get(b"1" * 32).status, log.get(b"1" * 32).reason) == (  # type: ignore[union-attr]
        "cancelled",
        "cancelled: by its trader",
    )
    assert log.get(b"2" * 32).status == "filled"  # type: ignore[union-attr]
    assert [(f.tx_seq, f.maker_order) for f in log.fills_of_order(b"2" * 32)] == [(seq, b"1" * 32)]
    assert log.known([b"1" * 32, b"3" * 32, b"2" * 32]) == {b"1" * 32, b"2" * 32}
    store.close()


def test_checkpointer__commits_do_not_checkpoint_the_background_thread_does(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.sqlite")
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    for i in range(50):
        store.add_many([(i.to_bytes(32, "big"), b"x" * 200)])
    assert store.checkpointer is not None
    deadline = time.monotonic() + 5
    while store.checkpointer.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.checkpointer.checkpoints > 0
    busy, frames, copied = store.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, copied) == (0, frames)
    store.close()
    assert Store(tmp_path / "log.sqlite", background_checkpoints=False).counts() == {"pending": 50}


def test_wal__steady_commits__the_writer_starts_it_over_once_long(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.sqlite")
    checkpointer = store.checkpointer
    assert checkpointer is not None
    checkpointer.restart_frames = 16
    deadline, i = time.monotonic() + 30, 0
    while store.wal_restarts < 2 and time.monotonic() < deadline:
        store.add_many([(i.to_bytes(32, "big"), b"x" * 200)])
        i += 1
    assert store.wal_restarts >= 2
    store.add_many([(b"\xff" * 32, b"x" * 200)])  # the first commit after a restart starts it over
    ((_, frames, _),) = store.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    assert frames < 16 * 4  # this commit's frames, not all of them
    i += 1
    assert store.db.execute("PRAGMA busy_timeout").fetchone() == (5000,)  # restored
    assert store.counts() == {"pending": i}
    store.close()


def test_wal_restart__another_connection_in_the_way__no_wait_still_due(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.sqlite")
    assert store.checkpointer is not None
    store.checkpointer.stop()  # its flag is set by hand here
    store.add_many([(b"\x01" * 32, b"x" * 200)])
    reader = sqlite3.connect(tmp_path / "log.sqlite", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM txs").fetchone()  # holds a snapshot of the WAL
    store.checkpointer.restart_due = True
    started = time.monotonic()
    assert not store.restart_wal_if_due()
    assert time.monotonic() - started < 0.5  # SQLite's busy handler would have waited seconds
    assert store.checkpointer.restart_due  # tried again after a later commit
    reader.execute("COMMIT")
    reader.close()
    store.checkpointer.restart_due = True
    assert store.restart_wal_if_due() and not store.checkpointer.restart_due
    store.close()


def test_drop__acknowledged_row__dropped_with_reason_and_counted_by_code(tmp_path: Path) -> None:
    store = Store(tmp_path / "seq.sqlite")
    seq = store.add(b"\x07" * 32, b"\x01raw")
    before = REGISTRY.get_sample_value("rollup_txs_dropped_total", {"code": "stale_oracle"}) or 0.0
    store.drop(seq, "stale_oracle: market 0: price of 1 is stale at 100")
    row = store.get(b"\x07" * 32)
    assert row is not None and row.status == "dropped" and row.reason.startswith("stale_oracle")
    assert REGISTRY.get_sample_value("rollup_txs_dropped_total", {"code": "stale_oracle"}) == before + 1
    store.close()


def test_drop_many__several_rows__each_dropped_with_its_reason_and_counted(tmp_path: Path) -> None:
    store = Store(tmp_path / "seq.sqlite")
    seqs = store.add_many([(bytes([i]) * 32, bytes([i])) for i in range(1, 5)])
    before = REGISTRY.get_sample_value("rollup_txs_dropped_total", {"code": "overfill"}) or 0.0
    commits = store.db.total_changes
    store.drop_many([(seqs[0], "overfill: order 1"), (seqs[2], "overfill: order 3")])
    assert store.db.total_changes - commits == 2  # those two rows only
    rows = [store.get(bytes([i]) * 32) for i in range(1, 5)]
    assert [(r.status, r.reason) for r in rows if r is not None] == [
        ("dropped", "overfill: order 1"),
        ("pending", None),
        ("dropped", "overfill: order 3"),
        ("pending", None),
    ]
    assert REGISTRY.get_sample_value("rollup_txs_dropped_total", {"code": "overfill"}) == before + 2
    store.drop_many([])  # nothing to drop: nothing changes
    assert store.db.total_changes - commits == 2
    store.close()


def _other_reader_count(path: Path) -> int:
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        return int(reader.execute("SELECT COUNT(*) FROM txs").fetchone()[0])
    finally:
        reader.close()


def test_working_copy__writes_read_at_once_committed_together_after_flush_s(tmp_path: Path) -> None:
    path = tmp_path / "member.sqlite"
    store = Store(path, durable=False)
    log_ = OrderLog(store)
    writes = OrderWrites()
    writes.insert(row(b"\x01" * 32, 1))
    assert store.add_many([(b"a" * 32, b"A")], lambda db, seqs: writes.apply(db, {})) == [1]
    store.replay([(2, b"b" * 32, b"B", 0)])
    store.mark_batched([1], 0)
    # this connection reads its own writes; another one sees them only once they are committed
    assert store.counts() == {"batched": 1, "pending": 1}
    assert log_.get(b"\x01" * 32) is not None
    assert store.db.in_transaction and _other_reader_count(path) == 0
    deadline = time.monotonic() + 5
    while store.db.in_transaction and time.monotonic() < deadline:
        store.set_meta("k", "v")  # the first unit of writes FLUSH_S after the first commits them
    assert not store.db.in_transaction
    assert _other_reader_count(path) == 2
    store.add_many([(b"c" * 32, b"C")])
    store.close()  # commits what is still open
    assert _other_reader_count(path) == 3


def test_working_copy__failed_unit__undone_alone_earlier_units_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "member.sqlite", durable=False)
    OrderLog(store)
    assert store.add_many([(b"a" * 32, b"A")]) == [1]

    def fails(db: sqlite3.Connection, seqs: list[int]) -> None:
        raise RuntimeError("the order records did not fit")

    with pytest.raises(RuntimeError, match="did not fit"):
        store.add_many([(b"b" * 32, b"B"), (b"c" * 32, b"C")], fails)
    assert store.db.in_transaction  # the open transaction stands, without the failed unit
    assert [r.raw for r in store.pending()] == [b"A"]
    assert store.add_many([(b"d" * 32, b"D")]) == [2]  # seqs as if the failed unit never was
    store.flush()
    assert not store.db.in_transaction
    assert [r.raw for r in store.pending()] == [b"A", b"D"]
    store.close()


def test_durable_log__every_unit_committed_at_once_a_failed_one_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / "lone.sqlite"
    store = Store(path)
    store.add_many([(b"a" * 32, b"A")])
    assert not store.db.in_transaction and _other_reader_count(path) == 1

    def fails(db: sqlite3.Connection, seqs: list[int]) -> None:
        raise RuntimeError("the order records did not fit")

    with pytest.raises(RuntimeError, match="did not fit"):
        store.add_many([(b"b" * 32, b"B")], fails)
    assert not store.db.in_transaction and _other_reader_count(path) == 1
    assert store.add_many([(b"c" * 32, b"C")]) == [2]
    store.close()
