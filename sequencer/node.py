"""The sequencer node: wires the durable log, the mempool, the derived chain and the L1.

Two driver loops run on one asyncio event loop (all state is touched on that thread only; L1
I/O runs in worker threads):

- the follower polls L1 events and folds them into the `Chain` (the same derivation the watcher
  runs), then reconciles the mempool: transactions now in an L1 batch leave it, reverted ones
  come back, and after an unforeseen change the speculative view is rebuilt;
- the builder posts a batch when `batch_max_txs` are pending or `batch_interval_ms` has passed,
  one batch in flight at a time, and never on top of a batch it found invalid. A batch's clock
  (`l2_time`) is the later of the tip's and the wall clock, the latter capped at
  `L2_TIME_ALLOWANCE_SECONDS` past the L1 head only on an L1 whose clock was found behind ours
  (`choose_l2_time`).

Orders go through the node's `exchange` (`sequencer.exchange`): its books are rebuilt from the
log whenever the mempool's view is (at start after `reconcile_store`, after an L1 revert or
another sequencer's batch, after dropped transactions), and expired orders are swept out on every
follower step.

Errors in the loops are sorted as in the OP Stack: temporary (L1 unreachable, a posting that lost
a race) are retried with backoff; critical (the L1 history disagrees with itself) stop the node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast

from contracts.logs import get_logger
from sequencer.admission import AdmissionQueue
from sequencer.api.schemas import (
    AccountView,
    BatchView,
    OpenOrderView,
    PositionView,
    RiskCandidate,
    RiskView,
    StatusView,
)
from sequencer.builder import BuiltBatch, batch_clock, batch_tx_hashes, build_batch_steps
from sequencer.errors import NotReady
from sequencer.exchange import (
    TIME_MARGIN_SECONDS,
    AdmitTxs,
    Answer,
    BundleOutcome,
    CancelOrder,
    CancelOutcome,
    Exchange,
    ExchangeRequest,
    FillRecord,
    OrderDetails,
    OrderOutcome,
    PlaceBundle,
    PlaceOrders,
    account_risk,
)
from sequencer.keeper import deleverage_options, due_funding, liquidation_candidates
from sequencer.matching import OrderBook
from sequencer.mempool import PRIORITY_TYPE_BYTES, Mempool, is_priority, logged_pending
from sequencer.metrics import (
    ADMISSION_ROUND_ITEMS,
    ADMISSION_SIGNATURE_WAIT_SECONDS,
    ADMIT_SECONDS,
    BATCH_POST_FAILURES,
    BATCH_TXS,
    BATCHES_POSTED,
    L1_BATCHES,
    REVERTS_SEEN,
    TXS_ACCEPTED,
)
from sequencer.receipts import ReceiptSigner
from sequencer.sigpool import Recovered, SignatureWorker
from sequencer.stf.chain import Chain
from sequencer.stf.codec import decode_tx
from sequencer.stf.eip712 import order_digest
from sequencer.stf.errors import RollupError
from sequencer.stf.l1types import L1Batch, L1Event, L1ForcedTx, L1Reader, L1Revert
from sequencer.stf.margin import Markets
from sequencer.stf.queue import QueueTx, due_queue, queue_context
from sequencer.stf.state import get_account, get_next_deposit_index, state_root
from sequencer.stf.types import (
    Bundle,
    Cancel,
    ChainConfig,
    Deposit,
    ForcedTx,
    L1Context,
    L1Message,
    Signature,
    SignedOrder,
    Tx,
)
from sequencer.store import Store, StoredTx
from sequencer.stream import Stream

log = get_logger("sequencer")

POLL_RANGE_BLOCKS = 5_000
"""Most L1 blocks read in one poll."""

L2_TIME_ALLOWANCE_SECONDS = 1
"""How far past the L1 head's timestamp a batch's clock may run. Every block is at least one
second after its parent, so a clock at most one second past the head is never ahead of the block
that includes the append (the Rollup refuses `l2_time > block.timestamp`), whatever the L1."""

BUILD_SLICE_SECONDS = 0.002
"""Longest stretch of batch building between two turns of the event loop (requests wait no
longer than this for the builder)."""

LAG_SLACK_SECONDS = 60
"""A batch's clock stays this far inside the Rollup's lag limit (`MAX_L2_TIME_LAG_SECONDS`) behind
the L1 head, so that the block which includes the append, seconds later, still accepts it."""

REFUSED_AHEAD = "rollup: l2_time ahead of L1"
"""The Rollup's refusal of a clock past the append's block."""
REFUSED_BEHIND = "rollup: l2_time behind L1"
"""The Rollup's refusal of a clock more than `MAX_L2_TIME_LAG_SECONDS` behind the append's block."""


def choose_l2_time(tip_l2_time: int, now: float, head_timestamp: int, *, follow_head: bool = False) -> int:
    """The clock of the next batch (protocol section 8): the later of the tip's `l2_time` and the
    wall clock `now`; with `follow_head`, the wall clock is capped at `head_timestamp +
    L2_TIME_ALLOWANCE_SECONDS`.

    The embedded L1 and anvil stamp a block `max(parent + 1, wall clock)` and Ethereum a slot's
    start, which is after the moment a transaction is sent, so the wall clock is not ahead of the
    append's block on them — and it is what the oracle committee signs its prices with, so a batch
    clock behind it would refuse fresh prices. Only after the Rollup refused a clock as ahead of
    L1 (an L1 whose clock runs behind ours) does the node follow the head, until the Rollup
    refuses a clock as behind.
    """
    clock = int(now)
    if follow_head:
        clock = min(clock, head_timestamp + L2_TIME_ALLOWANCE_SECONDS)
    return max(tip_l2_time, clock)


_Queued = tuple[ExchangeRequest, str, "asyncio.Future[Recovered] | None"]
"""A request waiting for its admission round: what to do, its metrics label, and its orders'
digests and signers being computed elsewhere (if they are)."""


def _weight(request: ExchangeRequest) -> int:
    """Items a request counts for in an admission round."""
    if isinstance(request, PlaceOrders):
        return len(request.orders)
    if isinstance(request, AdmitTxs):
        return len(request.items)
    return 1


def _priority_item(item: Tx | bytes) -> bool:
    """Whether a transaction (decoded or encoded) is of a priority type."""
    if isinstance(item, bytes):
        return bool(item) and item[0] in PRIORITY_TYPE_BYTES
    return is_priority(item)


class L1Writer(Protocol):
    """What the sequencer sends to L1."""

    address: bytes
    """The sequencer's L1 account."""

    def head_timestamp(self) -> int:
        """Timestamp of the latest L1 block."""
        ...

    def append_batch(
        self,
        txs: list[bytes],
        roots: list[bytes],
        prev_root: bytes,
        queue_start: int,
        queue_end: int,
        l2_time: int,
    ) -> bytes:
        """Append a batch built on (`prev_root`, `queue_start`) with the clock `l2_time`.

        Returns the mined L1 tx hash; raises with the revert reason (an exception with a `reason`
        attribute, as `contracts.bindings.TransactionReverted`).
        """
        ...

    def ensure_bonded(self, bond_wei: int) -> None:
        """Register with a bond unless already bonded."""
        ...


@dataclass
class NodeOptions:
    """Tunables of the driver loops."""

    batch_max_txs: int = 256
    batch_interval_ms: int = 500
    l1_poll_ms: int = 250
    max_pending: int = 100_000
    corrupt_root_at: int = -1
    """Fault injection (tests/demo only): corrupt this tx's root in the next batch, once."""
    corrupt_batches: int = 1
    """How many batches to corrupt when `corrupt_root_at` is set (later ones are honest)."""
    bond_wei: int = 10**18
    """Bond posted at start when the sequencer is not bonded yet."""
    reserve_pending: int = 10_000
    """Mempool room above `max_pending` kept for cancels, liquidations, oracle updates and
    funding steps (`mempool.PRIORITY_TYPES`)."""
    order_time_margin_s: int = TIME_MARGIN_SECONDS
    """Orders are checked for expiry, and prices for staleness, this far ahead of the clock."""
    keeper_interval_ms: int = 1000
    """How often the keeper looks for due funding steps and accounts to deleverage."""
    corrupt_tx_type: int = -1
    """Fault injection (tests/demo only): corrupt the root of the first transaction of this type
    byte in the next batch holding one (instead of `corrupt_root_at`)."""
    admission_max_round: int = 64
    """Most ordinary items (orders, transactions) admitted in one group-commit round (a larger
    request is a round of its own); urgent ones (cancels, liquidations, oracle updates, funding)
    are all taken, first."""
    admission_max_queued: int = 20_000
    """Most items waiting for a round, per class; beyond it requests are refused `overloaded`."""
    signature_worker: bool = False
    """Compute order digests and recover signers in a worker process (`sequencer.sigpool`)
    instead of on the loop."""


class SequencerNode:
    """One sequencer: API-facing admission plus the follower and builder loops."""

    def __init__(
        self,
        config: ChainConfig,
        store: Store,
        reader: L1Reader,
        writer: L1Writer,
        *,
        start_block: int,
        options: NodeOptions | None = None,
        receipt_key: bytes | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.reader = reader
        self.writer = writer
        self.options = options or NodeOptions()
        self.receipts = None if receipt_key is None else ReceiptSigner(receipt_key, config)
        """Signs acknowledgements with the sequencer's L1 key (None: unsigned acks, tests only)."""
        self.chain = Chain(config)
        faulty = self.options.corrupt_root_at >= 0 or self.options.corrupt_tx_type >= 0
        if faulty:
            # A lying sequencer keeps building on its own batches; the honest path never does this.
            self.chain.trusted_sequencer = writer.address
        self.clock: Callable[[], float] = time.time
        """The wall clock (unix seconds); batch clocks and order checks read it."""
        self.last_head_timestamp: int | None = None
        """The L1 head's timestamp when the last batch clock was chosen."""
        self.mempool = Mempool(config, store, self.options.max_pending, self.options.reserve_pending)
        self.mempool.l2_time = self.estimated_l2_time
        self.next_block = start_block
        self.l1_head = start_block - 1
        self.last_event = (-1, -1)
        """(block, log index) of the last event folded."""
        self.synced = False
        self.batch_due = asyncio.Event()
        self.last_post = time.monotonic()
        self.faults_left = self.options.corrupt_batches if faulty else 0
        self.last_error: str | None = None
        self.loops_alive = {"follower": False, "builder": False, "keeper": False}
        self.stopping = False
        self.stream = Stream()
        """Chain and exchange events for WebSocket subscribers (`/v1/stream`)."""
        self.exchange = Exchange(
            config,
            self.mempool,
            stream=self.stream,
            clock=lambda: self.clock(),
            l2_floor=lambda: self.chain.tip_l2_time,
            chain_state=lambda: self.chain.state,
            margin_s=self.options.order_time_margin_s,
        )
        """The order books (rebuilt with the mempool's view, see `_rebase`)."""
        self.signatures = SignatureWorker(config) if self.options.signature_worker else None
        """Computes order digests and recovers signers in another process (`sequencer.sigpool`);
        None: on the loop."""
        self.admission: AdmissionQueue[_Queued, Answer] = AdmissionQueue(
            self._admit_round,
            max_round=self.options.admission_max_round,
            max_queued=self.options.admission_max_queued,
            observe_wait=ADMISSION_SIGNATURE_WAIT_SECONDS.observe,
        )
        """Group commit: the API's requests wait here for the next round (`sequencer.admission`)."""
        if self.signatures is not None:  # a round waiting for signers runs as they arrive
            self.signatures.on_answers = self.admission.run_ready
        self.poll_lock = asyncio.Lock()
        self.in_flight: BuiltBatch | None = None
        """The batch being appended, kept so that folding it back from L1 needs no re-execution."""
        self.max_l2_time_lag_seconds: int | None = None
        """The Rollup's `MAX_L2_TIME_LAG_SECONDS` (None: unknown, no floor on the batch clock)."""
        self.min_batch_clock = 0
        """No batch clock before this: the wall clock of the last attempt the Rollup refused as
        behind (the transactions' admission clocks were too old for it)."""
        self.clock_follows_head = False
        """Whether the next batch's clock is capped by the L1 head (see `choose_l2_time`): set
        after the Rollup found a clock ahead of its block, cleared after one found it behind."""
        """The follower and the builder both poll; one fold at a time, each event once."""

    # ---- admission (called by the API on the loop thread) -------------------------------

    def submit(self, item: Tx | bytes, *, revive: bool = False) -> tuple[bytes, int]:
        """Admit one transaction durably (see `Mempool.submit`)."""
        if not self.synced:
            raise NotReady("the node is still catching up with the L1")
        started = time.perf_counter()
        h, seq = self.mempool.submit(item, revive=revive)
        ADMIT_SECONDS.observe(time.perf_counter() - started)
        TXS_ACCEPTED.labels(type=type(item).__name__ if not isinstance(item, bytes) else "raw").inc()
        self._resync_books([item])
        self._batch_trigger()
        return h, seq

    def receipt(self, tx_hash: bytes, seq: int) -> bytes | None:
        """The signed acknowledgement of a logged transaction (see `sequencer.receipts`)."""
        if self.receipts is None:
            return None
        return self.receipts.sign(tx_hash, seq)

    def batch_receipt(self, items: list[tuple[bytes, int]]) -> bytes | None:
        """One signed acknowledgement of every (hash, seq) a batch request got."""
        if self.receipts is None or not items:
            return None
        return self.receipts.sign_batch(items)

    @property
    def address(self) -> bytes:
        """The sequencer's L1 address."""
        return self.writer.address

    def submit_many(self, items: list[bytes]) -> list[tuple[bytes, int] | RollupError]:
        """Admit several encoded transactions with one durable commit (see `Mempool.submit_many`)."""
        if not self.synced:
            raise NotReady("the node is still catching up with the L1")
        started = time.perf_counter()
        results = self.mempool.submit_many(items)
        accepted = sum(1 for r in results if not isinstance(r, RollupError))
        if accepted:
            ADMIT_SECONDS.observe((time.perf_counter() - started) / len(items))
            TXS_ACCEPTED.labels(type="batch").inc(accepted)
        self._resync_books([i for i, r in zip(items, results, strict=True) if not isinstance(r, RollupError)])
        self._batch_trigger()
        return results

    def _batch_trigger(self) -> None:
        if len(self.mempool) >= self.options.batch_max_txs:
            self.batch_due.set()

    def _resync_books(self, admitted: list[Tx | bytes]) -> None:
        """Orders that raw Cancel / Fill / BundleFill transactions touched: update the books."""
        digests = self.exchange.touched_orders(admitted)
        if digests:
            self.exchange.resync(digests)

    # ---- group commit (called by the API on the loop thread) ------------------------------

    def _require_synced(self) -> None:
        if not self.synced:
            raise NotReady("the node is still catching up with the L1")

    async def _admit(
        self,
        request: ExchangeRequest,
        label: str,
        *,
        urgent: bool,
        weight: int = 1,
        signers: asyncio.Future[Recovered] | None = None,
    ) -> Answer:
        """Queue a request for the next admission round and wait for its answer; `signers`:
        its orders' digests and signers, being recovered by the signature worker."""
        queued = (request, label, signers)
        return await self.admission.submit(queued, urgent=urgent, weight=weight, ready=signers)

    def _admit_round(self, requests: list[_Queued]) -> list[Answer]:
        """One admission round: every request with ONE durable commit (`Exchange.admit`)."""
        started = time.perf_counter()
        work: list[ExchangeRequest] = []
        for request, _, signers in requests:
            if signers is not None and isinstance(request, PlaceOrders):
                if signers.done() and not signers.cancelled() and signers.exception() is None:
                    recovered = signers.result()  # else the round computes both itself
                    digests = [digest for digest, _ in recovered]
                    request = replace(request, digests=digests, signers=[signer for _, signer in recovered])
            work.append(request)
        answers = self.exchange.admit(work)
        items = sum(_weight(request) for request in work)
        ADMIT_SECONDS.observe((time.perf_counter() - started) / max(items, 1))
        ADMISSION_ROUND_ITEMS.observe(items)
        for (_, label, _), answer in zip(requests, answers, strict=True):
            if isinstance(answer, list):
                accepted = fills = 0
                for item in answer:
                    if isinstance(item, OrderOutcome):
                        fills += 0 if item.known else len(item.fills)
                    elif isinstance(item, tuple):
                        accepted += 1
                if fills:
                    TXS_ACCEPTED.labels(type="Fill").inc(fills)
                if accepted:
                    TXS_ACCEPTED.labels(type=label).inc(accepted)
            elif isinstance(answer, CancelOutcome):
                TXS_ACCEPTED.labels(type="Cancel").inc()
            elif isinstance(answer, BundleOutcome) and not answer.known:
                TXS_ACCEPTED.labels(type="BundleFill").inc()
        self._batch_trigger()
        return answers

    async def admit_orders(self, orders: list[SignedOrder]) -> list[OrderOutcome | RollupError]:
        """Place signed orders in order (`Exchange.place_many`), in the next admission round;
        their digests and signers are computed meanwhile by the signature worker, if there is
        one."""
        request, signers = self._place_request(orders)
        answer = await self._admit(request, "Fill", urgent=False, weight=len(orders), signers=signers)
        assert isinstance(answer, list)
        return answer  # type: ignore[return-value]

    def place_orders_now(
        self,
        orders: list[SignedOrder],
        reply: Callable[[list[OrderOutcome | RollupError] | BaseException], None],
    ) -> None:
        """`admit_orders` without a task waiting: the admission round that places them calls
        `reply` with what `admit_orders` would return (or the exception it would raise), in the
        same turn of the loop (`AdmissionQueue.submit_nowait`). Raises at once what
        `admit_orders` raises before queueing (`NotReady`, `Overloaded`)."""
        request, signers = self._place_request(orders)
        answered = cast("Callable[[Answer | BaseException], None]", reply)  # PlaceOrders: a list
        self.admission.submit_nowait((request, "Fill", signers), answered, weight=len(orders), ready=signers)

    def _place_request(
        self, orders: list[SignedOrder]
    ) -> tuple[PlaceOrders, asyncio.Future[Recovered] | None]:
        self._require_synced()
        signers = None if self.signatures is None else self.signatures.recover(orders)
        if signers is None:  # digests now, signers in the round
            config = self.config
            return PlaceOrders(orders, [order_digest(signed.order, config) for signed in orders]), None
        return PlaceOrders(orders), signers

    async def admit_cancel(self, tx: Cancel) -> CancelOutcome:
        """Admit a signed Cancel and take the order out of its book (urgent class)."""
        self._require_synced()
        answer = await self._admit(CancelOrder(tx), "Cancel", urgent=True)
        if isinstance(answer, RollupError):
            raise answer
        assert isinstance(answer, CancelOutcome)
        return answer

    def cancel_now(self, tx: Cancel, reply: Callable[[CancelOutcome | BaseException], None]) -> None:
        """`admit_cancel` without a task waiting: the admission round calls `reply` with its
        outcome (or the refusal `admit_cancel` would raise), in the same turn of the loop."""
        self._require_synced()
        answered = cast("Callable[[Answer | BaseException], None]", reply)  # CancelOrder: a CancelOutcome
        self.admission.submit_nowait((CancelOrder(tx), "Cancel", None), answered, urgent=True)

    async def admit_bundle(self, bundle: Bundle, sig: Signature) -> BundleOutcome:
        """Fill a signed bundle whole against resting orders, or refuse it."""
        self._require_synced()
        answer = await self._admit(PlaceBundle(bundle, sig), "BundleFill", urgent=False)
        if isinstance(answer, RollupError):
            raise answer
        assert isinstance(answer, BundleOutcome)
        return answer

    async def admit_txs(
        self, items: list[Tx | bytes], label: str = "batch"
    ) -> list[tuple[bytes, int] | RollupError]:
        """Admit transactions in order (`Mempool.submit_many`), in the next admission round;
        urgent when every one of them is of a priority type (`mempool.PRIORITY_TYPES`)."""
        self._require_synced()
        urgent = all(_priority_item(item) for item in items)
        answer = await self._admit(AdmitTxs(items), label, urgent=urgent, weight=len(items))
        assert isinstance(answer, list)
        return answer  # type: ignore[return-value]

    async def admit_tx(self, item: Tx | bytes) -> tuple[bytes, int]:
        """Admit one transaction (`submit`), in the next admission round."""
        label = "raw" if isinstance(item, bytes) else type(item).__name__
        (result,) = await self.admit_txs([item], label)
        if isinstance(result, RollupError):
            raise result
        return result

    def order_details(self, digest: bytes) -> OrderDetails | None:
        """An order the exchange accepted (see `Exchange.order_details`)."""
        return self.exchange.order_details(digest)

    def fills_of(self, account: bytes, limit: int, before_seq: int | None) -> list[FillRecord]:
        """An account's latest fills, newest first."""
        return self.exchange.fills_of(account, limit, before_seq)

    def markets(self) -> Markets:
        """The listed markets, as of the mempool."""
        return self.exchange.markets()

    def book(self, market_id: int) -> OrderBook | None:
        """The order book of a listed market (None if not listed)."""
        return self.exchange.book(market_id)

    # ---- reads ---------------------------------------------------------------------------

    def tx_status(self, h: bytes) -> StoredTx | None:
        """The log row of a transaction."""
        return self.store.get(h)

    def account_view(self, address: bytes) -> AccountView:
        """An account as of the L1 tip and as of the mempool, with its risk (as of the mempool,
        computed by the state machine's margin functions) and its resting orders."""
        confirmed = get_account(self.chain.state, address)
        pending = get_account(self.mempool.view, address)
        risk = account_risk(self.mempool.view.tree, address)
        return AccountView(
            address="0x" + address.hex(),
            collateral=str(confirmed.collateral),
            nonce=confirmed.nonce,
            pending_collateral=str(pending.collateral),
            pending_nonce=pending.nonce,
            equity=str(risk.equity),
            initial_margin=str(risk.initial_margin),
            maintenance_margin=str(risk.maintenance_margin),
            margin_ratio_bps=risk.margin_ratio_bps,
            positions=[
                PositionView(
                    market=p.market,
                    size=p.size,
                    open_notional=str(p.open_notional),
                    mark_price=p.mark_price,
                    unrealized_pnl=str(p.unrealized_pnl),
                    liquidation_price=p.liquidation_price,
                )
                for p in risk.positions
            ],
            open_orders=[
                OpenOrderView(
                    digest="0x" + o.order_id.hex(),
                    market=o.market,
                    side=int(o.side),
                    price=o.price,
                    resting=o.size,
                    flags=int(o.flags),
                    expiry=o.expiry,
                )
                for o in self.exchange.open_orders(address)
            ],
        )

    def batch_view(self, index: int) -> BatchView | None:
        """A batch on L1."""
        if index >= len(self.chain.batches):
            return None
        b = self.chain.batches[index]
        h = b.header
        return BatchView(
            index=h.index,
            prev_root="0x" + h.prev_root.hex(),
            post_root="0x" + h.post_root.hex(),
            tx_root="0x" + h.tx_root.hex(),
            roots_root="0x" + h.roots_root.hex(),
            tx_count=h.tx_count,
            queue_start=h.queue_start,
            queue_end=h.queue_end,
            sequencer="0x" + h.sequencer.hex(),
            timestamp=h.timestamp,
            l1_tx_hash="0x" + b.l1_tx_hash.hex(),
            tx_hashes=["0x" + x.hex() for x in batch_tx_hashes(b.txs)],
        )

    def status_view(self) -> StatusView:
        """The node at a glance."""
        fraud = self.chain.fraud
        return StatusView(
            sequencer="0x" + self.writer.address.hex(),
            chain_id=self.config.chain_id,
            rollup="0x" + self.config.rollup.hex(),
            l1_batches=len(self.chain.batches),
            state_root="0x" + state_root(self.chain.state).hex(),
            next_deposit_index=get_next_deposit_index(self.chain.state),
            pending=len(self.mempool),
            halted_on_fraud=None if fraud is None else {"batch": fraud.batch_index, "tx": fraud.tx_index},
        )

    def risk_view(self) -> RiskView:
        """Liquidation candidates as of the mempool's view and the batch clock."""
        now = self.estimated_l2_time()
        candidates = liquidation_candidates(self.mempool.view.tree, self.mempool.risk, now)
        return RiskView(
            l2_time=now,
            candidates=[
                RiskCandidate(
                    account="0x" + c.account.hex(),
                    market=c.market,
                    size=c.size,
                    shortfall=str(c.shortfall),
                    bankrupt=c.bankrupt,
                )
                for c in candidates
            ],
        )

    def keeper_step(self) -> list[Tx]:
        """The sequencer's own upkeep (protocol section 3): a Funding step for every market whose
        interval passed, and auto-deleveraging of a bankrupt account's last position when the
        insurance fund cannot cover it (the best-ranked counterparty the state machine accepts).
        Returns what was admitted.

        Each step names the state it changes (a Funding its period, a Deleverage the account's
        nonce), so it is a new transaction, never one acknowledged before. One the mempool
        dropped after an L1 revert and that applies again has the same bytes: it is revived
        (nobody signed it, and nothing else can replace it)."""
        if not self.synced:
            return []
        now = self.estimated_l2_time()
        tree = self.mempool.view.tree
        admitted: list[Tx] = []
        for step in due_funding(tree, now):  # the view counts pending steps: none is due again
            try:
                self.submit(step, revive=True)
                admitted.append(step)
            except RollupError as exc:
                log.info("funding_not_admitted", market=step.market, since=step.since, code=exc.code)
        for candidate in liquidation_candidates(tree, self.mempool.risk, now):
            if not candidate.bankrupt:
                continue
            for option in deleverage_options(tree, self.mempool.risk, candidate.account, now):
                try:
                    self.submit(option, revive=True)
                except RollupError:
                    continue  # the state machine refuses this counterparty: try the next
                admitted.append(option)
                log.warning(
                    "deleveraged",
                    account=option.account,
                    counterparty=option.counterparty,
                    market=option.market,
                )
                break
        return admitted

    async def keeper_loop(self) -> None:
        """Run `keeper_step` every `keeper_interval_ms`."""

        async def step() -> object:
            return self.keeper_step()

        await self._loop("keeper", step, self.options.keeper_interval_ms / 1000)

    async def close(self) -> None:
        """Stop what the node started besides its loops (the signature worker)."""
        if self.signatures is not None:
            await self.signatures.stop()

    def health(self) -> dict[str, Any]:
        """Liveness facts; `critical` names a batch on L1 this node cannot read (it then follows
        L1 but builds nothing until a revert removes that batch)."""
        stuck = self.chain.unreadable
        ok = self.synced and all(self.loops_alive.values()) and stuck is None
        return {
            "ok": ok,
            "synced": self.synced,
            "loops": dict(self.loops_alive),
            "last_error": self.last_error,
            "critical": None if stuck is None else stuck.describe(),
        }

    # ---- following the L1 ----------------------------------------------------------------

    async def poll_l1(self) -> int:
        """Fetch and fold new L1 events; returns how many were folded."""
        async with self.poll_lock:
            head = await asyncio.to_thread(self.reader.head_block)
            if head < self.next_block:
                return 0
            # at most POLL_RANGE_BLOCKS per call, so catching up shows progress and bounds memory
            to = min(head, self.next_block + POLL_RANGE_BLOCKS - 1)
            events = await asyncio.to_thread(self.reader.events, self.next_block, to)
            # events already folded (a fold that failed part-way is read again) are skipped
            events = [e for e in events if (e.l1_block, e.log_index) > self.last_event]
            self.l1_head = head
            if events:
                self._fold(events)
            self.next_block = to + 1  # only once the whole range is folded
            return len(events)

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
                self.last_event = (event.l1_block, event.log_index)
                if isinstance(event, L1Batch):
                    self._note_positions(event)
            return
        unforeseen = False
        forced: list[ForcedTx] = []
        reverted_foreign: list[bytes] = []
        for event in events:
            self.last_event = (event.l1_block, event.log_index)
            if isinstance(event, L1Revert):
                REVERTS_SEEN.inc()
                reverted = self.chain.batches[event.from_index :]
                for b in reverted:
                    if b.header.sequencer != self.writer.address:
                        reverted_foreign.extend(raw for raw in b.txs)
                n = self.store.unbatch_from(event.from_index)
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
                and own.post_state is not None
                and event.header.sequencer == self.writer.address
                and event.txs == tuple(own.txs)
                and event.roots == tuple(own.roots)
                and self.chain.adopt_own(event, own.post_state)
            ):
                self.in_flight = None  # our own batch: its post-state is already computed
            else:
                self.chain.apply_event(event)
            if isinstance(event, L1Batch):
                hashes = set(batch_tx_hashes(event.txs))
                included = self.mempool.remove_included(hashes)
                if included:
                    self.store.mark_batched([p.seq for p in included], event.header.index)
                if event.header.sequencer != self.writer.address:
                    unforeseen = True
                    self._note_positions(event)  # our own were noted on admission
                self.stream.publish(
                    {
                        "type": "batch",
                        "index": event.header.index,
                        "post_root": "0x" + event.header.post_root.hex(),
                        "sequencer": "0x" + event.header.sequencer.hex(),
                        "tx_hashes": ["0x" + h.hex() for h in batch_tx_hashes(event.txs)],
                        "valid": self.chain.fraud is None
                        or self.chain.fraud.batch_index > event.header.index,
                    }
                )
                log.info(
                    "batch_seen",
                    index=event.header.index,
                    txs=event.header.tx_count,
                    sequencer=event.header.sequencer,
                    ours=event.header.sequencer == self.writer.address,
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
        if unforeseen or not self.mempool.commutes(forced):
            self._rebase(reverted_foreign)
        else:
            self._add_new_deposits()  # forced transactions included: the same either way

    def _l1_context(self) -> tuple[list[QueueTx], L1Context]:
        """Every queue entry the tip has not consumed (deposits, messages, forced transactions, in
        order), with
        their context, for the speculative view (the tip's clock: queue entries do not read it)."""
        due = due_queue(self.chain.state, self.chain.queue, 1 << 30)
        return due, queue_context(self.chain.state, self.chain.queue, due, self.chain.tip_l2_time)

    def _add_new_deposits(self) -> None:
        due, ctx = self._l1_context()
        self.mempool.apply_deposits(due, ctx)

    def _rebase(self, foreign: list[bytes]) -> None:
        back = logged_pending(self.store, self.mempool.hashes)
        due, ctx = self._l1_context()
        self.mempool.rebase(self.chain.state, due, ctx, back)
        for raw in foreign:  # signed data from a reverted batch: keep it alive (no lost order)
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
        self._rebase([])

    # ---- building ------------------------------------------------------------------------

    async def _build(self, l2_time: int, take: int | None = None) -> BuiltBatch | None:
        """Build the next batch in slices of about `BUILD_SLICE_SECONDS`, serving requests in
        between (admission only appends to the pending list; the follower, which could move the
        chain under the build, waits for `poll_lock`)."""
        faulting = self.faults_left > 0
        corrupt = self.options.corrupt_root_at if faulting else -1
        corrupt_type = self.options.corrupt_tx_type if faulting else -1
        steps = build_batch_steps(
            self.chain.state,
            self.chain.queue,
            self.mempool.pending,
            self.config,
            l2_time=l2_time,
            max_txs=self.options.batch_max_txs,
            take=take,
            corrupt_root_at=corrupt,
            corrupt_tx_type=corrupt_type,
        )
        slice_started = time.perf_counter()
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if time.perf_counter() - slice_started > BUILD_SLICE_SECONDS:
                await asyncio.sleep(0)
                slice_started = time.perf_counter()

    async def _next_l2_time(self) -> int:
        """The clock of the batch about to be built (`choose_l2_time`)."""
        head_timestamp = await asyncio.to_thread(self.writer.head_timestamp)
        self.last_head_timestamp = head_timestamp
        return choose_l2_time(
            self.chain.tip_l2_time, self.clock(), head_timestamp, follow_head=self.clock_follows_head
        )

    def _batch_clock(self, upper: int) -> tuple[int, int]:
        """The next batch's clock and how many pending transactions it takes (`batch_clock`):
        the clock its transactions were admitted with, within what the L1 accepts."""
        floor = self.min_batch_clock
        lag, head = self.max_l2_time_lag_seconds, self.last_head_timestamp
        if lag is not None and head is not None:
            # the append's block is stamped near the wall clock even when the head is idle and old
            floor = max(floor, max(head, upper) - lag + min(LAG_SLACK_SECONDS, lag // 2))
        floor = min(floor, upper)  # never past what the L1 allows now
        return batch_clock(
            self.mempool.pending,
            tip=self.chain.tip_l2_time,
            upper=upper,
            max_txs=self.options.batch_max_txs,
            floor=floor,
        )

    def estimated_l2_time(self) -> int:
        """The clock a batch built now would have (the last L1 head seen stands for the head):
        what admission plans transactions with."""
        head = self.last_head_timestamp
        if head is None:
            return max(self.chain.tip_l2_time, int(self.clock()))
        return choose_l2_time(self.chain.tip_l2_time, self.clock(), head, follow_head=self.clock_follows_head)

    async def build_and_post(self) -> bool:
        """Post one batch if there is anything to post; True if a batch was appended."""
        if self.chain.fraud is not None or self.chain.valid_count != len(self.chain.batches):
            return False  # never build on a batch we found invalid
        if not self.mempool.pending and not due_queue(self.chain.state, self.chain.queue, 1):
            return False  # nothing to post: no need to ask L1 for the time
        upper = await self._next_l2_time()
        async with self.poll_lock:  # the chain stays as it is while the batch is built on it
            l2_time, take = self._batch_clock(upper)
            built = await self._build(l2_time, take)
        if built is None:
            return False
        self.store.drop_many([(ptx.seq, reason) for ptx, reason in built.skipped])
        self.mempool.remove_included({ptx.hash for ptx, _ in built.skipped})
        for ptx, reason in built.skipped:
            log.warning("tx_dropped", hash=ptx.hash, reason=reason)
        if built.skipped:  # the speculative view had drifted from the chain: rebuild it
            self._rebase([])
        if not built.txs:  # every transaction it took was dropped: the next build goes on
            return False
        self.in_flight = built
        try:
            l1_tx = await asyncio.to_thread(
                self.writer.append_batch,
                built.txs,
                built.roots,
                self.chain.tip_root,
                self.chain.queue_end,
                built.queue_end,
                built.l2_time,
            )
        except Exception as exc:  # temporary: lost a race or L1 hiccup; the follower resyncs
            BATCH_POST_FAILURES.inc()
            self.last_error = f"append failed: {exc}"
            refusal = getattr(exc, "reason", None)
            if refusal == REFUSED_BEHIND:  # following an idle L1's head fell too far behind
                self.clock_follows_head = False
                self.min_batch_clock = max(self.min_batch_clock, int(self.clock()))  # no older planned clock
            elif refusal == REFUSED_AHEAD:  # an L1 whose clock is behind ours
                self.clock_follows_head = True
            log.warning("batch_post_failed", error=str(exc), txs=len(built.txs), l2_time=built.l2_time)
            await self.poll_l1()
            return False
        if self.faults_left > 0 and built.post_state is None:
            self.faults_left -= 1
            log.warning(
                "fault_injected", tx_index=self.options.corrupt_root_at, tx_type=self.options.corrupt_tx_type
            )
        self.last_post = time.monotonic()
        BATCHES_POSTED.inc()
        BATCH_TXS.observe(len(built.txs))
        log.info(
            "batch_posted", txs=len(built.txs), queue_end=built.queue_end, l2_time=built.l2_time, l1_tx=l1_tx
        )
        await self.poll_l1()  # fold our own batch now, before building the next
        return True

    # ---- driver loops --------------------------------------------------------------------

    async def start(self) -> None:
        """Catch up with L1 and reload the durable log; then the node accepts transactions."""
        await asyncio.to_thread(self.writer.ensure_bonded, self.options.bond_wei)
        if self.signatures is not None:
            await self.signatures.start()
        while True:
            await self.poll_l1()
            if self.next_block > self.l1_head:
                break
            log.info(
                "catching_up",
                l1_block=self.next_block - 1,
                l1_head=self.l1_head,
                batches=len(self.chain.batches),
            )
        # the clock admission plans with follows the L1 head as the batch clock does
        self.last_head_timestamp = await asyncio.to_thread(self.writer.head_timestamp)
        self.reconcile_store()
        self.synced = True
        log.info(
            "synced",
            batches=len(self.chain.batches),
            pending=len(self.mempool),
            root=state_root(self.chain.state),
        )

    async def follower_loop(self) -> None:
        """Poll L1 events forever; sweep expired orders out of the books between polls."""

        async def step() -> int:
            folded = await self.poll_l1()
            if self.synced:
                self.exchange.sweep()
            return folded

        await self._loop("follower", step, self.options.l1_poll_ms / 1000)

    async def builder_loop(self) -> None:
        """Post batches on the size or time trigger."""

        async def step() -> object:
            interval = self.options.batch_interval_ms / 1000
            try:
                await asyncio.wait_for(self.batch_due.wait(), timeout=interval)
            except TimeoutError:
                pass
            self.batch_due.clear()
            posted = await self.build_and_post()
            if posted and len(self.mempool) >= self.options.batch_max_txs:
                self.batch_due.set()
            return posted

        await self._loop("builder", step, 0)

    async def _loop(self, name: str, step: Callable[[], Any], pause: float) -> None:
        backoff = 0.1
        self.loops_alive[name] = True
        try:
            while not self.stopping:
                try:
                    await step()
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.last_error = f"{name}: {type(exc).__name__}: {exc}"
                    log.warning("loop_error", loop=name, error=self.last_error, retry_in=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if pause:
                    await asyncio.sleep(pause)
        finally:
            self.loops_alive[name] = False
