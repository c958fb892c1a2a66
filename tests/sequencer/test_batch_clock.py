"""The batch clock follows the admission clocks of the transactions it takes, so a backlog
drained late is not found stale (acknowledged fills are never dropped for the builder's delay)."""

from __future__ import annotations

from pathlib import Path

from exchange_fixtures import ETH, NOW, TRADERS, acct, leaves, order
from stf_vectors import CONFIG, state_of

from sequencer.builder import batch_clock, build_batch
from sequencer.exchange import Exchange
from sequencer.mempool import Mempool, PendingTx
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.types import Fill, L1Context, Transfer
from sequencer.store import Store

A, B = TRADERS[:2]
SPAN = 10


def pending(*clocks: int) -> list[PendingTx]:
    """Pending transactions stamped with these admission clocks (the body does not matter here)."""
    tx = Transfer(A, B, 1, 0, 0, 0, 0)
    return [PendingTx(i + 1, bytes([i]) * 32, b"", tx, clock) for i, clock in enumerate(clocks)]


def test_batch_clock__old_backlog__runs_at_the_last_taken_admission_clock() -> None:
    assert batch_clock(pending(NOW, NOW, NOW + 3), tip=NOW - 5, upper=NOW + 300, span=SPAN, max_txs=256) == (
        NOW + 3,
        3,
    )


def test_batch_clock__clocks_wider_than_the_span__cut_where_one_is_past_the_first_plus_span() -> None:
    clocks = pending(NOW, NOW + 4, NOW + SPAN, NOW + SPAN + 1, NOW + 12)
    assert batch_clock(clocks, tip=0, upper=NOW + 300, span=SPAN, max_txs=256) == (NOW + SPAN, 3)


def test_batch_clock__more_than_max_txs__takes_max_txs() -> None:
    assert batch_clock(pending(*[NOW] * 5), tip=0, upper=NOW + 1, span=SPAN, max_txs=2) == (NOW, 2)


def test_batch_clock__bounds__never_before_the_tip_or_floor_never_after_upper() -> None:
    assert batch_clock(pending(NOW), tip=NOW + 7, upper=NOW + 9, span=SPAN, max_txs=9) == (NOW + 7, 1)
    assert batch_clock(pending(NOW), tip=0, upper=NOW + 9, span=SPAN, max_txs=9, floor=NOW + 5) == (
        NOW + 5,
        1,
    )
    assert batch_clock(pending(NOW + 20), tip=0, upper=NOW + 9, span=SPAN, max_txs=9) == (NOW + 9, 1)


def test_batch_clock__nothing_pending_or_clock_unknown__the_upper_clock() -> None:
    assert batch_clock([], tip=0, upper=NOW, span=SPAN, max_txs=9) == (NOW, 0)
    assert batch_clock(pending(0, 0), tip=0, upper=NOW, span=SPAN, max_txs=9) == (NOW, 2)


def test_backlog_drained_after_its_prices_went_stale_at_the_wall_clock__every_fill_batched(
    tmp_path: Path,
) -> None:
    state = state_of(leaves({t: acct(1_000_000) for t in (A, B)}))
    store = Store(tmp_path / "seq.sqlite")
    mempool = Mempool(CONFIG, store, 1000)
    mempool.l2_time = lambda: NOW
    mempool.rebase(state, [], L1Context(0, {}), [])
    exchange = Exchange(CONFIG, mempool, clock=lambda: NOW, l2_floor=lambda: NOW)
    exchange.rebuild()
    for i in range(5):
        exchange.place(order(0, ETH, SIDE_SELL, 100, 10, salt=i))
        exchange.place(order(1, ETH, SIDE_BUY, 100, 10, salt=i))
    backlog = list(mempool.pending)
    assert len(backlog) == 5 and all(isinstance(p.tx, Fill) and p.clock == NOW for p in backlog)
    wall = NOW + 300  # the builder gets to them five minutes later: the price (60 s limit) is stale now
    at_wall = build_batch(state, {}, backlog, CONFIG, l2_time=wall)
    assert at_wall is None  # at the wall clock every fill is stale: none of them applies
    l2_time, take = batch_clock(backlog, tip=NOW - 1, upper=wall, span=SPAN, max_txs=256)
    built = build_batch(state, {}, backlog, CONFIG, l2_time=l2_time)
    assert (l2_time, take) == (NOW, 5)
    assert (
        built is not None
        and not built.skipped
        and [p.hash for p in built.included] == [p.hash for p in backlog]
    )
    store.close()
