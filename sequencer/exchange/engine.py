"""The exchange core: signed orders in, fills out, durably, with the one state machine's rules.

One price-time `OrderBook` per listed market (`sequencer.matching`); every fill the book proposes
is built as the `Fill` transaction it will be and planned with `stf.plan_tx` against the
mempool's speculative view before the book applies it:

- a fill refused because of the maker (its margin, reduce-only, position limit, its Order leaf
  cancelled or filled elsewhere, its order no longer valid for the market) removes the maker
  from the book (status `rejected`, with the code) and matching goes on with the next maker;
- a fill refused because of the taker stops matching: the fills accepted so far stand and the
  remainder is refused with the taker's code (status `refused`; with no fill at all the order is
  refused outright and nothing of it is recorded). A market-wide refusal (a stale price, a halt
  of risk-increasing trades) also stops the taker: it is no fault of the maker's, which keeps its
  place.

Admission of an order uses the state machine's own checks (`trading.check_order`,
`trading.order_room`) after its EIP-712 signature; a REDUCE_ONLY order is capped at what would
only reduce its trader's position in the view.

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

Events (fills, book changes) go to the node's `Stream` after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from contracts.logs import get_logger
from sequencer.errors import NoMatch, Overloaded
from sequencer.exchange.orderlog import OrderLog, OrderRow, OrderWrites, fill_record
from sequencer.exchange.records import (
    BundleOutcome,
    CancelOutcome,
    FillRecord,
    OrderDetails,
    OrderOutcome,
    OrderStatus,
)
from sequencer.matching import (
    BookEvent,
    BookOrder,
    OrderAdded,
    OrderBook,
    OrderFlags,
    OrderReduced,
    OrderRemoved,
    ReduceOnlyWouldIncrease,
    RemoveReason,
    Side,
    Verdict,
)
from sequencer.mempool import Mempool, Staging
from sequencer.stf.codec import decode_signed_order, decode_tx, encode_signed_order, encode_tx, read_acct
from sequencer.stf.constants import (
    FLAG_IOC,
    SIDE_BUY,
    SIDE_SELL,
    TX_TYPE_BUNDLE_FILL,
    TX_TYPE_CANCEL,
    TX_TYPE_FILL,
)
from sequencer.stf.eip712 import bundle_digest, order_digest, recover_sig
from sequencer.stf.errors import (
    BadSignature,
    InsufficientMargin,
    InvalidOrder,
    InvalidTransaction,
    OrderCancelled,
    OrderExpired,
    Overfill,
    PositionLimit,
    ReduceOnly,
    RollupError,
)
from sequencer.stf.keys import account_key, markets_key, order_key
from sequencer.stf.margin import Markets, halted, listed_market, read_markets, reducing_size
from sequencer.stf.state import State, get_order_state
from sequencer.stf.trading import check_order, check_unexpired, leg_market, order_room
from sequencer.stf.transition import plan_tx, touched_orders
from sequencer.stf.types import (
    Bundle,
    BundleFill,
    Cancel,
    ChainConfig,
    Fill,
    L1Context,
    Market,
    Signature,
    SignedOrder,
    Tx,
)
from sequencer.stream import Stream
from sequencer.wire import wire_int

log = get_logger("exchange")

TIME_MARGIN_SECONDS = 10
"""How far ahead of the wall clock orders are checked for expiry and prices for staleness: a fill
admitted now must still apply in a batch built this much later."""

MAX_BUNDLE_ATTEMPTS = 8
"""Most times a bundle looks for makers again after a maker turned out unable to trade."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Resting:
    """A resting order as the exchange keeps it: the signed order (to build fills) and its seq."""

    signed: SignedOrder
    seq: int


@dataclass
class _Run:
    """One operation's work in progress: staged transactions, order-log writes, stream messages."""

    stage: Staging
    writes: OrderWrites
    markets: Markets
    hi: int
    """Time for the rules that get stricter later (expiry, staleness)."""
    lo: int
    """The earliest clock the next batch can have (for the circuit breaker)."""
    priority: bool
    """Fills of this run may use the mempool's reserve (rebuilds only)."""
    messages: list[dict[str, Any] | FillRecord | BookEvent] = field(default_factory=list)
    """Stream messages in order (fills and book changes are made messages after the commit, when
    there is a subscriber to read them; fills then get their seq)."""
    rejected: dict[bytes, RollupError] = field(default_factory=dict)
    """Why makers were rejected in this run."""
    seen: set[bytes] = field(default_factory=set)
    """Digests placed in this run (a repeat in one batch request is answered as known)."""


@dataclass
class _Placed:
    """An order worked in a run, before the commit gives its fills their seqs."""

    digest: bytes
    status: OrderStatus
    resting: int = 0
    fills: list[FillRecord] = field(default_factory=list)
    """Its fills (seq -1 until the commit)."""
    stop: RollupError | None = None


@dataclass(frozen=True, slots=True)
class _Known:
    """An order placed before (answered from the log after the commit)."""

    digest: bytes


@dataclass(frozen=True, slots=True)
class PlaceOrders:
    """Place signed orders in sequence (answer: one `OrderOutcome` or refusal per order)."""

    orders: Sequence[SignedOrder]
    digests: Sequence[bytes] | None = None
    """The orders' EIP-712 digests, if already computed (`order_digest`)."""
    signers: Sequence[bytes | None] | None = None
    """The addresses their signatures recover to (`recover_sig`), if already recovered."""


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Admit a signed Cancel and take its order out of the book (answer: a `CancelOutcome`)."""

    tx: Cancel


@dataclass(frozen=True, slots=True)
class PlaceBundle:
    """Fill a signed bundle whole or refuse it (answer: a `BundleOutcome`)."""

    bundle: Bundle
    sig: Signature


@dataclass(frozen=True, slots=True)
class AdmitTxs:
    """Admit transactions in order as `Mempool.submit_many` does (answer: (hash, seq) or the
    refusal per item); the books follow raw Cancel, Fill and BundleFill transactions."""

    items: Sequence[Tx | bytes]


ExchangeRequest = PlaceOrders | CancelOrder | PlaceBundle | AdmitTxs
"""What `Exchange.admit` carries out in one commit."""

Answer = (
    list[OrderOutcome | RollupError]
    | CancelOutcome
    | BundleOutcome
    | list[tuple[bytes, int] | RollupError]
    | RollupError
)
"""The answer to one `ExchangeRequest` (a `RollupError` when the request is refused whole)."""


_SIDES = {SIDE_BUY: Side.BUY, SIDE_SELL: Side.SELL}
"""`Side` of a checked order's side byte (an enum call costs more than the lookup)."""
_FLAGS = {int(f): f for f in (OrderFlags(i) for i in range(8))}
"""`OrderFlags` of the flag bytes `check_order` lets through."""
_STORED: dict[OrderStatus, tuple[str, str | None]] = {
    OrderStatus.RESTING: ("resting", None),
    OrderStatus.PARTIALLY_FILLED: ("resting", None),
    OrderStatus.FILLED: ("filled", None),
    OrderStatus.CANCELLED: ("cancelled", "ioc: the unfilled remainder of an immediate-or-cancel order"),
}
"""The log's status and reason of a placed order, by its outcome (REFUSED: with the code)."""


def maker_at_fault(exc: RollupError, maker: bytes, maker_digest: bytes) -> bool:
    """Whether a fill's refusal is the maker's doing: a rule of its account (margin,
    reduce-only, position limits) or of its Order leaf (cancelled, no room left)."""
    if isinstance(exc, InsufficientMargin | ReduceOnly | PositionLimit):
        return exc.account == maker
    if isinstance(exc, OrderCancelled | Overfill):
        return exc.digest == maker_digest
    return False


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _book_message(event: BookEvent) -> dict[str, Any]:
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
    if isinstance(event, OrderReduced):
        return {
            "type": "book",
            "change": "reduced",
            "market": event.market,
            "order": _hex(event.order_id),
            "trader": _hex(event.trader),
            "side": int(event.side),
            "price": wire_int(event.price),
            "size": wire_int(event.size),
            "remaining": wire_int(event.remaining),
        }
    return {
        "type": "book",
        "change": "removed",
        "market": event.market,
        "order": _hex(event.order_id),
        "trader": _hex(event.trader),
        "side": int(event.side),
        "price": wire_int(event.price),
        "size": wire_int(event.size),
        "reason": event.reason.name.lower(),
    }


def _fill_message(record: FillRecord) -> dict[str, Any]:
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


def _reason(exc: RollupError) -> str:
    return f"{exc.code}: {exc}"


def _answered(answer: Answer) -> Callable[[dict[bytes, int]], Answer]:
    """A request's answer known before the commit (a refusal)."""
    return lambda _: answer


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
        self.resting: dict[bytes, _Resting] = {}
        """Resting orders by digest."""
        self.by_trader: dict[bytes, set[bytes]] = {}
        """Digests of each trader's resting orders."""
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
        """Fill a signed bundle whole against one resting maker per leg, or refuse it.

        For each leg the best-priced live maker with enough size (not the trader's own) is
        chosen; the whole BundleFill is planned with the state machine. A maker that cannot
        trade is removed from its book and another is looked for; a refusal of the trader's
        (or a leg nobody can fill: `no_match`) refuses the bundle. A bundle never rests.
        """
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

        def body(run: _Run) -> list[Callable[[dict[bytes, int]], Answer]]:
            finishers: list[Callable[[dict[bytes, int]], Answer]] = []
            for i, request in enumerate(requests):
                run.priority = not isinstance(request, PlaceOrders | PlaceBundle)
                if isinstance(request, PlaceOrders):
                    finishers.append(self._begin_place(request, digests[i], logged, run))
                elif isinstance(request, CancelOrder):
                    finishers.append(self._begin_cancel(request.tx, run))
                elif isinstance(request, PlaceBundle):
                    finishers.append(self._begin_bundle(request, run))
                else:
                    finishers.append(self._begin_txs(request, run))
            return finishers

        finishers, seqs = self._execute(body, priority=False)
        return [finish(seqs) for finish in finishers]

    def _begin_place(
        self, request: PlaceOrders, digests: Sequence[bytes], logged: set[bytes], run: _Run
    ) -> Callable[[dict[bytes, int]], Answer]:
        """Place a request's orders; `logged`: digests the order log already holds."""
        orders = request.orders
        signers = request.signers
        out: list[_Placed | _Known | RollupError] = []
        for i, signed in enumerate(orders):
            digest = digests[i]
            try:
                if digest in run.seen or digest in logged:
                    out.append(_Known(digest))
                    continue
                signer = recover_sig(digest, signed.sig) if signers is None else signers[i]
                if signer != signed.order.trader:
                    raise BadSignature(signed.order.trader)
                out.append(self._work_order(signed, digest, self._next_seq(), run, None))
                run.seen.add(digest)
            except RollupError as exc:
                out.append(exc)

        def finish(seqs: dict[bytes, int]) -> Answer:
            return [r if isinstance(r, RollupError) else self._outcome(r, seqs) for r in out]

        return finish

    def _begin_cancel(self, tx: Cancel, run: _Run) -> Callable[[dict[bytes, int]], Answer]:
        digest = order_digest(tx.order, self.config)
        try:
            h = run.stage.add(tx)
        except RollupError as exc:
            return _answered(exc)
        removed = 0
        if h not in run.stage.known and digest in self.resting:
            event = self.books[tx.order.market].remove(digest, RemoveReason.CANCELLED)
            self._left_book(event, run)
            removed = event.size
        return lambda seqs: CancelOutcome(h, seqs[h], digest, removed > 0, removed)

    def _begin_bundle(self, request: PlaceBundle, run: _Run) -> Callable[[dict[bytes, int]], Answer]:
        bundle, sig = request.bundle, request.sig
        digest = bundle_digest(bundle, self.config)
        if digest in run.seen or self.log.get(digest) is not None:
            return lambda _: self._bundle_outcome(digest)
        if recover_sig(digest, sig) != bundle.trader:
            return _answered(BadSignature(bundle.trader))
        try:
            h, records = self._work_bundle(bundle, sig, digest, run)
        except RollupError as exc:
            return _answered(exc)
        run.seen.add(digest)
        return lambda seqs: BundleOutcome(digest, h, seqs[h], tuple(replace(r, seq=seqs[h]) for r in records))

    def _begin_txs(self, request: AdmitTxs, run: _Run) -> Callable[[dict[bytes, int]], Answer]:
        # the staging's own clock: what these transactions are stamped with (`PendingTx.clock`)
        ctx = L1Context(queue_end=0, queue_hashes={}, l2_time=run.stage.clock)
        out: list[bytes | RollupError] = []
        admitted: list[Tx | bytes] = []
        for item in request.items:
            try:
                out.append(run.stage.add(item, ctx=ctx))
            except RollupError as exc:
                out.append(exc)
                continue
            admitted.append(item)
        self._resync_in(self.touched_orders(admitted), run)

        def finish(seqs: dict[bytes, int]) -> Answer:
            return [r if isinstance(r, RollupError) else (r, seqs[r]) for r in out]

        return finish

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
        self._execute(lambda run: self._resync_in(touched, run), priority=True)

    def _resync_in(self, digests: Iterable[bytes], run: _Run) -> None:
        """`resync`'s work inside a run (the view holds what the run staged)."""
        touched = [d for d in dict.fromkeys(digests) if d in self.resting]
        view = self.mempool.view
        for digest in touched:
            order = self.resting[digest].signed.order
            book = self.books[order.market]
            leaf = get_order_state(view, digest)
            if leaf.cancelled:
                self._left_book(book.remove(digest, RemoveReason.CANCELLED), run)
                continue
            in_book = book.get(digest)
            assert in_book is not None
            excess = in_book.size - max(order.size - leaf.filled, 0)
            if excess > 0:
                event = book.take(digest, excess)
                if isinstance(event, OrderRemoved):
                    self._left_book(event, run)
                else:
                    run.messages.append(event)

    def sweep(self) -> None:
        """Take expired orders out of the books and record them expired (call it periodically)."""

        def body(run: _Run) -> None:
            for book in self.books.values():
                self._expire(book, run)

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
        self._seq = max(self._seq, self.log.max_seq() + 1)

        def body(run: _Run) -> None:
            for market_id, market in enumerate(run.markets):
                self._book(market_id, market)
            for row in sorted(rows.values(), key=lambda r: r.seq):
                signed = decode_signed_order(row.raw)
                try:
                    self._work_order(signed, row.digest, row.seq, run, row)
                except RollupError as exc:
                    status, reason = self._refusal_status(exc)
                    if (status, reason) != (row.status, row.reason):
                        run.writes.status(row.digest, status, reason)
            for market_id, book in self.books.items():
                bids, asks = book.depth(1 << 30)
                run.messages.append(
                    {
                        "type": "book_snapshot",
                        "market": market_id,
                        "bids": [[wire_int(p), wire_int(q)] for p, q in bids],
                        "asks": [[wire_int(p), wire_int(q)] for p, q in asks],
                    }
                )

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
        return self._book(market_id, markets[market_id])

    # ---- internals: runs ------------------------------------------------------------------

    def _times(self) -> tuple[int, int]:
        """(hi, lo): the clock for rules that get stricter later, and the earliest batch clock."""
        lo = self.l2_floor()
        return max(int(self.clock()) + self.margin_s, lo), lo

    def _execute(self, body: Callable[[_Run], T], *, priority: bool) -> tuple[T, dict[bytes, int]]:
        """Run `body` on a fresh run, then commit its transactions and order records together
        and publish its messages. If anything raises, nothing is logged, the view is rolled back
        and the books are rebuilt from the log (they may hold half an operation)."""
        hi, lo = self._times()
        run = _Run(
            stage=self.mempool.stage(L1Context(queue_end=0, queue_hashes={}, l2_time=hi)),
            writes=OrderWrites(),
            markets=self.markets(),
            hi=hi,
            lo=lo,
            priority=priority,
        )
        try:
            result = body(run)
            seqs = run.stage.commit(run.writes.apply if run.writes else None)
        except BaseException:
            run.stage.rollback()
            if self._rebuilding:
                raise
            log.error("exchange_operation_failed_rebuilding_books")
            self.rebuild()
            raise
        if self.stream is not None and self.stream.subscribers:  # messages are made only if read
            for message in run.messages:
                if isinstance(message, FillRecord):
                    message = _fill_message(replace(message, seq=seqs[message.tx_hash]))
                elif not isinstance(message, dict):
                    message = _book_message(message)
                self.stream.publish(message)
        return result, seqs

    def _sync_books(self) -> None:
        """Rebuild the books if governance changed a market's tick or lot under them."""
        markets = self.markets()
        for market_id, book in self.books.items():
            params = markets[market_id].params
            if (book.tick_size, book.lot_size) != (params.tick_size, params.lot_size):
                log.info("market_params_changed", market=market_id)
                self.rebuild()
                return

    def _book(self, market_id: int, market: Market) -> OrderBook:
        book = self.books.get(market_id)
        if book is None:
            book = self.books[market_id] = OrderBook(
                market_id, market.params.tick_size, market.params.lot_size
            )
        return book

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _expire(self, book: OrderBook, run: _Run) -> None:
        for event in book.expire(run.hi):
            self._left_book(event, run)

    def _left_book(self, event: OrderRemoved, run: _Run) -> None:
        """A resting order left its book: forget it and record why."""
        digest = event.order_id
        resting = self.resting.pop(digest, None)
        if resting is not None:
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
        else:
            why = run.rejected.get(digest)
            run.writes.status(digest, "rejected", None if why is None else _reason(why))
            log.info("maker_rejected", order=digest, reason=None if why is None else _reason(why))
        run.messages.append(event)

    @staticmethod
    def _refusal_status(exc: RollupError) -> tuple[str, str | None]:
        """The status of a recorded order that no longer stands, from why it is refused."""
        if isinstance(exc, OrderCancelled):
            return "cancelled", "cancelled: by its trader"
        if isinstance(exc, Overfill):
            return "filled", None
        if isinstance(exc, OrderExpired):
            return "expired", None
        return "rejected", _reason(exc)

    # ---- internals: orders ----------------------------------------------------------------

    def _work_order(
        self, signed: SignedOrder, digest: bytes, seq: int, run: _Run, row: OrderRow | None
    ) -> _Placed:
        """Admit, match and rest (or not) one order; `row` is its record when it is being put
        back by `rebuild` (no reduce-only cap, no capacity check, statuses updated in place)."""
        order = signed.order
        market = listed_market(run.markets, order.market)
        check_order(order, market, run.hi)
        lot = market.params.lot_size
        filled = order_room(self.mempool.view.tree, order_key(digest), digest, order.size, lot)
        if row is None and not run.stage.room(False):
            raise Overloaded(f"mempool holds {len(self.mempool)} transactions")
        remaining = order.size - filled
        remaining -= remaining % lot
        book = self._book(order.market, market)
        self._expire(book, run)
        placed = _Placed(digest, OrderStatus.RESTING)
        side = _SIDES.get(order.side)
        flags = _FLAGS.get(order.flags)
        taker = BookOrder(
            digest,
            order.trader,
            order.market,
            Side(order.side) if side is None else side,
            order.price,
            remaining,
            OrderFlags(order.flags) if flags is None else flags,
            order.expiry,
            seq,
        )
        try:
            result = book.place(
                taker,
                run.hi,
                self._max_reduce if row is None else None,
                self._fill_check(signed, market, run, placed),
            )
        except ReduceOnlyWouldIncrease as exc:
            raise ReduceOnly(order.trader, order.market) from exc
        refused = False
        for event in result.events:
            if isinstance(event, OrderRemoved) and event.order_id == digest:
                refused = event.reason == RemoveReason.REFUSED
                placed.status = OrderStatus.REFUSED if refused else OrderStatus.CANCELLED
            elif isinstance(event, OrderRemoved):
                self._left_book(event, run)
                continue
            run.messages.append(event)
        if result.resting is not None:
            placed.status = OrderStatus.PARTIALLY_FILLED if filled or placed.fills else OrderStatus.RESTING
            placed.resting = result.resting.size
            self.resting[digest] = _Resting(signed, seq)
            self.by_trader.setdefault(order.trader, set()).add(digest)
        elif not refused and placed.status != OrderStatus.CANCELLED:
            placed.status = OrderStatus.FILLED
        if refused and not placed.fills:  # nothing of it was accepted
            assert placed.stop is not None
            raise placed.stop
        if placed.status == OrderStatus.REFUSED:
            stored, reason = "refused", None if placed.stop is None else _reason(placed.stop)
        else:
            stored, reason = _STORED[placed.status]
        if row is None:
            run.writes.insert(
                OrderRow(
                    digest,
                    seq,
                    "order",
                    order.trader,
                    order.market,
                    encode_signed_order(signed),
                    stored,
                    reason,
                )
            )
        elif (stored, reason) != (row.status, row.reason):
            run.writes.status(digest, stored, reason)
        return placed

    def _fill_check(
        self, taker_signed: SignedOrder, market: Market, run: _Run, placed: _Placed
    ) -> Callable[[BookOrder, BookOrder, int], Verdict]:
        """The book's fill check for one taker: plan each proposed Fill with the state machine."""
        config = self.config
        mempool = self.mempool
        lo_ctx = L1Context(queue_end=0, queue_hashes={}, l2_time=run.lo)
        halt_possible = halted(market, run.lo)

        def refused(exc: RollupError, maker: BookOrder) -> Verdict:
            if maker_at_fault(exc, maker.trader, maker.order_id):
                run.rejected[maker.order_id] = exc
                return Verdict.REJECT_MAKER
            placed.stop = exc
            return Verdict.STOP

        def check(taker: BookOrder, maker: BookOrder, size: int) -> Verdict:
            maker_signed = self.resting[maker.order_id].signed
            try:
                check_order(maker_signed.order, market, run.hi)
            except InvalidTransaction as exc:
                run.rejected[maker.order_id] = exc
                return Verdict.REJECT_MAKER
            if not run.stage.room(run.priority):
                placed.stop = Overloaded(f"mempool holds {len(mempool)} transactions")
                return Verdict.STOP
            fill = Fill(maker_signed, taker_signed, size)
            try:
                if halt_possible:
                    plan_tx(mempool.view, fill, lo_ctx, config, signer_verified=True)
                # revive: the same two orders and size make the same Fill; if it was acknowledged
                # and dropped (an L1 revert) and applies again, it is pending again, as promised
                h = run.stage.add(fill, signer_verified=True, priority=run.priority, revive=True)
            except InvalidTransaction as exc:
                return refused(exc, maker)
            except RollupError as exc:  # overloaded
                placed.stop = exc
                return Verdict.STOP
            if h in run.stage.known:  # acknowledged before: the view already counts it
                placed.stop = InvalidOrder("this fill was acknowledged before")
                return Verdict.STOP
            record = FillRecord(
                tx_hash=h,
                seq=-1,
                market=maker.market,
                price=maker.price,
                size=size,
                taker_side=int(taker.side),
                maker=maker.trader,
                taker=taker.trader,
                maker_order=maker.order_id,
                taker_order=taker.order_id,
            )
            placed.fills.append(record)
            run.messages.append(record)
            old_seq = run.stage.revived.get(h)
            if old_seq is not None:
                run.writes.move_fill(h, old_seq)
            run.writes.fill(h, 0, maker.trader, taker.trader, maker.order_id, taker.order_id)
            return Verdict.ACCEPT

        return check

    def _max_reduce(self, trader: bytes, market_id: int, side: Side) -> int:
        """What an order of `side` may trade and only reduce `trader`'s position (in the view)."""
        held = read_acct(self.mempool.view.tree.get(account_key(trader))).size(market_id)
        return reducing_size(held, side)

    def _outcome(self, item: _Placed | _Known, seqs: dict[bytes, int]) -> OrderOutcome:
        if isinstance(item, _Known):
            details = self.order_details(item.digest)
            assert details is not None
            code = message = None
            if details.status in (OrderStatus.REFUSED, OrderStatus.REJECTED) and details.reason:
                code, _, message = details.reason.partition(": ")
            return OrderOutcome(
                item.digest, details.status, details.fills, details.resting, code, message, known=True
            )
        fills = tuple(replace(f, seq=seqs[f.tx_hash]) for f in item.fills)
        code = message = None
        if item.stop is not None and item.status == OrderStatus.REFUSED:
            code, message = item.stop.code, str(item.stop)
        return OrderOutcome(item.digest, item.status, fills, item.resting, code, message)

    # ---- internals: bundles ---------------------------------------------------------------

    def _work_bundle(
        self, bundle: Bundle, sig: Signature, digest: bytes, run: _Run
    ) -> tuple[bytes, list[FillRecord]]:
        if not run.stage.room(False):
            raise Overloaded(f"mempool holds {len(self.mempool)} transactions")
        check_unexpired(bundle.expiry, run.hi)
        lo_ctx = L1Context(queue_end=0, queue_hashes={}, l2_time=run.lo)
        for _ in range(MAX_BUNDLE_ATTEMPTS):
            makers: list[bytes] = []
            for i, leg in enumerate(bundle.legs):
                book = self._book(leg.market, leg_market(leg, run.markets))
                self._expire(book, run)
                found = book.find_maker(Side(leg.side), leg.price, leg.size, run.hi, exclude=bundle.trader)
                if found is None:
                    raise NoMatch(
                        f"no resting order fills leg {i} ({leg.size} at {leg.price} or better) whole"
                    )
                makers.append(found.order_id)
            signed_makers = tuple(self.resting[d].signed for d in makers)
            culprit = None
            for d, maker in zip(makers, signed_makers, strict=True):
                try:
                    check_order(maker.order, run.markets[maker.order.market], run.hi)
                except InvalidTransaction as exc:
                    culprit = d
                    run.rejected[d] = exc
                    break
            if culprit is None:
                tx = BundleFill(bundle, sig, signed_makers)
                try:
                    if any(halted(run.markets[leg.market], run.lo) for leg in bundle.legs):
                        plan_tx(self.mempool.view, tx, lo_ctx, self.config, signer_verified=True)
                    h = run.stage.add(tx, signer_verified=True)
                except InvalidTransaction as exc:
                    culprit = next(
                        (
                            d
                            for d, m in zip(makers, signed_makers, strict=True)
                            if maker_at_fault(exc, m.order.trader, d)
                        ),
                        None,
                    )
                    if culprit is None:
                        raise
                    run.rejected[culprit] = exc
                else:
                    return h, self._bundle_filled(tx, h, digest, makers, run)
            market_id = self.resting[culprit].signed.order.market
            self._left_book(self.books[market_id].remove(culprit, RemoveReason.REJECTED), run)
        raise NoMatch(f"{MAX_BUNDLE_ATTEMPTS} makers in a row could not trade")

    def _bundle_filled(
        self, tx: BundleFill, h: bytes, digest: bytes, makers: list[bytes], run: _Run
    ) -> list[FillRecord]:
        """Take the legs' sizes off the makers, record the bundle and its fills; the fills."""
        bundle = tx.bundle
        records = []
        for i, (leg, maker_digest, maker) in enumerate(zip(bundle.legs, makers, tx.makers, strict=True)):
            record = FillRecord(
                tx_hash=h,
                seq=-1,
                market=leg.market,
                price=maker.order.price,
                size=leg.size,
                taker_side=leg.side,
                maker=maker.order.trader,
                taker=bundle.trader,
                maker_order=maker_digest,
                taker_order=digest,
            )
            records.append(record)
            run.messages.append(record)
            event = self.books[leg.market].take(maker_digest, leg.size)
            if isinstance(event, OrderRemoved):
                self._left_book(event, run)
            else:
                run.messages.append(event)
            run.writes.fill(h, i, maker.order.trader, bundle.trader, maker_digest, digest)
        run.writes.insert(
            OrderRow(digest, self._next_seq(), "bundle", bundle.trader, -1, encode_tx(tx), "filled", None)
        )
        return records

    def _bundle_outcome(self, digest: bytes) -> BundleOutcome:
        fills = tuple(fill_record(f) for f in self.log.fills_of_order(digest))
        return BundleOutcome(digest, fills[0].tx_hash, fills[0].seq, fills, known=True)
