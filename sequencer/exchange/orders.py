"""Order matching: one signed order admitted, matched against its book and rested (or not).

Admission of an order uses the state machine's own checks (`trading.check_order`,
`trading.order_room`) after its EIP-712 signature; a REDUCE_ONLY order is capped at what would
only reduce its trader's position in the view. Open orders are backed by margin (`check_backed`):
any other order is admitted only if its trader's equity covers the margin of its positions plus
its open orders with this one (`stf.margin.check_open_order`), and a limit order only while its
trader rests fewer than `max_open_orders`.

Every fill the book proposes is built as the `Fill` transaction it will be and planned with
`stf.plan_tx` against the mempool's speculative view before the book applies it:

- a fill refused because of the maker (its margin, reduce-only, position limit, its Order leaf
  cancelled or filled elsewhere, its order no longer valid for the market) removes the maker
  from the book (status `rejected`, with the code) and matching goes on with the next maker;
- a fill refused because of the taker stops matching: the fills accepted so far stand and the
  remainder is refused with the taker's code (status `refused`; with no fill at all the order is
  refused outright and nothing of it is recorded). A market-wide refusal (a stale price, a halt
  of risk-increasing trades) also stops the taker: it is no fault of the maker's, which keeps its
  place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from sequencer.errors import Overloaded
from sequencer.exchange.orderlog import OrderRow, logged_reason
from sequencer.exchange.records import FillRecord, OrderOutcome, OrderStatus
from sequencer.exchange.requests import Finish, Known, Placed, PlaceOrders, Run
from sequencer.matching import (
    BookOrder,
    OrderFlags,
    OrderReduced,
    OrderRemoved,
    ReduceOnlyWouldIncrease,
    RemoveReason,
    Side,
    Verdict,
)
from sequencer.stf.codec import encode_signed_order, read_acct
from sequencer.stf.constants import FLAG_IOC, FLAG_REDUCE_ONLY, SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import recover_sig
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
    TooManyOpenOrders,
)
from sequencer.stf.keys import account_key, order_key
from sequencer.stf.margin import Markets, check_open_order, halted, listed_market, reducing_size, settle
from sequencer.stf.trading import check_order, order_room
from sequencer.stf.transition import plan_tx
from sequencer.stf.types import Acct, Fill, L1Context, Market, Order, SignedOrder

if TYPE_CHECKING:
    from sequencer.exchange.engine import Exchange

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
SETTLED_KEPT = 4096
"""Most traders' settled accounts `settled_account` keeps (it starts over beyond)."""


def maker_at_fault(exc: RollupError, maker: bytes, maker_digest: bytes) -> bool:
    """Whether a fill's refusal is the maker's doing: a rule of its account (margin,
    reduce-only, position limits) or of its Order leaf (cancelled, no room left)."""
    if isinstance(exc, InsufficientMargin | ReduceOnly | PositionLimit):
        return exc.account == maker
    if isinstance(exc, OrderCancelled | Overfill):
        return exc.digest == maker_digest
    return False


def refusal_status(exc: RollupError) -> tuple[str, str | None]:
    """The status of a recorded order that no longer stands, from why it is refused."""
    if isinstance(exc, OrderCancelled):
        return "cancelled", "cancelled: by its trader"
    if isinstance(exc, Overfill):
        return "filled", None
    if isinstance(exc, OrderExpired):
        return "expired", None
    return "rejected", logged_reason(exc)


def place_orders(
    ex: Exchange, request: PlaceOrders, digests: Sequence[bytes], logged: set[bytes], run: Run
) -> Finish:
    """Place a request's orders; `logged`: digests the order log already holds."""
    orders = request.orders
    signers = request.signers
    out: list[Placed | Known | RollupError] = []
    for i, signed in enumerate(orders):
        digest = digests[i]
        try:
            if digest in run.seen or digest in logged:
                out.append(Known(digest))
                continue
            signer = recover_sig(digest, signed.sig) if signers is None else signers[i]
            if signer != signed.order.trader:
                raise BadSignature(signed.order.trader)
            out.append(work_order(ex, signed, digest, ex.next_seq(), run, None))
            run.seen.add(digest)
        except RollupError as exc:
            out.append(exc)

    def finish(seqs: dict[bytes, int]) -> list[OrderOutcome | RollupError]:
        return [r if isinstance(r, RollupError) else order_outcome(ex, r, seqs) for r in out]

    return finish


def work_order(
    ex: Exchange, signed: SignedOrder, digest: bytes, seq: int, run: Run, row: OrderRow | None
) -> Placed:
    """Admit, match and rest (or not) one order; `row` is its record when it is being put
    back by `rebuild` (no reduce-only cap, no capacity check, statuses updated in place)."""
    order = signed.order
    market = listed_market(run.markets, order.market)
    check_order(order, market, run.hi)
    lot = market.params.lot_size
    filled = order_room(ex.mempool.view.tree, order_key(digest), digest, order.size, lot)
    if row is None and not run.stage.room(False):
        raise Overloaded(f"mempool holds {len(ex.mempool)} transactions")
    remaining = order.size - filled
    remaining -= remaining % lot
    book = ex.market_book(order.market, market)
    ex.expire(book, run)
    if row is None:
        check_backed(ex, order, remaining, run)
    placed = Placed(digest, OrderStatus.RESTING)
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
            (lambda trader, m, s: max_reduce(ex, trader, m, s)) if row is None else None,
            fill_check(ex, signed, market, run, placed),
        )
    except ReduceOnlyWouldIncrease as exc:
        raise ReduceOnly(order.trader, order.market) from exc
    refused = False
    for event in result.events:
        if isinstance(event, OrderRemoved) and event.order_id == digest:
            refused = event.reason == RemoveReason.REFUSED
            placed.status = OrderStatus.REFUSED if refused else OrderStatus.CANCELLED
        elif isinstance(event, OrderRemoved):
            ex.left_book(event, run)
            continue
        elif isinstance(event, OrderReduced):
            ex.reduced(event, run)
            continue
        run.messages.append(event)
    if result.resting is not None:
        placed.status = OrderStatus.PARTIALLY_FILLED if filled or placed.fills else OrderStatus.RESTING
        placed.resting = result.resting.size
        ex.rested(signed, digest, seq, result.resting.size)
    elif not refused and placed.status != OrderStatus.CANCELLED:
        placed.status = OrderStatus.FILLED
    if refused and not placed.fills:  # nothing of it was accepted
        assert placed.stop is not None
        raise placed.stop
    if placed.status == OrderStatus.REFUSED:
        stored, reason = "refused", None if placed.stop is None else logged_reason(placed.stop)
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


def check_backed(ex: Exchange, order: Order, size: int, run: Run) -> None:
    """The rules over open orders for `size` of a new order, taken as if it all rested (a part that
    fills instead fills at its price or a better one, which leaves as much margin, fees aside): the
    account's equity covers the margin of its positions and open orders with this one
    (`margin.check_open_order`), and a limit order needs room among the account's resting orders
    (`max_open_orders`). A reduce-only order always passes."""
    if order.flags & FLAG_REDUCE_ONLY:
        return
    trader = order.trader
    if not order.flags & FLAG_IOC and len(ex.by_trader.get(trader, ())) >= ex.max_open_orders:
        raise TooManyOpenOrders(trader, ex.max_open_orders)
    check_open_order(
        trader,
        settled_account(ex, trader, run.markets),
        run.markets,
        ex.exposure.of(trader, run.markets),
        order.market,
        order.side,
        order.price,
        size,
        run.hi,
    )


def settled_account(ex: Exchange, trader: bytes, markets: Markets) -> Acct:
    """`trader`'s account in the view, funding settled; kept while its leaf and the markets stay
    the same objects, as they do between most orders of a trader (never changed by its reader)."""
    value = ex.mempool.view.tree.get(account_key(trader))
    kept = ex.settled.get(trader)
    if kept is not None and kept[0] is value and kept[1] is markets:
        return kept[2]
    acct = read_acct(value)
    if acct.positions:
        settle(acct, markets)
    if len(ex.settled) >= SETTLED_KEPT:
        ex.settled.clear()
    ex.settled[trader] = (value, markets, acct)
    return acct


def fill_check(
    ex: Exchange, taker_signed: SignedOrder, market: Market, run: Run, placed: Placed
) -> Callable[[BookOrder, BookOrder, int], Verdict]:
    """The book's fill check for one taker: plan each proposed Fill with the state machine."""
    config = ex.config
    mempool = ex.mempool
    lo_ctx = L1Context(queue_end=0, queue_hashes={}, l2_time=run.lo)
    halt_possible = halted(market, run.lo)

    def refused(exc: RollupError, maker: BookOrder) -> Verdict:
        if maker_at_fault(exc, maker.trader, maker.order_id):
            run.rejected[maker.order_id] = exc
            return Verdict.REJECT_MAKER
        placed.stop = exc
        return Verdict.STOP

    def check(taker: BookOrder, maker: BookOrder, size: int) -> Verdict:
        maker_signed = ex.resting[maker.order_id].signed
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


def max_reduce(ex: Exchange, trader: bytes, market_id: int, side: Side) -> int:
    """What an order of `side` may trade and only reduce `trader`'s position (in the view)."""
    held = read_acct(ex.mempool.view.tree.get(account_key(trader))).size(market_id)
    return reducing_size(held, side)


def order_outcome(ex: Exchange, item: Placed | Known, seqs: dict[bytes, int]) -> OrderOutcome:
    """What placing an order did, once the commit has given its fills their seqs."""
    if isinstance(item, Known):
        details = ex.order_details(item.digest)
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
