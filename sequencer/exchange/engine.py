"""The exchange core: signed orders in, fills out, durably, with the one state machine's rules.

One price-time `OrderBook` per listed market (`sequencer.matching`). The `Exchange` carries out
each request (`requests`) in a run: an order is admitted and matched by `orders`, a bundle by
`bundles`, a Cancel or transactions as they come by `cancels`; every fill is planned with the
state machine against the mempool's speculative view before the book applies it (`orders` says
what happens to a maker or a taker whose fill is refused). What each account's resting orders
add to its positions is kept in `exposure`, for the margin of open orders; `coverage` keeps them
backed after they rest (transfers and withdrawals refused, orders cancelled after prices move).

Time: a fill lands in a batch whose clock `l2_time` is chosen later, between the tip's clock and
the wall clock. Rules that get stricter with time (expiry, oracle staleness) are checked at
`now + margin_s`, so an order expiring within the margin never becomes a fill and is refused on
arrival; the circuit breaker, which gets stricter the earlier the clock, is checked at the tip's
clock as well whenever a halt could still be in force then.

Durability: the accepted fills enter the mempool as Fill transactions and the order's record
(`orderlog`) is written in the SAME SQLite commit (`Staging.commit`), before the answer. The
books are memory only: `rebuild` makes them again from the log's resting orders with their
remaining size read from the view (order size minus fills on the chain and in the mempool); it
runs at start and whenever the view is rebuilt (an L1 revert, another sequencer's batch,
transactions dropped), when it also puts back orders whose fills were dropped.

Events (fills, book changes: `messages`) go to the node's `Stream` after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

from contracts.logs import get_logger
from sequencer.exchange.bundles import place_bundle
from sequencer.exchange.cancels import admit_txs, place_cancel, resync_in
from sequencer.exchange.coverage import cover, cover_moved, moved
from sequencer.exchange.exposure import Exposure
from sequencer.exchange.messages import book_message, fill_message, snapshot_message
from sequencer.exchange.orderlog import OrderLog, OrderWrites, fill_record, logged_reason
from sequencer.exchange.orders import place_orders, refusal_status, work_order
from sequencer.exchange.records import (
    BundleOutcome,
    CancelOutcome,
    FillRecord,
    OrderDetails,
    OrderOutcome,
    OrderStatus,
)
from sequencer.exchange.replica import follow_commit
from sequencer.exchange.requests import (
    Answer,
    CancelOrder,
    ExchangeRequest,
    Finish,
    PlaceBundle,
    PlaceOrders,
    Resting,
    Run,
)
from sequencer.journal import OrderRecords
from sequencer.matching import BookOrder, OrderBook, OrderReduced, OrderRemoved, RemoveReason
from sequencer.mempool import Mempool
from sequencer.stf.codec import decode_signed_order, decode_tx
from sequencer.stf.constants import (
    FLAG_IOC,
    FLAG_REDUCE_ONLY,
    TX_TYPE_BUNDLE_FILL,
    TX_TYPE_CANCEL,
    TX_TYPE_FILL,
)
from sequencer.stf.eip712 import order_digest
from sequencer.stf.errors import RollupError
from sequencer.stf.keys import markets_key
from sequencer.stf.margin import Markets, read_markets
from sequencer.stf.state import State, get_order_state
from sequencer.stf.transition import touched_orders
from sequencer.stf.types import (
    Acct,
    Bundle,
    BundleFill,
    Cancel,
    ChainConfig,
    ForcedTx,
    L1Context,
    Market,
    Signature,
    SignedOrder,
    Tx,
)
from sequencer.stream import Stream

log = get_logger("exchange")

TIME_MARGIN_SECONDS = 10
"""How far ahead of the wall clock orders are checked for expiry and prices for staleness: a fill
admitted now must still apply in a batch built this much later."""

MAX_OPEN_ORDERS = 1_000
"""Default of the most resting orders kept for one account (`max_open_orders`)."""

T = TypeVar("T")


class Exchange:
    """The books of every listed market, fed with signed orders, cancels and bundles."""

    def __init__(
        self,
        config: ChainConfig,
        mempool: Mempool,
        *,
        stream: Stream | None = None,
        clock: Callable[[], float] = time.time,
        l2_floor: Callable[[], int] = lambda: 0,
        chain_state: Callable[[], State] | None = None,
        margin_s: int = TIME_MARGIN_SECONDS,
        max_open_orders: int = MAX_OPEN_ORDERS,
    ) -> None:
        self.config = config
        self.mempool = mempool
        self.log = OrderLog(mempool.store)
        self.stream = stream
        self.clock = clock
        """Wall clock (unix seconds)."""
        self.l2_floor = l2_floor
        """The tip's `l2_time`: no later batch can have an earlier clock."""
        self.chain_state = chain_state
        """The state at the L1 tip (for confirmed fill sizes); None: only the view is shown."""
        self.margin_s = margin_s
        self.books: dict[int, OrderBook] = {}
        self.resting: dict[bytes, Resting] = {}
        """Resting orders by digest."""
        self.by_trader: dict[bytes, set[bytes]] = {}
        """Digests of each trader's resting orders."""
        self.exposure = Exposure()
        """What each account's resting orders add to its positions (for the margin of open orders)."""
        self.max_open_orders = max_open_orders
        """Most resting orders kept for one account (reduce-only ones always rest)."""
        self.settled: dict[bytes, tuple[bytes | None, Markets, Acct]] = {}
        """Traders' accounts as last read for admission: (leaf value, markets, settled account)."""
        self.covered_markets: Markets = ()
        """The markets as of the last time resting orders were checked against them (`coverage`)."""
        self._seq = self.log.max_seq() + 1
        self._rebuilding = False
        self._markets: Markets = ()
        self._markets_value: bytes | None = None

    # ---- orders ---------------------------------------------------------------------------

    def place(self, signed: SignedOrder) -> OrderOutcome:
        """Place one signed order; raises the refusal when nothing of it was accepted."""
        (result,) = self.place_many([signed])
        if isinstance(result, RollupError):
            raise result
        return result

    def place_many(self, orders: Sequence[SignedOrder]) -> list[OrderOutcome | RollupError]:
        """Place orders in sequence, with ONE durable commit for all their fills and records.

        Each order sees the book and the view the ones before it left; each gets its outcome or
        the error that refused it. An order placed before is not placed again: its outcome says
        where it stands (`known`).
        """
        (result,) = self.admit([PlaceOrders(orders)])
        assert isinstance(result, list)
        return result  # type: ignore[return-value]

    def cancel(self, tx: Cancel) -> CancelOutcome:
        """Admit a signed Cancel (the state machine's rule checks the signature) and take the
        order out of its book. Cancelling an order this sequencer never saw (or one already
        filled) is admitted too: the order can then never fill anywhere."""
        (result,) = self.admit([CancelOrder(tx)])
        if isinstance(result, RollupError):
            raise result
        assert isinstance(result, CancelOutcome)
        return result

    def place_bundle(self, bundle: Bundle, sig: Signature) -> BundleOutcome:
        """Fill a signed bundle whole against one resting maker per leg, or refuse it (the rules
        are in `bundles`); raises the refusal."""
        (result,) = self.admit([PlaceBundle(bundle, sig)])
        if isinstance(result, RollupError):
            raise result
        assert isinstance(result, BundleOutcome)
        return result

    def admit(self, requests: Sequence[ExchangeRequest]) -> list[Answer]:
        """Carry out several requests in order with ONE durable commit for all of them (group
        commit): each sees the books and the view the ones before it left, and gets exactly the
        answer it would get on its own (`place_many`, `cancel`, `place_bundle`, or for
        `AdmitTxs` what `Mempool.submit_many` gives, the books following raw cancels and fills).
        A refusal is that request's answer (a `RollupError`); nothing is answered before the
        commit, and if the commit fails every request fails with it and nothing is logged."""
        if any(isinstance(r, PlaceOrders | PlaceBundle) for r in requests):
            self._sync_books()
        config = self.config
        digests = {
            i: r.digests if r.digests is not None else [order_digest(o.order, config) for o in r.orders]
            for i, r in enumerate(requests)
            if isinstance(r, PlaceOrders)
        }
        logged = self.log.known([d for ds in digests.values() for d in ds])  # one query per round

        def body(run: Run) -> list[Finish]:
            finishers: list[Finish] = []
            for i, request in enumerate(requests):
                run.priority = not isinstance(request, PlaceOrders | PlaceBundle)
                if isinstance(request, PlaceOrders):
                    finishers.append(place_orders(self, request, digests[i], logged, run))
                elif isinstance(request, CancelOrder):
                    finishers.append(place_cancel(self, request.tx, run))
                elif isinstance(request, PlaceBundle):
                    finishers.append(place_bundle(self, request, run))
                else:
                    finishers.append(admit_txs(self, request, run))
            return finishers

        finishers, seqs = self._execute(body, priority=False)
        return [finish(seqs) for finish in finishers]

    def touched_orders(self, admitted: Iterable[Tx | bytes]) -> list[bytes]:
        """Digests of the orders that Cancel / Fill / BundleFill transactions touch."""
        digests: list[bytes] = []
        for item in admitted:
            if isinstance(item, bytes):
                if not item or item[0] not in (TX_TYPE_CANCEL, TX_TYPE_FILL, TX_TYPE_BUNDLE_FILL):
                    continue
                item = decode_tx(item)
            digests += touched_orders(item, self.config)  # with a bundle's own, which never rests
        return digests

    def resync(self, digests: Iterable[bytes]) -> None:
        """Bring resting orders in line with their Order leaves after transactions admitted
        outside the exchange (a Cancel, Fill or BundleFill sent as raw bytes): a cancelled order
        leaves its book, a filled part is taken off it."""
        touched = [d for d in dict.fromkeys(digests) if d in self.resting]
        if not touched:
            return
        self._execute(lambda run: resync_in(self, touched, run), priority=True)

    def sweep(self) -> None:
        """Take expired orders out of the books and record them expired, and cancel orders no
        longer covered after markets moved outside the exchange (a funding step, a price or a
        market's parameters admitted directly; `coverage.cover_moved`). Call it periodically."""

        def body(run: Run) -> None:
            for book in self.books.values():
                self.expire(book, run)
            cover_moved(self, run)

        self._execute(body, priority=True)

    def follow_queue(self, forced: Sequence[ForcedTx]) -> None:
        """After L1 queue entries joined the view (forced transactions, deposits, governance
        messages) without a rebuild: a forced Cancel's order leaves its book, and accounts that a
        forced Transfer or Withdraw (or a market's change) left uncovered have orders cancelled."""
        touched = [d for d in self.touched_orders(forced) if d in self.resting]
        if not touched and not forced and not moved(self.covered_markets, self.markets()):
            return

        def body(run: Run) -> None:
            resync_in(self, touched, run)
            cover_moved(self, run, forced)

        self._execute(body, priority=True)

    def rebuild(self) -> None:
        """Make every book again from the order log and the mempool's view.

        Resting orders are placed again in arrival order with their remaining size as the view
        says (so fills that reached L1 through another sequencer, and cancels, count); orders
        recorded filled whose fill was dropped are put back to work (unless IOC). Anything that
        no longer stands is recorded (filled, cancelled, expired, rejected); orders that now
        cross (a dropped fill) trade again, as they would have on arrival.
        """
        rows = {row.digest: row for row in self.log.resting()}
        for row in self.log.with_dropped_fills():
            if not decode_signed_order(row.raw).order.flags & FLAG_IOC:
                rows.setdefault(row.digest, row)
        self.books = {}
        self.resting = {}
        self.by_trader = {}
        self.exposure = Exposure()
        self.settled = {}
        self._seq = max(self._seq, self.log.max_seq() + 1)

        def body(run: Run) -> None:
            for market_id, market in enumerate(run.markets):
                self.market_book(market_id, market)
            for row in sorted(rows.values(), key=lambda r: r.seq):
                signed = decode_signed_order(row.raw)
                try:
                    work_order(self, signed, row.digest, row.seq, run, row)
                except RollupError as exc:
                    status, reason = refusal_status(exc)
                    if (status, reason) != (row.status, row.reason):
                        run.writes.status(row.digest, status, reason)
            cover(self, self.exposure.traders(), run, run.markets)  # the state may have moved
            self.covered_markets = run.markets
            for market_id, book in self.books.items():
                run.messages.append(snapshot_message(market_id, book))

        self._rebuilding = True
        try:
            self._execute(body, priority=True)
        finally:
            self._rebuilding = False
        log.info("books_rebuilt", resting=len(self.resting), markets=len(self.books))

    # ---- reads ----------------------------------------------------------------------------

    def order_details(self, digest: bytes) -> OrderDetails | None:
        """An order (or bundle) the exchange accepted, with its fills; None if unknown."""
        row = self.log.get(digest)
        if row is None:
            return None
        fills = tuple(fill_record(f) for f in self.log.fills_of_order(digest))
        filled = get_order_state(self.mempool.view, digest).filled
        chain = self.chain_state
        confirmed = filled if chain is None else get_order_state(chain(), digest).filled
        if row.kind == "bundle":
            tx = decode_tx(row.raw)
            assert isinstance(tx, BundleFill)
            return OrderDetails(
                digest=digest,
                kind="bundle",
                trader=row.trader,
                market=None,
                side=None,
                price=None,
                size=None,
                flags=None,
                expiry=tx.bundle.expiry,
                salt=tx.bundle.salt,
                status=OrderStatus.FILLED,
                reason=row.reason,
                filled=filled,
                filled_confirmed=confirmed,
                resting=0,
                fills=fills,
            )
        order = decode_signed_order(row.raw).order
        status = OrderStatus(row.status)
        if status == OrderStatus.RESTING and filled:
            status = OrderStatus.PARTIALLY_FILLED
        book = self.books.get(row.market)
        in_book = None if book is None else book.get(digest)
        return OrderDetails(
            digest=digest,
            kind="order",
            trader=order.trader,
            market=order.market,
            side=order.side,
            price=order.price,
            size=order.size,
            flags=order.flags,
            expiry=order.expiry,
            salt=order.salt,
            status=status,
            reason=row.reason,
            filled=filled,
            filled_confirmed=confirmed,
            resting=0 if in_book is None else in_book.size,
            fills=fills,
        )

    def open_orders(self, trader: bytes) -> list[BookOrder]:
        """A trader's resting orders (`size` = what rests), in arrival order."""
        out = []
        for digest in self.by_trader.get(trader, ()):
            resting = self.resting[digest]
            found = self.books[resting.signed.order.market].get(digest)
            if found is not None:
                out.append(found)
        return sorted(out, key=lambda o: o.seq)

    def fills_of(self, account: bytes, limit: int = 100, before_seq: int | None = None) -> list[FillRecord]:
        """An account's latest fills, newest first."""
        return [fill_record(f) for f in self.log.fills_of_account(account, limit, before_seq)]

    def markets(self) -> Markets:
        """The listed markets as the view has them (decoded once per value of their leaf)."""
        value = self.mempool.view.tree.get(markets_key())
        if value != self._markets_value:
            self._markets, self._markets_value = read_markets(value), value
        return self._markets

    def book(self, market_id: int) -> OrderBook | None:
        """The book of a market (None if the market is not listed)."""
        markets = self.markets()
        if market_id >= len(markets):
            return None
        self._sync_books()
        return self.market_book(market_id, markets[market_id])

    # ---- runs, and the books as the parts change them -------------------------------------

    def _times(self) -> tuple[int, int]:
        """(hi, lo): the clock for rules that get stricter later, and the earliest batch clock."""
        lo = self.l2_floor()
        return max(int(self.clock()) + self.margin_s, lo), lo

    def _execute(self, body: Callable[[Run], T], *, priority: bool) -> tuple[T, dict[bytes, int]]:
        """Run `body` on a fresh run, then commit its transactions and order records together
        and publish its messages. If anything raises, nothing is logged, the view is rolled back
        and the books are rebuilt from the log (they may hold half an operation)."""
        run = self._new_run(priority)
        try:
            result = body(run)
            if self.mempool.replica:  # books only: the durable log is the set's leader's
                run.stage.rollback()
                return result, {}
            seqs = run.stage.commit(run.writes.apply if run.writes else None)
        except BaseException:
            run.stage.rollback()
            if self._rebuilding:
                raise
            log.error("exchange_operation_failed_rebuilding_books")
            self.rebuild()
            raise
        self._publish(run, seqs)
        return result, seqs

    def follow(self, txs: Sequence[Tx], records: OrderRecords | None) -> bool:
        """A member of a set that does not lead: the books after one of its leader's commits,
        whose transactions the view already holds (`replica.follow_commit`); False if they must
        be rebuilt instead."""
        return follow_commit(self, txs, records)

    def execute_replica(self, body: Callable[[Run], None]) -> None:
        """Run `body` on the books alone (a member that does not lead stages and logs nothing),
        then publish its messages; what it raises is the caller's (the books are to be rebuilt)."""
        run = self._new_run(True)
        try:
            body(run)
        finally:
            run.stage.rollback()
        self._publish(run, {})

    def _new_run(self, priority: bool) -> Run:
        hi, lo = self._times()
        return Run(
            stage=self.mempool.stage(L1Context(queue_end=0, queue_hashes={}, l2_time=hi)),
            writes=OrderWrites(),
            markets=self.markets(),
            hi=hi,
            lo=lo,
            priority=priority,
        )

    def bump_seq(self, seq: int) -> None:
        """An order arrived elsewhere (the set's leader) with arrival number `seq`: the next one
        here comes after it."""
        if seq >= self._seq:
            self._seq = seq + 1

    def _publish(self, run: Run, seqs: dict[bytes, int]) -> None:
        if self.stream is None or not self.stream.subscribers:  # messages are made only if read
            return
        for message in run.messages:
            if isinstance(message, FillRecord):
                seq = seqs.get(message.tx_hash)
                if seq is None:
                    continue
                message = fill_message(replace(message, seq=seq))
            elif not isinstance(message, dict):
                message = book_message(message)
            self.stream.publish(message)

    def _sync_books(self) -> None:
        """Rebuild the books if governance changed a market's tick or lot under them."""
        markets = self.markets()
        for market_id, book in self.books.items():
            params = markets[market_id].params
            if (book.tick_size, book.lot_size) != (params.tick_size, params.lot_size):
                log.info("market_params_changed", market=market_id)
                self.rebuild()
                return

    def market_book(self, market_id: int, market: Market) -> OrderBook:
        """The book of a listed market, made empty when first needed."""
        book = self.books.get(market_id)
        if book is None:
            book = self.books[market_id] = OrderBook(
                market_id, market.params.tick_size, market.params.lot_size
            )
        return book

    def next_seq(self) -> int:
        """The next arrival sequence number (time priority)."""
        seq = self._seq
        self._seq += 1
        return seq

    def expire(self, book: OrderBook, run: Run) -> None:
        """Take the orders expired at the run's time out of `book` and record them expired."""
        for event in book.expire(run.hi):
            self.left_book(event, run)

    def rested(self, signed: SignedOrder, digest: bytes, seq: int, size: int) -> None:
        """An order started resting with `size`: keep it (and count it, unless reduce-only)."""
        order = signed.order
        self.resting[digest] = Resting(signed, seq)
        self.by_trader.setdefault(order.trader, set()).add(digest)
        if not order.flags & FLAG_REDUCE_ONLY:
            self.exposure.add(order.trader, order.market, order.side, order.price, size)

    def reduced(self, event: OrderReduced, run: Run) -> None:
        """A resting order was partly filled and keeps resting with the rest."""
        if not self.resting[event.order_id].signed.order.flags & FLAG_REDUCE_ONLY:
            self.exposure.take(event.trader, event.market, event.side, event.price, event.size)
        run.messages.append(event)

    def left_book(self, event: OrderRemoved, run: Run) -> None:
        """A resting order left its book: forget it and record why."""
        digest = event.order_id
        resting = self.resting.pop(digest, None)
        if resting is not None:
            if not resting.signed.order.flags & FLAG_REDUCE_ONLY:
                self.exposure.take(event.trader, event.market, event.side, event.price, event.size)
            mine = self.by_trader.get(event.trader)
            if mine is not None:
                mine.discard(digest)
                if not mine:
                    del self.by_trader[event.trader]
        reason = event.reason
        if reason == RemoveReason.FILLED:
            run.writes.status(digest, "filled")
        elif reason == RemoveReason.EXPIRED:
            run.writes.status(digest, "expired")
        elif reason == RemoveReason.CANCELLED:
            run.writes.status(digest, "cancelled", "cancelled: by its trader")
        elif reason == RemoveReason.SELF_TRADE:
            run.writes.status(digest, "cancelled", "self_trade: an order of the same trader reached it")
        elif reason == RemoveReason.MARGIN:
            run.writes.status(digest, "cancelled", f"margin: {run.rejected[digest]}")
        else:
            why = run.rejected.get(digest)
            run.writes.status(digest, "rejected", None if why is None else logged_reason(why))
            log.info("maker_rejected", order=digest, reason=None if why is None else logged_reason(why))
        run.messages.append(event)
