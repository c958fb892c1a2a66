"""The follower: reads the L1, folds it into the chain, and puts the pending work in line with it.

It polls L1 events (`contracts.follow.L1Cursor`, the same reading as the watcher's) and folds
them into the `Chain` (the same derivation the watcher runs), then reconciles the mempool:
transactions now in an L1 batch leave it, reverted ones come back, and after an unforeseen change
(a revert, another sequencer's batch, a forced transaction that does not commute with the
pending ones) the speculative view is rebuilt on the new tip (`rebase`), the order books with it.
Otherwise the view keeps its older tip and takes what arrives: each L1 queue entry before the batch
that consumes it, even when one read brings both (a view missing an entry is rebuilt).
A Cancel forced through the L1 queue takes its order off the book as soon as it is seen; a forced
Transfer or Withdraw that leaves its sender's resting orders uncovered cancels some of them.

When the L1 reorganises blocks it folded, the follower takes them back (`rewind`): the chain
forgets their events, the log puts the transactions of batches that vanished back to pending and
marks those of batches that came back (a revert taken back) as batched, and the pending work is
planned again on the tip that stands; the poster then posts again what vanished.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable

from contracts.follow import L1Cursor
from contracts.logs import get_logger
from sequencer.builder import BuiltBatch, batch_tx_hashes
from sequencer.exchange import Exchange
from sequencer.mempool import Mempool, PendingTx, logged_pending
from sequencer.metrics import L1_BATCHES, L1_REORGS, REVERTS_SEEN
from sequencer.stf.chain import Chain
from sequencer.stf.codec import decode_tx
from sequencer.stf.constants import TX_TYPE_DEPOSIT, TX_TYPE_FORCED, TX_TYPE_L1_MESSAGE
from sequencer.stf.errors import RollupError
from sequencer.stf.l1types import L1Batch, L1Event, L1ForcedTx, L1QueueEntry, L1Reader, L1Revert
from sequencer.stf.queue import QueueTx, due_queue, queue_context
from sequencer.stf.state import get_next_deposit_index
from sequencer.stf.types import Deposit, ForcedTx, L1Context, L1Message
from sequencer.store import Store
from sequencer.stream import Stream

log = get_logger("sequencer")

QUEUE_TYPE_BYTES = frozenset((TX_TYPE_DEPOSIT, TX_TYPE_L1_MESSAGE, TX_TYPE_FORCED))
"""Type bytes of transactions that consume L1 queue entries (never pending)."""
EARLY_KEPT = 100_000
"""Most batched transactions remembered for a set's member that is behind its log."""


class Follower:
    """Follows the L1 for one sequencer (`address`): chain, durable log, mempool and books."""

    def __init__(
        self,
        chain: Chain,
        reader: L1Reader,
        store: Store,
        mempool: Mempool,
        exchange: Exchange,
        stream: Stream,
        *,
        address: bytes,
        start_block: int,
        in_set: bool = False,
    ) -> None:
        self.chain = chain
        self.reader = reader
        self.store = store
        self.mempool = mempool
        self.exchange = exchange
        self.stream = stream
        self.address = address
        """Our L1 account: batches it appended are ours."""
        self.cursor = L1Cursor(start_block)
        self.synced = False
        """Caught up with the L1 and the durable log reconciled (`reconcile_store`): from then on
        the node admits transactions and every fold reconciles the mempool."""
        self.lock = asyncio.Lock()
        """Held while the chain may move (a fold) or must not (a batch being built on it)."""
        self.in_flight: BuiltBatch | None = None
        """Our batch being appended, or appended and not folded yet: folded from what was built
        (no re-execution), and the poster builds no other meanwhile."""
        self.in_flight_block: int | None = None
        """The L1 block that holds `in_flight` once it is mined (None before)."""
        self.in_set = in_set
        """A member of a sequencer set: batches of the set's log (every transaction pending here)
        are foreseen whoever posted them, and batched transactions not yet pending are remembered
        for when the log brings them (`included_on_l1`)."""
        self.leads: Callable[[], bool] = lambda: True
        """Whether this node writes its own log: sweeps expired orders out of the books and takes
        back transactions of reverted foreign batches (a set's leader only)."""
        self._early: OrderedDict[bytes, int] = OrderedDict()
        if in_set:
            # transactions the set's log brought: their signatures were checked by the leader
            # that admitted them, so re-executing a batch that holds them does not recover them
            chain.presigned = lambda h: h in self.mempool.hashes
        self.on_slashed: Callable[[], None] = lambda: None
        """Called when a fraud proof against one of our batches is seen (we were slashed)."""

    def expect(self, built: BuiltBatch) -> None:
        """Our batch about to be appended: fold it from what was built when L1 shows it."""
        self.in_flight, self.in_flight_block = built, None

    def mined(self, built: BuiltBatch, l1_block: int) -> None:
        """Our batch `built` is in L1 block `l1_block` (unless a rewind has given it up already)."""
        if self.in_flight is built:
            self.in_flight_block = l1_block

    def give_up(self, built: BuiltBatch) -> None:
        """`built` was not appended: nothing to wait for."""
        if self.in_flight is built:
            self.in_flight, self.in_flight_block = None, None

    async def poll(self) -> int:
        """Fetch and fold new L1 events (or rewind what the L1 reorganised); returns how many
        events were folded."""
        async with self.lock:
            window = await asyncio.to_thread(self.cursor.read, self.reader)
            if window.last < self.cursor.next_block and window.fork is None:
                return 0
            folded = self.cursor.fold(window, self._fold, self._rewind)
            self.chain.settle(self.cursor.settled_block)
            block = self.in_flight_block
            if self.in_flight is not None and block is not None and self.cursor.next_block > block:
                # folded past the block that held it, without it: a reorganisation took it out
                log.warning("own_batch_not_on_l1", l1_block=block, txs=len(self.in_flight.txs))
                self.in_flight, self.in_flight_block = None, None
            return folded

    async def catch_up(self) -> None:
        """Poll until every L1 block up to the head is folded (at start)."""
        while True:
            await self.poll()
            if self.cursor.caught_up:
                return
            log.info(
                "catching_up",
                l1_block=self.cursor.next_block - 1,
                l1_head=self.cursor.l1_head,
                batches=len(self.chain.batches),
            )

    async def step(self) -> bool:
        """One turn of the follower loop: poll L1, then sweep expired orders out of the books."""
        await self.poll()
        if self.synced and self.leads():
            self.exchange.sweep()
        return True

    def included_on_l1(self, tx: bytes) -> int | None:
        """The L1 batch that holds a transaction (by hash) this node saw batched before it was
        pending here (a set's member behind its log), if it is one of the last `EARLY_KEPT`."""
        return self._early.get(tx)

    def _batched_early(self, hashes: set[bytes], included: list[PendingTx], batch: L1Batch) -> bool:
        """Remember a batch's transactions that are not pending here (queue entries aside);
        whether there were any."""
        unknown = hashes - {p.hash for p in included}
        if not unknown:
            return False
        early = False
        for raw, h in zip(batch.txs, batch_tx_hashes(batch.txs), strict=True):
            if h in unknown and raw and raw[0] not in QUEUE_TYPE_BYTES:
                self._early[h] = batch.header.index
                early = True
        while len(self._early) > EARLY_KEPT:
            self._early.popitem(last=False)
        return early

    def _forget_early(self, from_index: int) -> None:
        """Batches from `from_index` on no longer stand (reverted, or reorganised away): their
        transactions are no longer batched when the log brings them."""
        for h in [h for h, index in self._early.items() if index >= from_index]:
            del self._early[h]

    def _note_positions(self, batch: L1Batch) -> None:
        """Remember the traders whose positions a batch's transactions may have changed (the
        keeper's scan list); bytes that do not decode change nothing."""
        for raw in batch.txs:
            try:
                self.mempool.risk.note(decode_tx(raw))
            except RollupError:
                continue

    def _fold(self, events: list[L1Event]) -> None:
        if not self.synced:
            # Catching up after a start: only the chain moves. Reconciling the log and the
            # mempool against history (instead of the tip) would drop transactions that are
            # valid now; `reconcile_store` does it once, on the final state.
            for event in events:
                self.chain.apply_event(event)
                self.cursor.mark(event)
                if isinstance(event, L1Batch):
                    self._note_positions(event)
            return
        unforeseen = False
        forced: list[ForcedTx] = []
        reverted_foreign: list[bytes] = []
        queued = False
        unbatched = False
        for event in events:
            self.cursor.mark(event)
            if isinstance(event, L1QueueEntry):
                queued = True
            elif isinstance(event, L1Batch) and queued:
                # The view sees each queue entry before a batch consumes it (it is built on an
                # older tip, plus what was added since: an entry consumed in the same read would
                # be in neither).
                self._add_new_deposits()
                queued = False
            if isinstance(event, L1Revert):
                REVERTS_SEEN.inc()
                reverted = self.chain.batches[event.from_index :]
                if reverted and reverted[0].header.sequencer == self.address:
                    self.on_slashed()  # our batch was proven wrong: our bond is gone
                for b in reverted:
                    if b.header.sequencer != self.address:
                        reverted_foreign.extend(raw for raw in b.txs)
                self._forget_early(event.from_index)
                n = self.store.unbatch_from(event.from_index)
                unbatched = unbatched or n > 0
                self.stream.publish(
                    {"type": "revert", "from_index": event.from_index, "to_index": event.to_index}
                )
                log.warning(
                    "batches_reverted", from_index=event.from_index, to_index=event.to_index, txs_back=n
                )
                unforeseen = True
            if isinstance(event, L1ForcedTx):
                # The next batch applies it before every pending transaction: unless that makes
                # no difference (`Mempool.commutes`), plan those again after it (a pending one
                # it invalidates, e.g. the same nonce, is dropped).
                forced.append(ForcedTx(event.index, event.signed_tx))
            own = self.in_flight
            if (
                isinstance(event, L1Batch)
                and own is not None
                and event.header.sequencer == self.address
                and event.txs == tuple(own.txs)
                and event.roots == tuple(own.roots)
            ):
                self.in_flight, self.in_flight_block = None, None  # our batch is on L1
                if own.post_state is None or not self.chain.adopt_own(event, own.post_state):
                    self.chain.apply_event(event)  # unless its post-state is already computed
            else:
                self.chain.apply_event(event)
            if isinstance(event, L1Batch):
                tx_hashes = batch_tx_hashes(event.txs)
                hashes = set(tx_hashes)
                included = self.mempool.remove_included(hashes)
                if included:
                    self.store.mark_batched([p.seq for p in included], event.header.index)
                if unbatched:
                    # logged transactions a revert of this read put back to pending are not in the
                    # mempool yet: a later batch of the same read that holds them batches them
                    self.store.mark_batched_hashes(
                        list(hashes - {p.hash for p in included}), event.header.index
                    )
                if self.in_set:
                    if self._batched_early(hashes, included, event):
                        unforeseen = True
                        self._note_positions(event)
                elif event.header.sequencer != self.address:
                    unforeseen = True
                    self._note_positions(event)  # our own were noted on admission
                if self.stream.subscribers:  # (the message is made only if someone reads it)
                    self.stream.publish(
                        {
                            "type": "batch",
                            "index": event.header.index,
                            "post_root": "0x" + event.header.post_root.hex(),
                            "sequencer": "0x" + event.header.sequencer.hex(),
                            "tx_hashes": ["0x" + h.hex() for h in tx_hashes],
                            "valid": self.chain.fraud is None
                            or self.chain.fraud.batch_index > event.header.index,
                        }
                    )
                log.info(
                    "batch_seen",
                    index=event.header.index,
                    txs=event.header.tx_count,
                    sequencer=event.header.sequencer,
                    ours=event.header.sequencer == self.address,
                )
        L1_BATCHES.set(len(self.chain.batches))
        if self.chain.fraud is not None:
            log.error("fraud_detected_halting", **vars(self.chain.fraud))
        if self.chain.unreadable is not None:
            stuck = self.chain.unreadable
            log.critical(
                "batch_unreadable",
                batch=stuck.batch_index,
                l1_tx="0x" + stuck.l1_tx_hash.hex(),
                reason=stuck.reason,
            )
        view_queue, tip_queue = (
            get_next_deposit_index(self.mempool.view),
            get_next_deposit_index(self.chain.state),
        )
        if view_queue < tip_queue and not unforeseen:
            # a queue entry the tip consumed is missing from the view: only a rebuild adds it
            log.warning("view_behind_queue", view=view_queue, tip=tip_queue)
            unforeseen = True
        if unforeseen or not self.mempool.commutes(forced):
            self.rebase(reverted_foreign)  # the books are rebuilt from the new view
        else:
            self._add_new_deposits()  # forced transactions included: the same either way
            # a forced Cancel of a resting order: off its book now, no more fills of it (those
            # already pending go before the cancel in the batch: `queue_order`); a forced
            # Transfer or Withdraw that uncovers its sender's resting orders cancels some
            self.exchange.follow_queue(forced)

    def _rewind(self, l1_block: int) -> None:
        """The L1 no longer holds the blocks after `l1_block`: take back what was folded from
        them, and (once synced) put the log and the pending work in line with the chain that
        stands. Transactions of another sequencer's batch that vanished are its to post again."""
        rewound = self.chain.rewind(l1_block)
        first = rewound.from_index
        self._forget_early(first)
        self.in_flight, self.in_flight_block = None, None
        L1_BATCHES.set(len(self.chain.batches))
        L1_REORGS.inc()
        log.warning("l1_reorg", **rewound.facts(), batches=len(self.chain.batches))
        self.stream.publish(
            {"type": "reorg", "l1_block": l1_block, "from_index": first, "batches": len(self.chain.batches)}
        )
        if not self.synced:
            return  # `reconcile_store` puts the log in line once caught up
        self.store.unbatch_from(first)
        for batch in self.chain.batches[first:]:
            hashes = batch_tx_hashes(batch.txs)
            self.store.mark_batched_hashes(hashes, batch.header.index)
            included = self.mempool.remove_included(set(hashes))
            if self.in_set:
                self._batched_early(set(hashes), included, batch)
        self.rebase([])

    def _l1_context(self) -> tuple[list[QueueTx], L1Context]:
        """Every queue entry the tip has not consumed (deposits, messages, forced transactions, in
        order), with their context, for the speculative view (the tip's clock: queue entries do
        not read it)."""
        due = due_queue(self.chain.state, self.chain.queue, 1 << 30)
        return due, queue_context(self.chain.state, self.chain.queue, due, self.chain.tip_l2_time)

    def _add_new_deposits(self) -> None:
        due, ctx = self._l1_context()
        self.mempool.apply_deposits(due, ctx)

    def rebase(self, foreign: list[bytes]) -> None:
        """Rebuild the speculative view on the chain's tip: the logged pending transactions that
        still apply, then `foreign` ones (from another sequencer's reverted batches), then the
        books."""
        back = logged_pending(self.store, self.mempool.hashes)
        due, ctx = self._l1_context()
        self.mempool.rebase(self.chain.state, due, ctx, back)
        for raw in foreign if self.leads() else ():  # signed data from a reverted batch: kept alive
            try:
                tx = decode_tx(raw)
                if isinstance(tx, Deposit | L1Message | ForcedTx):  # queue entries come back from the queue
                    continue
                self.mempool.submit(raw)
            except RollupError as exc:  # no longer valid, or no room: the others still go in
                log.info("foreign_tx_not_readmitted", code=exc.code)
                continue
        log.info("mempool_rebased", pending=len(self.mempool), readmitted_foreign=len(foreign))
        # The books follow the view: remaining sizes as the new view has them, and orders whose
        # acknowledged fills were just dropped back at work (nothing acknowledged is lost silently:
        # a dropped fill keeps its log row and reason, and its orders trade again).
        self.exchange.rebuild()

    def reconcile_store(self) -> None:
        """After a (re)start: put the durable log in line with L1 as it is now, then reload the
        mempool: a logged transaction is batched iff a live L1 batch holds it."""
        on_l1: dict[bytes, int] = {}
        for b in self.chain.batches:
            for h in batch_tx_hashes(b.txs):
                on_l1[h] = b.header.index
        back: list[int] = []
        for row in self.store.unfinished():
            index = on_l1.get(row.hash)
            if index is not None and (row.status != "batched" or row.batch_index != index):
                self.store.mark_batched([row.seq], index)
            elif index is None and row.status == "batched":
                back.append(row.seq)
        self.store.mark_pending(back)
        self.rebase([])
