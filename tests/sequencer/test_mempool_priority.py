"""Mempool capacity classes: ordinary transactions stop at `max_pending`, cancels, liquidations,
oracle updates and funding steps still get in up to `max_pending + reserve`; pending transactions
stay in admission order; a failed commit leaves the view as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from exchange_fixtures import ETH, NOW, TRADERS, acct, cancel, leaves, order, trader_key
from stf_vectors import CONFIG, state_of

from sequencer.errors import Overloaded
from sequencer.mempool import Mempool, is_priority
from sequencer.stf.constants import SIDE_BUY
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.state import get_account
from sequencer.stf.types import Funding, L1Context
from sequencer.store import Store

A, B = TRADERS[:2]


@pytest.fixture
def mempool(tmp_path: Path) -> Mempool:
    store = Store(tmp_path / "log.sqlite")
    pool = Mempool(CONFIG, store, max_pending=2, reserve=2)
    pool.l2_time = lambda: NOW + 50  # ETH's funding (every 60 s from NOW - 10) is due
    pool.rebase(state_of(leaves({A: acct(10_000)})), [], L1Context(0, {}), [])
    return pool


def transfer(nonce: int) -> object:
    return sign_transfer(trader_key(0), B, 10, nonce, CONFIG)


def test_submit__normal_capacity_full__transfers_refused_priority_types_use_the_reserve(
    mempool: Mempool,
) -> None:
    mempool.submit(transfer(0))  # type: ignore[arg-type]
    mempool.submit(transfer(1))  # type: ignore[arg-type]
    with pytest.raises(Overloaded):
        mempool.submit(transfer(2))  # type: ignore[arg-type]
    mempool.submit(Funding(ETH, NOW - 10))
    mempool.submit(cancel(1, order(1, ETH, SIDE_BUY, 100, 10)))
    with pytest.raises(Overloaded):
        mempool.submit(cancel(1, order(1, ETH, SIDE_BUY, 101, 10)))
    kinds = [type(p.tx).__name__ for p in mempool.pending]
    assert kinds == ["Transfer", "Transfer", "Funding", "Cancel"]  # admission order, never reordered
    assert [p.seq for p in mempool.pending] == sorted(p.seq for p in mempool.pending)


def test_is_priority__classes() -> None:
    assert is_priority(Funding(ETH, NOW - 10))
    assert is_priority(cancel(1, order(1, ETH, SIDE_BUY, 100, 10)))
    assert not is_priority(transfer(0))  # type: ignore[arg-type]


def test_staging__commit_fails__nothing_pending_view_unchanged(
    mempool: Mempool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = mempool.stage()
    stage.add(transfer(0))  # type: ignore[arg-type]
    assert get_account(mempool.view, A).collateral == 9_990  # staged writes are visible

    def broken(rows: object, **kw: object) -> list[int]:
        raise OSError("disk full")

    monkeypatch.setattr(mempool.store, "add_many", broken)
    with pytest.raises(OSError):
        stage.commit()
    assert get_account(mempool.view, A).collateral == 10_000
    assert len(mempool) == 0 and mempool.store.counts() == {}


def test_staging__commit_with_extra__written_in_the_same_transaction(mempool: Mempool) -> None:
    stage = mempool.stage()
    h = stage.add(transfer(0))  # type: ignore[arg-type]
    seen: dict[bytes, int] = {}

    def extra(db: object, seqs: dict[bytes, int]) -> None:
        seen.update(seqs)
        assert mempool.store.db.in_transaction

    seqs = stage.commit(extra)
    assert seen == seqs and set(seqs) == {h}
