"""The exchange core over a real mempool and SQLite log on an exchange state (no L1): admission,
matching with a state-machine check per fill, durability across a reopen, cancels, bundles,
overload, expiry, events."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from exchange_fixtures import (
    BTC,
    ETH,
    ETH_PARAMS,
    NOW,
    TRADERS,
    acct,
    cancel,
    leaves,
    markets_with,
    order,
    price,
    trader_key,
)
from stf_vectors import CONFIG, state_of

from sequencer.errors import NoMatch, Overloaded
from sequencer.exchange import MAX_OPEN_ORDERS, Exchange, OrderStatus
from sequencer.mempool import Mempool, logged_pending
from sequencer.stf.codec import encode_markets
from sequencer.stf.constants import FLAG_IOC, FLAG_POST_ONLY, FLAG_REDUCE_ONLY, SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import order_digest, sign_bundle
from sequencer.stf.errors import (
    BadSignature,
    InsufficientMargin,
    OrderCancelled,
    OrderExpired,
    PriceOffTick,
    ReduceOnly,
    RollupError,
    UnknownMarket,
)
from sequencer.stf.keys import markets_key
from sequencer.stf.state import State, get_account, get_order_state
from sequencer.stf.types import Bundle, Cancel, Fill, L1Context, Leg, OracleUpdate, SignedOrder
from sequencer.store import Store
from sequencer.stream import Stream

A, B, C, D = TRADERS[:4]
RICH = 1_000_000
"""Collateral that margins any size used here."""


class Harness:
    """A chain state, a store, a mempool rebased on the state, an exchange, and its stream."""

    def __init__(
        self,
        path: Path,
        state: State,
        *,
        max_pending: int = 1000,
        reserve: int = 10,
        max_open_orders: int = MAX_OPEN_ORDERS,
    ) -> None:
        self.path = path
        self.state = state
        self.max_pending = max_pending
        self.reserve = reserve
        self.max_open_orders = max_open_orders
        self.now = NOW
        """The wall clock (and batch clock) of the node."""
        self.stream = Stream()
        self.queue = self.stream.subscribe()
        self.open()

    def open(self) -> None:
        """(Re)open the log and rebuild mempool and books from it, as a restarted node does."""
        self.store = Store(self.path)
        self.mempool = Mempool(CONFIG, self.store, self.max_pending, self.reserve)
        self.mempool.l2_time = lambda: self.now
        self.mempool.rebase(self.state, [], L1Context(0, {}), logged_pending(self.store))
        self.exchange = Exchange(
            CONFIG,
            self.mempool,
            stream=self.stream,
            clock=lambda: self.now,
            l2_floor=lambda: NOW,
            max_open_orders=self.max_open_orders,
        )
        self.exchange.rebuild()

    def reopen(self) -> None:
        self.store.close()
        self.open()

    def messages(self) -> list[dict[str, Any]]:
        out = []
        while not self.queue.empty():
            message = self.queue.get_nowait()
            assert message is not None
            out.append(message)
        return out


def priced(mark: int, market: int = ETH, at: int = NOW) -> OracleUpdate:
    """The committee prices `market` at `mark` at clock `at` (3 of its 5 members sign)."""
    return OracleUpdate(market, tuple(price(i, market, mark, mark, at) for i in range(3)))


def funded(*traders: bytes, collateral: int = RICH) -> State:
    return state_of(leaves({t: acct(collateral) for t in traders}))


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "seq.sqlite", funded(A, B, C, D))
    yield harness
    harness.store.close()


def digest(signed: SignedOrder) -> bytes:
    return order_digest(signed.order, CONFIG)


def fills_in_mempool(h: Harness) -> list[Fill]:
    return [p.tx for p in h.mempool.pending if isinstance(p.tx, Fill)]


# ---- placing ---------------------------------------------------------------------------


def test_place__nothing_crosses__rests_recorded_and_in_the_book(h: Harness) -> None:
    ask = order(0, ETH, SIDE_SELL, 101, 50)
    out = h.exchange.place(ask)
    assert (out.digest, out.status, out.fills, out.resting) == (digest(ask), OrderStatus.RESTING, (), 50)
    assert h.exchange.books[ETH].depth(5) == ((), ((101, 50),))
    assert len(h.mempool) == 0
    details = h.exchange.order_details(digest(ask))
    assert details is not None and (details.status, details.resting, details.filled) == ("resting", 50, 0)


def test_place__crossing__fill_planned_by_the_stf_and_logged_with_the_order(h: Harness) -> None:
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    h.exchange.place(ask)
    bid = order(1, ETH, SIDE_BUY, 102, 30)
    out = h.exchange.place(bid)
    assert out.status == OrderStatus.FILLED and out.resting == 0
    (fill,) = out.fills
    assert (fill.price, fill.size, fill.maker, fill.taker) == (100, 30, A, B)
    assert (fill.maker_order, fill.taker_order) == (digest(ask), digest(bid))
    (tx,) = fills_in_mempool(h)
    assert tx == Fill(ask, bid, 30)
    assert h.store.get(fill.tx_hash) is not None and h.store.get(fill.tx_hash).seq == fill.seq  # type: ignore[union-attr]
    view = h.mempool.view
    assert get_account(view, B).positions[0].size == 30 and get_account(view, A).positions[0].size == -30
    assert get_order_state(view, digest(ask)).filled == 30
    assert h.exchange.books[ETH].depth(5) == ((), ((100, 20),))
    maker = h.exchange.order_details(digest(ask))
    assert maker is not None and maker.status == OrderStatus.PARTIALLY_FILLED and maker.resting == 20
    assert [f.tx_hash for f in maker.fills] == [fill.tx_hash]


def test_reopen__past_its_orders_expiry_and_the_oracle_age__fill_kept_at_its_admission_clock(
    h: Harness,
) -> None:
    # a restart (kill -9, then a start later) re-checks an acknowledged fill at the clock it was
    # admitted at: at the restart's own clock its orders have expired and the price is stale
    ask = order(0, ETH, SIDE_SELL, 100, 10, expiry=NOW + 30)
    h.exchange.place(ask)
    (fill,) = h.exchange.place(order(1, ETH, SIDE_BUY, 100, 10, expiry=NOW + 30)).fills
    row = h.store.get(fill.tx_hash)
    assert row is not None and row.status == "pending"
    h.now = NOW + 3600
    h.reopen()
    assert [(p.hash, p.clock) for p in h.mempool.pending] == [(fill.tx_hash, NOW)]
    row = h.store.get(fill.tx_hash)
    assert row is not None and (row.status, row.reason) == ("pending", None)
    assert get_account(h.mempool.view, B).positions[0].size == 10


def test_place__taker_larger_than_the_book__partly_filled_and_resting(h: Harness) -> None:
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 20))
    h.exchange.place(order(2, ETH, SIDE_SELL, 101, 20))
    out = h.exchange.place(order(1, ETH, SIDE_BUY, 101, 60))
    assert out.status == OrderStatus.PARTIALLY_FILLED
    assert [(f.price, f.size) for f in out.fills] == [(100, 20), (101, 20)]
    assert out.resting == 20
    assert h.exchange.books[ETH].depth(5) == (((101, 20),), ())


def test_place__ioc__remainder_cancelled_never_rests(h: Harness) -> None:
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 20))
    out = h.exchange.place(order(1, ETH, SIDE_BUY, 100, 50, flags=FLAG_IOC))
    assert out.status == OrderStatus.CANCELLED and [f.size for f in out.fills] == [20] and out.resting == 0
    assert len(h.exchange.books[ETH]) == 0


def test_place__maker_without_margin__maker_rejected_and_next_maker_fills(tmp_path: Path) -> None:
    h = Harness(tmp_path / "s.sqlite", state_of(leaves({A: acct(5_100), B: acct(RICH), C: acct(RICH)})))
    poor = order(0, ETH, SIDE_SELL, 100, 500)  # order margin 5,000 at 100
    h.exchange.place(poor)
    h.exchange.place(order(2, ETH, SIDE_SELL, 101, 500))
    # a mark of 110 admitted outside the exchange (as the keeper's own transactions are), before
    # a sweep follows it: selling 300 at 100 leaves A equity 2,130, below its margin 3,300
    h.mempool.submit(priced(110))
    out = h.exchange.place(order(1, ETH, SIDE_BUY, 101, 300))
    assert [(f.maker, f.price, f.size) for f in out.fills] == [(C, 101, 300)]
    details = h.exchange.order_details(digest(poor))
    assert details is not None and details.status == OrderStatus.REJECTED
    assert details.reason is not None and details.reason.startswith("insufficient_margin")
    assert digest(poor) not in h.exchange.resting
    removed = [
        m for m in h.messages() if m.get("change") == "removed" and m["order"] == "0x" + digest(poor).hex()
    ]
    assert removed and removed[0]["reason"] == "rejected"
    h.store.close()


def test_place__taker_without_margin_after_some_fills__fills_stand_rest_refused(tmp_path: Path) -> None:
    # B has 2,200: the first fill (20 @ 100: margin 200 + fee) passes, 200 more would need 2,200+.
    h = Harness(tmp_path / "s.sqlite", state_of(leaves({A: acct(RICH), B: acct(2_200), C: acct(RICH)})))
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 20))
    h.exchange.place(order(2, ETH, SIDE_SELL, 100, 200))
    bid = order(1, ETH, SIDE_BUY, 100, 220)
    out = h.exchange.place(bid)
    assert out.status == OrderStatus.REFUSED and out.code == "insufficient_margin"
    assert [(f.maker, f.size) for f in out.fills] == [(A, 20)]
    assert h.exchange.books[ETH].depth(5) == ((), ((100, 200),))  # C's order keeps its place
    details = h.exchange.order_details(digest(bid))
    assert details is not None and details.status == OrderStatus.REFUSED and details.filled == 20
    h.store.close()


def test_place__taker_without_margin_no_fill__refused_and_nothing_recorded(tmp_path: Path) -> None:
    # B's 2,000 margins 200 @ 100 as an open order, but not the fill's taker fee (40) on top
    h = Harness(tmp_path / "s.sqlite", state_of(leaves({A: acct(RICH), B: acct(2_000)})))
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 200))
    bid = order(1, ETH, SIDE_BUY, 100, 200)
    with pytest.raises(InsufficientMargin):
        h.exchange.place(bid)
    assert h.exchange.order_details(digest(bid)) is None
    assert len(h.mempool) == 0 and h.exchange.books[ETH].depth(5) == ((), ((100, 200),))
    h.store.close()


@pytest.mark.parametrize(
    ("signed", "error"),
    [
        (order(1, 5, SIDE_BUY, 100, 10), UnknownMarket),
        (order(1, BTC, SIDE_BUY, 5001, 1), PriceOffTick),  # BTC's tick is 5
        (order(1, ETH, SIDE_BUY, 100, 10, expiry=NOW + 5), OrderExpired),  # within the margin
        (
            SignedOrder(order(1, ETH, SIDE_BUY, 100, 10).order, order(2, ETH, SIDE_BUY, 100, 10).sig),
            BadSignature,
        ),
    ],
)
def test_place__refused_on_admission__typed_error_nothing_changes(
    h: Harness, signed: SignedOrder, error: type[RollupError]
) -> None:
    with pytest.raises(error):
        h.exchange.place(signed)
    assert h.exchange.order_details(digest(signed)) is None and len(h.mempool) == 0


def test_place__cancelled_order__refused_order_cancelled(h: Harness) -> None:
    bid = order(1, ETH, SIDE_BUY, 100, 10)
    h.mempool.submit(cancel(1, bid))
    with pytest.raises(OrderCancelled):
        h.exchange.place(bid)


def test_place__same_order_twice__second_answer_is_the_first_state(h: Harness) -> None:
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    h.exchange.place(ask)
    h.exchange.place(order(1, ETH, SIDE_BUY, 100, 10))
    again = h.exchange.place(ask)
    assert again.known and again.status == OrderStatus.PARTIALLY_FILLED and again.resting == 40
    assert len(again.fills) == 1 and len(h.exchange.books[ETH]) == 1


def test_place__reduce_only__capped_at_the_position_and_refused_when_it_would_increase(
    tmp_path: Path,
) -> None:
    state = state_of(leaves({A: acct(RICH, 0, (ETH, 30, 3_000)), B: acct(RICH)}))
    h = Harness(tmp_path / "s.sqlite", state)
    h.exchange.place(order(1, ETH, SIDE_BUY, 100, 100))
    out = h.exchange.place(order(0, ETH, SIDE_SELL, 100, 100, flags=FLAG_REDUCE_ONLY))
    assert [f.size for f in out.fills] == [30] and out.status == OrderStatus.FILLED
    assert get_account(h.mempool.view, A).positions == ()
    with pytest.raises(ReduceOnly):
        h.exchange.place(order(0, ETH, SIDE_SELL, 100, 10, flags=FLAG_REDUCE_ONLY, salt=1))
    h.store.close()


def test_place__post_only_crossing__refused(h: Harness) -> None:
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 10))
    with pytest.raises(RollupError) as info:
        h.exchange.place(order(1, ETH, SIDE_BUY, 100, 10, flags=FLAG_POST_ONLY))
    assert info.value.code == "post_only_would_cross"


def test_place__maker_expiring_within_the_margin__never_becomes_a_fill(h: Harness) -> None:
    short_lived = order(0, ETH, SIDE_SELL, 100, 10, expiry=NOW + 60)
    h.exchange.place(short_lived)
    h.exchange.clock = lambda: NOW + 55  # now + margin is past its expiry
    h.mempool.l2_time = lambda: NOW + 30
    out = h.exchange.place(order(1, ETH, SIDE_BUY, 100, 10, expiry=0))
    assert out.fills == () and out.status == OrderStatus.RESTING
    details = h.exchange.order_details(digest(short_lived))
    assert details is not None and details.status == OrderStatus.EXPIRED
    assert fills_in_mempool(h) == []


def test_sweep__expired_orders__leave_the_book_and_are_recorded(h: Harness) -> None:
    bid = order(1, ETH, SIDE_BUY, 90, 10, expiry=NOW + 100)
    h.exchange.place(bid)
    h.exchange.sweep()
    assert len(h.exchange.books[ETH]) == 1
    h.exchange.clock = lambda: NOW + 95
    h.exchange.sweep()
    assert len(h.exchange.books[ETH]) == 0
    details = h.exchange.order_details(digest(bid))
    assert details is not None and details.status == OrderStatus.EXPIRED


# ---- one commit, durability, restart ---------------------------------------------------


def test_place_many__many_orders__one_durable_commit_per_item_results(h: Harness, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    commits = []
    real = h.store.add_many

    def counting(rows, **kw):  # type: ignore[no-untyped-def]
        commits.append(len(rows))
        return real(rows, **kw)

    monkeypatch.setattr(h.store, "add_many", counting)
    orders = [order(0, ETH, SIDE_SELL, 100 + i, 10, salt=i) for i in range(5)]
    orders.append(order(1, ETH, SIDE_BUY, 102, 30))
    orders.append(order(1, 9, SIDE_BUY, 102, 30))
    results = h.exchange.place_many(orders)
    assert commits == [3]  # three fills, and six order records, in one commit
    assert [r.status if not isinstance(r, RollupError) else r.code for r in results] == [
        *["resting"] * 5,
        "filled",
        "unknown_market",
    ]


def test_reopen__after_fills_and_rests__books_and_orders_rebuilt_from_the_log(h: Harness) -> None:
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 50))
    h.exchange.place(order(0, ETH, SIDE_SELL, 101, 50, salt=1))
    h.exchange.place(order(1, ETH, SIDE_BUY, 100, 30))
    h.exchange.place(order(2, ETH, SIDE_BUY, 95, 40))
    h.exchange.place(order(3, BTC, SIDE_SELL, 5000, 3))
    before = {m: (b.depth(10), list(b.orders(0)), list(b.orders(1))) for m, b in h.exchange.books.items()}
    pending = [p.hash for p in h.mempool.pending]
    h.reopen()
    after = {m: (b.depth(10), list(b.orders(0)), list(b.orders(1))) for m, b in h.exchange.books.items()}
    assert after == before
    assert [p.hash for p in h.mempool.pending] == pending
    # time priority survives: a new order at 100 queues behind the partly filled one
    h.exchange.place(order(2, ETH, SIDE_SELL, 100, 10, salt=9))
    out = h.exchange.place(order(3, ETH, SIDE_BUY, 100, 20))
    assert [(f.maker, f.size) for f in out.fills] == [(A, 20)]


def test_commit_fails__nothing_logged_view_and_books_as_before(h: Harness, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 50))
    books = h.exchange.books[ETH].depth(10)

    def broken(rows, **kw):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(h.store, "add_many", broken)
    with pytest.raises(OSError):
        h.exchange.place(order(1, ETH, SIDE_BUY, 100, 30))
    monkeypatch.undo()
    assert h.exchange.books[ETH].depth(10) == books
    assert get_order_state(h.mempool.view, digest(order(0, ETH, SIDE_SELL, 100, 50))).filled == 0
    assert len(h.mempool) == 0 and h.store.counts() == {}


def test_rebuild__a_fill_dropped_after_a_revert__taker_back_in_the_book_maker_rejected(h: Harness) -> None:
    ask = order(0, ETH, SIDE_SELL, 100, 30)
    bid = order(1, ETH, SIDE_BUY, 100, 30)
    h.exchange.place(ask)
    (fill,) = h.exchange.place(bid).fills
    # the chain moved under the mempool (say a revert): A can no longer margin the sale
    h.state = state_of(leaves({A: acct(10), B: acct(RICH)}))
    h.mempool.rebase(h.state, [], L1Context(0, {}), [])
    assert h.store.get(fill.tx_hash).status == "dropped"  # type: ignore[union-attr]
    h.exchange.rebuild()
    taker = h.exchange.order_details(digest(bid))
    maker = h.exchange.order_details(digest(ask))
    assert taker is not None and maker is not None
    assert (taker.status, taker.resting, taker.filled) == (OrderStatus.RESTING, 30, 0)
    assert maker.status == OrderStatus.REJECTED and maker.reason.startswith("insufficient_margin")  # type: ignore[union-attr]
    assert [f.status for f in taker.fills] == ["dropped"]
    assert h.exchange.books[ETH].depth(5) == (((100, 30),), ())
    h.reopen()
    assert h.exchange.books[ETH].depth(5) == (((100, 30),), ())


def test_rebuild__dropped_fill_applies_again__the_same_fill_revived_under_a_new_seq(h: Harness) -> None:
    ask = order(0, ETH, SIDE_SELL, 100, 30)
    bid = order(1, ETH, SIDE_BUY, 100, 30)
    h.exchange.place(ask)
    (fill,) = h.exchange.place(bid).fills
    rich = h.state
    h.mempool.rebase(state_of(leaves({A: acct(10), B: acct(RICH)})), [], L1Context(0, {}), [])
    assert h.store.get(fill.tx_hash).status == "dropped"  # type: ignore[union-attr]
    # the chain moves back (the revert's other transactions come back): A can trade again
    h.mempool.rebase(rich, [], L1Context(0, {}), [])
    h.exchange.rebuild()
    row = h.store.get(fill.tx_hash)
    assert row is not None and row.status == "pending" and row.seq > fill.seq
    assert [p.hash for p in h.mempool.pending] == [fill.tx_hash]
    for d in (digest(ask), digest(bid)):
        details = h.exchange.order_details(d)
        assert details is not None and details.status == OrderStatus.FILLED
        assert [(f.tx_hash, f.seq, f.status) for f in details.fills] == [(fill.tx_hash, row.seq, "pending")]
    assert len(h.exchange.books[ETH]) == 0


# ---- cancels ---------------------------------------------------------------------------


def test_cancel__resting_order__out_of_the_book_cancel_admitted_durably(h: Harness) -> None:
    bid = order(1, ETH, SIDE_BUY, 100, 10)
    h.exchange.place(bid)
    out = h.exchange.cancel(cancel(1, bid))
    assert out.was_resting and out.removed == 10 and out.digest == digest(bid)
    assert len(h.exchange.books[ETH]) == 0
    assert isinstance(h.mempool.pending[-1].tx, Cancel) and h.store.get(out.tx_hash) is not None
    assert get_order_state(h.mempool.view, digest(bid)).cancelled
    assert h.exchange.order_details(digest(bid)).status == OrderStatus.CANCELLED  # type: ignore[union-attr]
    again = h.exchange.cancel(cancel(1, bid))  # the same Cancel again: its first acknowledgement
    assert (again.tx_hash, again.seq, again.was_resting) == (out.tx_hash, out.seq, False)
    h.reopen()
    assert len(h.exchange.books[ETH]) == 0


def test_cancel__order_never_seen__admitted_not_resting(h: Harness) -> None:
    elsewhere = order(1, ETH, SIDE_BUY, 100, 10)
    out = h.exchange.cancel(cancel(1, elsewhere))
    assert not out.was_resting and out.removed == 0
    with pytest.raises(OrderCancelled):
        h.exchange.place(elsewhere)


def test_cancel__signed_by_another_key__bad_signature(h: Harness) -> None:
    bid = order(1, ETH, SIDE_BUY, 100, 10)
    h.exchange.place(bid)
    forged = Cancel(bid.order, cancel(2, order(2, ETH, SIDE_BUY, 100, 10)).sig)
    with pytest.raises(BadSignature):
        h.exchange.cancel(forged)
    assert len(h.exchange.books[ETH]) == 1


def test_resync__fill_admitted_as_raw_bytes__book_takes_the_filled_part_off(h: Harness) -> None:
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    h.exchange.place(ask)
    elsewhere = order(2, ETH, SIDE_BUY, 100, 20)  # matched off-book, sent as a Fill
    h.mempool.submit(Fill(ask, elsewhere, 20))
    h.exchange.resync([digest(ask), digest(elsewhere)])
    assert h.exchange.books[ETH].depth(5) == ((), ((100, 30),))
    h.mempool.submit(Fill(ask, order(3, ETH, SIDE_BUY, 100, 30), 30))
    h.exchange.resync([digest(ask)])
    assert len(h.exchange.books[ETH]) == 0
    assert h.exchange.order_details(digest(ask)).status == OrderStatus.FILLED  # type: ignore[union-attr]


def test_place_many__same_order_twice_in_one_request__second_is_known(h: Harness) -> None:
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    first, second = h.exchange.place_many([ask, ask])
    assert not isinstance(first, RollupError) and not isinstance(second, RollupError)
    assert (first.known, second.known, second.status, second.resting) == (False, True, "resting", 50)


# ---- overload --------------------------------------------------------------------------


def test_overload__orders_refused_cancels_use_the_reserve(tmp_path: Path) -> None:
    h = Harness(tmp_path / "s.sqlite", funded(A, B, C, D), max_pending=2, reserve=2)
    for i in range(2):
        h.exchange.place(order(0, ETH, SIDE_SELL, 100, 10, salt=i))
        h.exchange.place(order(1, ETH, SIDE_BUY, 100, 10, salt=i))
    assert len(h.mempool) == 2
    with pytest.raises(Overloaded):
        h.exchange.place(order(2, ETH, SIDE_BUY, 90, 10))
    resting = order(2, ETH, SIDE_BUY, 80, 10)
    h.mempool.max_pending = 3
    h.exchange.place(resting)  # rests: no transaction
    h.mempool.max_pending = 2
    h.exchange.cancel(cancel(2, resting))
    h.exchange.cancel(cancel(3, order(3, ETH, SIDE_BUY, 80, 10)))
    with pytest.raises(Overloaded):
        h.exchange.cancel(cancel(3, order(3, ETH, SIDE_BUY, 81, 10)))
    assert len(h.mempool) == 4
    h.store.close()


def test_overload__during_matching__fills_so_far_stand_rest_refused_overloaded(tmp_path: Path) -> None:
    h = Harness(tmp_path / "s.sqlite", funded(A, B, C, D), max_pending=1, reserve=0)
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 10))
    h.exchange.place(order(2, ETH, SIDE_SELL, 100, 10))
    out = h.exchange.place(order(1, ETH, SIDE_BUY, 100, 20))
    assert out.status == OrderStatus.REFUSED and out.code == "overloaded" and len(out.fills) == 1
    h.store.close()


# ---- bundles ---------------------------------------------------------------------------


def signed_bundle(i: int, legs: list[Leg], expiry: int = 0, salt: int = 0) -> tuple[Bundle, Any]:
    bundle = Bundle(TRADERS[i], tuple(legs), expiry, salt)
    return bundle, sign_bundle(trader_key(i), bundle, CONFIG)


def test_bundle__one_maker_per_leg__filled_whole_makers_reduced(h: Harness) -> None:
    eth_ask = order(0, ETH, SIDE_SELL, 100, 50)
    btc_bid = order(2, BTC, SIDE_BUY, 5000, 5)
    h.exchange.place(eth_ask)
    h.exchange.place(order(3, ETH, SIDE_SELL, 99, 10))  # better price, too small for the leg
    h.exchange.place(btc_bid)
    bundle, sig = signed_bundle(1, [Leg(ETH, SIDE_BUY, 100, 30), Leg(BTC, SIDE_SELL, 5000, 5)])
    out = h.exchange.place_bundle(bundle, sig)
    assert [(f.maker_order, f.price, f.size) for f in out.fills] == [
        (digest(eth_ask), 100, 30),
        (digest(btc_bid), 5000, 5),
    ]
    assert h.exchange.books[ETH].depth(5) == ((), ((99, 10), (100, 20)))
    assert len(h.exchange.books[BTC]) == 0
    assert get_account(h.mempool.view, B).positions[0].size == 30
    assert h.exchange.place_bundle(bundle, sig).known
    h.reopen()
    assert h.exchange.books[ETH].depth(5) == ((), ((99, 10), (100, 20)))


def test_bundle__a_leg_nobody_can_fill__refused_no_match_nothing_changes(h: Harness) -> None:
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 50))
    bundle, sig = signed_bundle(1, [Leg(ETH, SIDE_BUY, 100, 30), Leg(BTC, SIDE_SELL, 5000, 5)])
    with pytest.raises(NoMatch):
        h.exchange.place_bundle(bundle, sig)
    assert len(h.mempool) == 0 and h.exchange.books[ETH].depth(5) == ((), ((100, 50),))


def test_bundle__maker_without_margin__rejected_and_the_next_one_used(tmp_path: Path) -> None:
    h = Harness(tmp_path / "s.sqlite", state_of(leaves({A: acct(560), B: acct(RICH), C: acct(RICH)})))
    h.exchange.place(order(0, ETH, SIDE_SELL, 99, 50))  # order margin 500 + its loss 50 at 100
    h.exchange.place(order(2, ETH, SIDE_SELL, 100, 50))
    h.mempool.submit(priced(110))  # not followed yet: selling 30 at 99 leaves A below its margin
    bundle, sig = signed_bundle(1, [Leg(ETH, SIDE_BUY, 100, 30)])
    out = h.exchange.place_bundle(bundle, sig)
    assert [f.maker for f in out.fills] == [C]
    assert h.exchange.books[ETH].depth(5) == ((), ((100, 20),))
    h.store.close()


# ---- events ----------------------------------------------------------------------------


def test_stream__fill_and_book_changes_published_after_the_commit(h: Harness) -> None:
    h.messages()
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    h.exchange.place(ask)
    out = h.exchange.place(order(1, ETH, SIDE_BUY, 100, 20))
    messages = h.messages()
    assert [m["type"] for m in messages] == ["book", "fill", "book"]
    assert messages[0]["change"] == "added" and messages[0]["size"] == 50
    fill = messages[1]
    assert fill["tx_hash"] == "0x" + out.fills[0].tx_hash.hex() and fill["seq"] == out.fills[0].seq
    assert messages[2] == {
        "type": "book",
        "change": "reduced",
        "market": ETH,
        "order": "0x" + digest(ask).hex(),
        "trader": "0x" + A.hex(),
        "side": SIDE_SELL,
        "price": 100,
        "size": 20,
        "remaining": 30,
    }


def test_sync__market_params_changed__books_rebuilt_with_the_new_lot(tmp_path: Path) -> None:
    h = Harness(tmp_path / "s.sqlite", funded(A, B))
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 30))
    h.exchange.place(order(0, ETH, SIDE_SELL, 100, 20, salt=1))
    h.mempool.overlay.set(
        markets_key(), encode_markets(markets_with(ETH, params=replace(ETH_PARAMS, lot_size=20)))
    )
    book = h.exchange.book(ETH)
    assert book is not None and book.lot_size == 20 and book.depth(5) == ((), ((100, 20),))
    assert h.exchange.order_details(digest(order(0, ETH, SIDE_SELL, 100, 30))).status == "rejected"  # type: ignore[union-attr]
    h.store.close()
