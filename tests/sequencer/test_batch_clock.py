"""The batch clock follows the admission clocks of the transactions it takes, so a backlog
drained late is not found stale (acknowledged fills are never dropped for the builder's delay)."""

from __future__ import annotations

from pathlib import Path

from exchange_fixtures import ETH, NOW, TRADERS, acct, leaves, order
from stf_vectors import CONFIG, state_of

from sequencer.builder import batch_clock, build_batch
from sequencer.exchange import Exchange
from sequencer.mempool import NO_DEADLINE, Mempool, PendingTx
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.state import State
from sequencer.stf.types import Fill, L1Context, Transfer
from sequencer.store import Store

A, B = TRADERS[:2]
SPAN = 10


def pending(*clocks: int | tuple[int, int | None]) -> list[PendingTx]:
    """Pending transactions stamped with these admission clocks, as (clock, deadline) or a clock
    alone with the exchange's deadline `clock + SPAN` (the body does not matter here)."""
    tx = Transfer(A, B, 1, 0, 0, 0, 0)
    out = []
    for i, item in enumerate(clocks):
        clock, deadline = item if isinstance(item, tuple) else (item, item + SPAN)
        out.append(PendingTx(i + 1, bytes([i]) * 32, b"", tx, clock, deadline))
    return out


def test_batch_clock__old_backlog__runs_at_the_last_taken_admission_clock() -> None:
    chosen = batch_clock(pending(NOW, NOW, NOW + 3), tip=NOW - 5, upper=NOW + 300, max_txs=256)
    assert chosen == (NOW + 3, 3)


def test_batch_clock__clocks_wider_than_the_deadlines__cut_where_no_clock_suits_all() -> None:
    clocks = pending(NOW, NOW + 4, NOW + SPAN, NOW + SPAN + 1, NOW + 12)
    assert batch_clock(clocks, tip=0, upper=NOW + 300, max_txs=256) == (NOW + SPAN, 3)


def test_batch_clock__a_transfer_checked_at_its_clock__later_clocks_cut_after_it() -> None:
    # fill (deadline +SPAN), transfer (deadline = its clock), then a later fill: cut before it
    clocks = pending(NOW, (NOW + 1, None), NOW + 2)
    assert batch_clock(clocks, tip=0, upper=NOW + 300, max_txs=256) == (NOW + 1, 2)
    # an oracle update (no deadline) never cuts
    free = pending(NOW, (NOW + 5, NO_DEADLINE), NOW + 9)
    assert batch_clock(free, tip=0, upper=NOW + 300, max_txs=256) == (NOW + 9, 3)


def test_batch_clock__more_than_max_txs__takes_max_txs() -> None:
    assert batch_clock(pending(*[NOW] * 5), tip=0, upper=NOW + 1, max_txs=2) == (NOW, 2)


def test_batch_clock__bounds__never_before_the_tip_or_floor_never_after_upper() -> None:
    assert batch_clock(pending(NOW), tip=NOW + 7, upper=NOW + 9, max_txs=9) == (NOW + 7, 1)
    floored = batch_clock(pending(NOW), tip=0, upper=NOW + 9, max_txs=9, floor=NOW + 5)
    assert floored == (NOW + 5, 1)
    assert batch_clock(pending(NOW + 20), tip=0, upper=NOW + 9, max_txs=9) == (NOW + 9, 1)


def test_batch_clock__nothing_pending_or_clock_unknown__the_upper_clock() -> None:
    assert batch_clock([], tip=0, upper=NOW, max_txs=9) == (NOW, 0)
    assert batch_clock(pending((0, None), (0, None)), tip=0, upper=NOW, max_txs=9) == (NOW, 2)


def fills_admitted_at_now(tmp_path: Path, fills: int) -> tuple[State, Store, Mempool]:
    """Two funded traders' crossing orders admitted by the exchange at `NOW`: `fills` fills pending."""
    state = state_of(leaves({t: acct(1_000_000) for t in (A, B)}))
    store = Store(tmp_path / "seq.sqlite")
    mempool = Mempool(CONFIG, store, 1000)
    mempool.l2_time = lambda: NOW
    mempool.rebase(state, [], L1Context(0, {}), [])
    exchange = Exchange(CONFIG, mempool, clock=lambda: NOW, l2_floor=lambda: NOW)
    exchange.rebuild()
    for i in range(fills):
        exchange.place(order(0, ETH, SIDE_SELL, 100, 10, salt=i))
        exchange.place(order(1, ETH, SIDE_BUY, 100, 10, salt=i))
    return state, store, mempool


def test_backlog_drained_after_its_prices_went_stale_at_the_wall_clock__every_fill_batched(
    tmp_path: Path,
) -> None:
    state, store, mempool = fills_admitted_at_now(tmp_path, 5)
    backlog = list(mempool.pending)
    assert len(backlog) == 5 and all(isinstance(p.tx, Fill) and p.clock == NOW for p in backlog)
    wall = NOW + 300  # the builder gets to them five minutes later: the price (60 s limit) is stale now
    at_wall = build_batch(state, {}, backlog, CONFIG, l2_time=wall)
    assert at_wall is not None and not at_wall.txs and len(at_wall.skipped) == 5  # all stale
    assert all(p.deadline is not None and p.deadline >= NOW + SPAN for p in backlog)  # checked ahead
    l2_time, take = batch_clock(backlog, tip=NOW - 1, upper=wall, max_txs=256)
    built = build_batch(state, {}, backlog, CONFIG, l2_time=l2_time)
    assert (l2_time, take) == (NOW, 5)
    assert (
        built is not None
        and not built.skipped
        and [p.hash for p in built.included] == [p.hash for p in backlog]
    )
    store.close()


def test_rebase_after_the_prices_went_stale_at_the_wall_clock__backlog_kept_at_its_own_clocks(
    tmp_path: Path,
) -> None:
    state, store, mempool = fills_admitted_at_now(tmp_path, 3)
    before = [p.hash for p in mempool.pending]
    mempool.l2_time = lambda: NOW + 300  # e.g. another sequencer's batch arrives five minutes on
    mempool.rebase(state, [], L1Context(0, {}, l2_time=NOW - 1), [])
    assert [p.hash for p in mempool.pending] == before and len(before) == 3
    assert all(p.clock == NOW for p in mempool.pending)
    assert store.counts().get("dropped", 0) == 0
    built = build_batch(state, {}, mempool.pending, CONFIG, l2_time=NOW)
    assert built is not None and len(built.txs) == 3 and not built.skipped
    store.close()
