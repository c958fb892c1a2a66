"""The mempool: acknowledged transactions not yet in an L1 batch, and the state they imply.

Admission runs the state machine's own rules (`stf.plan_tx`) against a *speculative view*: the
chain state plus every deposit seen on L1 plus every admitted transaction, in order, held as an
overlay dict over the chain's tree (reads only, no hashing). A transaction that passes is written
to the durable log and only then acknowledged; its writes go into the overlay, so the next
transaction from the same account sees the new nonce and balance.

Admission goes through a `Staging`: each transaction is planned on the view that includes the
ones staged before it, and all of them are logged in ONE SQLite commit (together with whatever
else the caller writes in that transaction, e.g. the exchange's order records) before any is
acknowledged; a refusal or a failed commit leaves the view as it was.

Capacity: ordinary transactions (orders' fills, bundles, transfers, withdrawals) are refused with
`overloaded` once `max_pending` are pending; cancels, liquidations, deleverages, oracle updates
and funding steps (`PRIORITY_TYPES`) still get in up to `max_pending + reserve`. Pending
transactions stay in admission order: the batch builder takes them in that order, since fills
were checked in that order and reordering could invalidate them.

When the chain moves in a way the overlay did not foresee (another sequencer's batch, a revert),
`rebase` rebuilds the overlay from the new chain state and re-plans every pending transaction;
one that no longer applies is dropped with its reason (its acknowledgement is then evidence
against us; see docs/protocol.md section 9).
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from contracts.logs import get_logger
from sequencer.errors import Dropped, Malformed, Overloaded
from sequencer.journal import Commit, JournalSink, OrderRecords, TxRow
from sequencer.keeper import RiskIndex
from sequencer.metrics import PENDING
from sequencer.queue_order import entry_slots
from sequencer.stf.codec import decode_tx, encode_tx, tx_hash
from sequencer.stf.constants import (
    TX_TYPE_CANCEL,
    TX_TYPE_DELEVERAGE,
    TX_TYPE_FUNDING,
    TX_TYPE_LIQUIDATE,
    TX_TYPE_ORACLE_UPDATE,
)
from sequencer.stf.errors import InvalidTransaction, RollupError
from sequencer.stf.state import State, get_account
from sequencer.stf.transition import plan_tx, touched_accounts
from sequencer.stf.types import (
    Cancel,
    ChainConfig,
    Deleverage,
    Deposit,
    ForcedTx,
    Funding,
    L1Context,
    L1Message,
    Liquidate,
    OracleUpdate,
    Tx,
)
from sequencer.store import Store

log = get_logger("mempool")


def _accounts_named(tx: Tx) -> tuple[bytes, ...] | None:
    """The accounts whose leaves (or order leaves) a pending transaction reads or writes; None
    for a queue entry, which is never pending (`Mempool.commutes` then replans)."""
    if isinstance(tx, Cancel):
        return (tx.order.trader,)  # it touches no account leaf; its trader is named all the same
    if isinstance(tx, QueueEntryTx):
        return None
    # an oracle update or a funding step touches markets only: `commutes` asks the forced
    # accounts to hold no position
    return touched_accounts(tx)


QueueEntryTx = Deposit | L1Message | ForcedTx
"""A transaction that consumes an L1 queue entry (never admitted through the API)."""

PRIORITY_TYPES: tuple[type, ...] = (Cancel, Liquidate, Deleverage, OracleUpdate, Funding)
"""Transactions admitted into the reserve above `max_pending`: they remove risk or keep prices
and funding current, so an overloaded node must still take them."""


PRIORITY_TYPE_BYTES = frozenset(
    (TX_TYPE_CANCEL, TX_TYPE_LIQUIDATE, TX_TYPE_DELEVERAGE, TX_TYPE_ORACLE_UPDATE, TX_TYPE_FUNDING)
)
"""The type bytes of `PRIORITY_TYPES` (to classify encoded transactions without decoding)."""


def is_priority(tx: Tx) -> bool:
    """Whether `tx` may use the mempool's reserve (`PRIORITY_TYPES`)."""
    return isinstance(tx, PRIORITY_TYPES)


class OverlayTree:
    """Read-through overlay over a state tree: `get` sees writes made here first."""

    def __init__(self, base: object) -> None:
        self.base = base
        self.writes: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        """The value of `key` in the speculative view."""
        value = self.writes.get(key)
        if value is not None:
            return value
        return self.base.get(key)  # type: ignore[attr-defined, no-any-return]

    def set(self, key: bytes, value: bytes) -> None:
        """Record a speculative write."""
        self.writes[key] = value


@dataclass(frozen=True)
class PendingTx:
    """An acknowledged transaction waiting for a batch."""

    seq: int
    hash: bytes
    raw: bytes
    tx: Tx
    clock: int = 0
    """The batch clock it was admitted at (`Mempool.l2_time` then, or its re-check at the last
    rebase; 0 if unknown): its batch's clock is never before it (`builder.batch_clock`), so a
    backlog drained later still runs at the time its transactions were checked at."""
    deadline: int | None = None
    """The latest batch clock its time rules (expiry, price staleness) were checked at: the
    exchange checks fills `margin` seconds ahead; None: its `clock` itself; `NO_DEADLINE` for
    types no rule of which gets stricter later (cancels, oracle updates)."""


NO_DEADLINE = 1 << 62
"""`PendingTx.deadline` of transactions that stay valid at any later clock."""
TIME_FREE_TYPES = (Cancel, OracleUpdate)
"""Transaction types with no rule that gets stricter as the clock advances (a funding step
needs a fresh price: it has a deadline)."""


def logged_pending(store: Store, skip: set[bytes] | frozenset[bytes] = frozenset()) -> list[PendingTx]:
    """The log's pending transactions (but those in `skip`), in admission order, each with the
    clock it was admitted at: a restarted node re-checks them at that clock, as it would have."""
    return [
        PendingTx(r.seq, r.hash, r.raw, decode_tx(r.raw), r.clock)
        for r in store.pending()
        if r.hash not in skip
    ]


class Mempool:
    """Pending transactions in admission order, with their speculative state."""

    def __init__(self, config: ChainConfig, store: Store, max_pending: int, reserve: int = 0) -> None:
        self.config = config
        self.store = store
        self.max_pending = max_pending
        """Capacity for ordinary transactions."""
        self.reserve = reserve
        """Extra capacity that only `PRIORITY_TYPES` may use."""
        self.l2_time: Callable[[], int] = lambda: 0
        """The clock admission and `rebase` plan with (the node sets it to its batch clock)."""
        self.pending: list[PendingTx] = []
        self.hashes: set[bytes] = set()
        self.overlay = OverlayTree({})
        self.view = State(tree=self.overlay)  # type: ignore[arg-type]
        self.risk = RiskIndex()
        """Traders whose positions admitted (and, through the node, L1) transactions may have
        changed: what the keeper scans for liquidations and deleveraging."""
        self.journal: JournalSink | None = None
        """Told of every commit (`Staging.commit`): the leader of a set replicates them."""
        self.replica = False
        """A member of a sequencer set that does not lead: its durable log is the set's, so it
        writes nothing of its own there (`rebase` keeps its drops in memory; the exchange plans
        without committing)."""
        self.unwritten_drops = False
        """A replica's `rebase` dropped transactions that its durable log still holds pending (the
        view must be rebuilt, and the drops written, when it leads)."""

    def __len__(self) -> int:
        return len(self.pending)

    def submit(self, item: Tx | bytes, *, revive: bool = False) -> tuple[bytes, int]:
        """Admit a transaction: check it, log it durably, then acknowledge (hash, seq).

        Raises an `InvalidTransaction` (bad signature, nonce, balance, ...), `Malformed` or
        `Overloaded`; a refusal changes nothing. Submitting an acknowledged transaction again
        returns its first acknowledgement. `revive`: see `Staging.add`.
        """
        (result,) = self.submit_many([item], revive=revive)
        if isinstance(result, RollupError):
            raise result
        return result

    def submit_many(
        self, items: Sequence[Tx | bytes], *, revive: bool = False
    ) -> list[tuple[bytes, int] | RollupError]:
        """Admit several transactions in order, with ONE durable commit for all that pass.

        Each item is checked against the view that includes the items before it (so one
        request may carry an account's consecutive nonces); each gets its own result: (hash,
        seq) or the error that refused it. Nothing is acknowledged before the commit.
        `revive`: see `Staging.add`.
        """
        stage = self.stage()
        results: list[bytes | RollupError] = []
        for item in items:
            try:
                results.append(stage.add(item, revive=revive))
            except RollupError as exc:
                results.append(exc)
        seqs = stage.commit()
        return [r if isinstance(r, RollupError) else (r, seqs[r]) for r in results]

    def stage(self, ctx: L1Context | None = None) -> Staging:
        """Start admitting transactions that will be logged in one commit (see `Staging`);
        `ctx` is the L1 context they are planned with (default: no queue, the node's clock)."""
        clock = self.l2_time()
        return Staging(self, ctx if ctx is not None else self._context(clock), clock)

    def admission_context(self) -> L1Context:
        """The context admission plans with: no queue entries, the clock `l2_time()`."""
        return self._context(self.l2_time())

    @staticmethod
    def _context(clock: int) -> L1Context:
        return L1Context(queue_end=0, queue_hashes={}, l2_time=clock)

    def room(self, priority: bool, staged: int = 0) -> bool:
        """Whether one more transaction of the class fits, with `staged` not yet pending."""
        limit = self.max_pending + self.reserve if priority else self.max_pending
        return len(self.pending) + staged < limit

    def _accept(self, ptx: PendingTx, writes: dict[bytes, bytes]) -> None:
        for key, value in writes.items():
            self.overlay.set(key, value)
        self.risk.note(ptx.tx)
        self.pending.append(ptx)
        self.hashes.add(ptx.hash)
        PENDING.set(len(self.pending))

    def follow(self, ptx: PendingTx) -> bool:
        """A member of a set that does not lead: a transaction its leader logged becomes pending,
        planned on the view at its admission clock (as `rebase` would plan it). False, and nothing
        changed, if it does not apply to this view: the view must then be rebuilt (`rebase`)."""
        try:
            clock = ptx.clock or self.l2_time()
            writes = plan_tx(self.view, ptx.tx, self._context(clock), self.config, signer_verified=True)
        except RollupError:
            return False
        self._accept(ptx, writes)
        return True

    def apply_deposits(self, deposits: Iterable[QueueEntryTx], ctx: L1Context) -> None:
        """Add L1 queue entries (deposits, messages, forced transactions; in queue order) to the
        speculative view. A forced transaction goes before the pending ones in the next batch:
        unless it `commutes` with them, the caller rebases (`rebase`) when one arrives, so that
        pending transactions are planned after it."""
        for dep in deposits:
            try:
                writes = plan_tx(self.view, dep, ctx, self.config, signer_verified=True)
            except InvalidTransaction:
                continue  # already counted in the view, or not next in the queue
            for key, value in writes.items():
                self.overlay.set(key, value)

    def commutes(self, forced: Iterable[ForcedTx]) -> bool:
        """Whether these forced transactions, applied after the pending ones in the view, give
        what the next batch gives by applying them first, for every transaction involved: true
        when each one's inner Transfer or Withdraw names only accounts that hold no position in
        the view (so its outcome reads no price, funding index or clock: the margin and price-age
        rules read them only for positions, and the batch applies it at a later clock than the
        view) and that no pending transaction names (so nothing pending reads or writes what it
        writes, but the queue position, which no pending transaction reads). A forced Cancel
        commutes: it writes only its order's leaf, and the batch places it after every pending
        transaction that names the order (`queue_order`), as the view does. Other inner bytes
        change nothing but the queue position, so they commute. A pending transaction of a type
        this does not know counts as naming every account."""
        accounts: set[bytes] = set()
        for tx in forced:
            accounts.update(touched_accounts(tx))  # its inner Transfer's or Withdraw's, if any
        if not accounts:
            return True
        if any(get_account(self.view, a).positions for a in accounts):
            return False
        for pending in self.pending:
            named = _accounts_named(pending.tx)
            if named is None or not accounts.isdisjoint(named):
                return False
        return True

    def remove_included(self, hashes: set[bytes]) -> list[PendingTx]:
        """Take transactions that an L1 batch now holds out of the pending list."""
        included = [p for p in self.pending if p.hash in hashes]
        if included:
            self.pending = [p for p in self.pending if p.hash not in hashes]
            self.hashes -= {p.hash for p in included}
            PENDING.set(len(self.pending))
        return included

    def rebase(
        self, base_state: State, deposits: list[QueueEntryTx], ctx: L1Context, extra: list[PendingTx]
    ) -> None:
        """Rebuild the speculative view on a new chain state.

        `extra` are transactions to (re)admit, e.g. those of reverted batches; every pending
        transaction is planned again in admission order and dropped if it no longer applies (its
        reason says so when its very bytes were forced through the L1 queue: that copy applies).
        The queue entries go before them, as a batch places them (`queue_order`: a forced Cancel
        after the pending transactions that name its order).
        """
        self.overlay = OverlayTree(base_state.tree)
        self.view = State(tree=self.overlay)  # type: ignore[arg-type]
        candidates = sorted({p.hash: p for p in [*self.pending, *extra]}.values(), key=lambda p: p.seq)
        slots = entry_slots(deposits, (p.tx for p in candidates))
        placed = 0
        self.pending = []
        self.hashes = set()
        now = self.l2_time()
        drops: list[tuple[int, str]] = []
        forced = {tx_hash(d.tx): d.queue_index for d in deposits if isinstance(d, ForcedTx)}
        for i, ptx in enumerate(candidates):
            upto = bisect_right(slots, i)  # the entries that go before candidate i
            self.apply_deposits(deposits[placed:upto], ctx)
            placed = upto
            # each at its own admission clock (not before the tip's): a backlog stays valid
            clock = max(ptx.clock, ctx.l2_time) if ptx.clock else now
            try:
                writes = plan_tx(self.view, ptx.tx, self._context(clock), self.config, signer_verified=True)
            except InvalidTransaction as exc:
                reason = f"{exc.code}: {exc}"
                if ptx.hash in forced:
                    reason += f" (the same transaction was forced through L1 queue entry {forced[ptx.hash]})"
                drops.append((ptx.seq, reason))
                log.warning("tx_dropped", hash=ptx.hash, seq=ptx.seq, code=exc.code, reason=str(exc))
                continue
            free = isinstance(ptx.tx, TIME_FREE_TYPES)
            self._accept(replace(ptx, clock=clock, deadline=NO_DEADLINE if free else None), writes)
        self.apply_deposits(deposits[placed:], ctx)
        if self.replica:  # a replica's log is the leader's: the leader decides what is dropped
            self.unwritten_drops = self.unwritten_drops or bool(drops)
        else:
            self.store.drop_many(drops)
            self.unwritten_drops = False
        PENDING.set(len(self.pending))


class Staging:
    """Transactions checked against the mempool's view and held back for one durable commit.

    `add` plans a transaction on the view that includes everything staged before it and puts its
    writes into the view (undoably), so the next one sees them; `commit` logs every staged
    transaction, plus whatever the caller writes in the same SQLite transaction, and only then
    makes them pending; `rollback` (also done when the commit fails) takes their writes out of the
    view again. Used on the node's loop thread, one staging at a time.
    """

    def __init__(self, mempool: Mempool, ctx: L1Context, clock: int) -> None:
        self.mempool = mempool
        self.ctx = ctx
        """The L1 context transactions are planned with, unless `add` is given another."""
        self.clock = clock
        """The batch clock at staging (`Mempool.l2_time`): the staged transactions' `clock`."""
        self.deadlines: list[int | None] = []
        """Each staged transaction's `PendingTx.deadline` (the clock it was planned with)."""
        self.items: list[tuple[bytes, bytes, Tx]] = []
        """(hash, raw, tx) of the staged transactions, in order."""
        self.known: dict[bytes, int] = {}
        """Transactions added again that were already acknowledged: hash -> their seq."""
        self.revived: dict[bytes, int] = {}
        """Dropped transactions staged to be pending again: hash -> their old seq."""
        self._staged: set[bytes] = set()
        self._undo: list[tuple[bytes, bytes | None]] = []  # overlay entries as they were

    def __len__(self) -> int:
        """Number of transactions staged (not counting ones already acknowledged)."""
        return len(self.items)

    def room(self, priority: bool) -> bool:
        """Whether one more transaction of the class fits in the mempool."""
        return self.mempool.room(priority, len(self.items))

    def add(
        self,
        item: Tx | bytes,
        *,
        signer_verified: bool = False,
        ctx: L1Context | None = None,
        priority: bool | None = None,
        revive: bool = False,
    ) -> bytes:
        """Check one transaction against the view and stage it; returns its hash.

        Raises the rule it breaks (`InvalidTransaction`), `Malformed`, `Dropped` (acknowledged
        once, dropped since) or `Overloaded`, staging nothing. A transaction already acknowledged
        (or already staged) is not staged again: its hash is returned and `commit` gives its seq.
        `priority` overrides the capacity class of the transaction's type (`is_priority`).
        With `revive`, a dropped transaction that applies again is staged to become pending
        again (under a new seq; `revived` keeps its old one): the exchange re-matching two orders
        whose fill was dropped produces exactly that transaction, and so honours its first receipt.
        """
        mempool = self.mempool
        if isinstance(item, bytes):
            tx = decode_tx(item)
            raw = item
        else:
            tx = item
            raw = encode_tx(tx)
        if isinstance(tx, Deposit | L1Message | ForcedTx):
            raise Malformed(
                "queue entries (deposits, governance messages, forced transactions) enter through"
                " the L1 bridge"
            )
        h = tx_hash(raw)
        if h in self._staged or h in self.known:
            return h
        revived_from: int | None = None
        if h in mempool.hashes or mempool.store.has(h):
            row = mempool.store.get(h)
            assert row is not None
            if row.status != "dropped":
                self.known[h] = row.seq
                return h
            if not revive:  # no fresh receipt for it: sign a new transaction
                raise Dropped(f"dropped after an L1 revert: {row.reason}")
            revived_from = row.seq
        if not self.room(is_priority(tx) if priority is None else priority):
            raise Overloaded(f"mempool holds {len(mempool.pending)} transactions")
        writes = plan_tx(mempool.view, tx, ctx or self.ctx, mempool.config, signer_verified=signer_verified)
        overlay = mempool.overlay
        for key, value in writes.items():
            self._undo.append((key, overlay.writes.get(key)))
            overlay.set(key, value)
        self._staged.add(h)
        self.items.append((h, raw, tx))
        planned = (ctx or self.ctx).l2_time
        self.deadlines.append(NO_DEADLINE if isinstance(tx, TIME_FREE_TYPES) else planned)
        if revived_from is not None:
            self.revived[h] = revived_from
        return h

    def commit(
        self, extra: Callable[[sqlite3.Connection, dict[bytes, int]], object] | None = None
    ) -> dict[bytes, int]:
        """Log the staged transactions durably in one SQLite transaction (with `extra(db, seqs)`
        run inside it), then make them pending, and tell the mempool's `journal` what was written
        (the rows, and `extra`'s answer when it is the order records it wrote). Returns hash -> seq
        for every transaction added (new and already acknowledged). On failure nothing is logged
        and the view is rolled back."""
        seqs = dict(self.known)
        if not self.items and extra is None:
            return seqs
        hashes = [h for h, _, _ in self.items]
        written: list[object] = []

        def inside(db: sqlite3.Connection, new_seqs: list[int]) -> None:
            if extra is not None:
                written.append(extra(db, {**seqs, **dict(zip(hashes, new_seqs, strict=True))}))

        mempool = self.mempool
        try:
            logged = mempool.store.add_many(
                [(h, raw) for h, raw, _ in self.items],
                extra=inside,
                revived=frozenset(self.revived),
                clock=self.clock,
            )
        except BaseException:
            self.rollback()
            raise
        for (h, raw, tx), seq, deadline in zip(self.items, logged, self.deadlines, strict=True):
            mempool.risk.note(tx)
            mempool.pending.append(PendingTx(seq, h, raw, tx, self.clock, deadline))
            mempool.hashes.add(h)
            seqs[h] = seq
        if mempool.journal is not None:
            records = written[0] if written and isinstance(written[0], OrderRecords) else None
            rows = tuple(
                TxRow(seq, self.clock, self.clock if deadline is None else deadline, raw)
                for (_, raw, _), seq, deadline in zip(self.items, logged, self.deadlines, strict=True)
            )
            mempool.journal(Commit(rows, records))
        if self.items:
            PENDING.set(len(mempool.pending))
        self.items = []
        self.deadlines = []
        self._staged = set()
        self._undo = []
        self.revived = {}
        return seqs

    def savepoint(self) -> tuple[int, int]:
        """Where the staging stands now, for `rollback_to`."""
        return len(self.items), len(self._undo)

    def rollback_to(self, point: tuple[int, int]) -> None:
        """Forget the transactions staged since `point` (`savepoint`): their writes leave the view."""
        items, undo = point
        writes = self.mempool.overlay.writes
        for key, old in reversed(self._undo[undo:]):
            if old is None:
                writes.pop(key, None)
            else:
                writes[key] = old
        del self._undo[undo:]
        for h, _, _ in self.items[items:]:
            self._staged.discard(h)
            self.revived.pop(h, None)
        del self.items[items:]
        del self.deadlines[items:]

    def rollback(self) -> None:
        """Forget every staged transaction: their writes leave the view."""
        self.rollback_to((0, 0))
        self._staged = set()
        self.revived = {}
