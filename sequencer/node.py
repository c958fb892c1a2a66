"""The sequencer node: wires the parts of one sequencer and runs their loops.

The parts, each named for what it does:

- `Intake` (`sequencer.intake`): admission of what the API sends, in group-commit rounds, into
  the exchange (`sequencer.exchange`: the order books) and the durable log;
- `Follower` (`sequencer.follower`): reads L1, folds it into the derived `Chain` (the same
  derivation the watcher runs) and rebases the pending work on it;
- `Poster` (`sequencer.poster`): the batch trigger, building a batch and appending it to L1, with
  the batch clock `L2Clock` (`sequencer.l2clock`);
- `Upkeep` (`sequencer.upkeep`): the sequencer's own funding and deleveraging steps;
- `Views` (`sequencer.views`): what the API reads, and health.

Three driver loops (follower, builder, keeper) run on one asyncio event loop, each through
`contracts.follow.drive` (all state is touched on that thread only; L1 I/O runs in worker threads
or processes). Their errors are sorted as in the OP Stack: a `TransientError` (L1 unreachable) is
retried with backoff; a `CriticalError` (the L1 history disagrees with itself) stops its loop,
and /health says why; anything else is retried with backoff and logged as unexpected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contracts.follow import LoopHealth, drive
from contracts.health import HealthLimits
from contracts.logs import get_logger
from sequencer.exchange import (
    MAX_OPEN_ORDERS,
    TIME_MARGIN_SECONDS,
    BundleOutcome,
    CancelOutcome,
    Exchange,
    FillRecord,
    OrderDetails,
    OrderOutcome,
)
from sequencer.fairness import AccountRates
from sequencer.follower import Follower
from sequencer.intake import Intake
from sequencer.l2clock import L2Clock
from sequencer.liveness import Liveness
from sequencer.matching import OrderBook
from sequencer.mempool import Mempool
from sequencer.poster import L1Writer, Poster
from sequencer.receipts import ReceiptSigner
from sequencer.stf.chain import Chain
from sequencer.stf.errors import RollupError
from sequencer.stf.l1types import L1Reader
from sequencer.stf.margin import Markets
from sequencer.stf.state import state_root
from sequencer.stf.types import Bundle, Cancel, ChainConfig, Signature, SignedOrder, Tx
from sequencer.store import Store, StoredTx
from sequencer.stream import Stream
from sequencer.upkeep import Upkeep
from sequencer.views import AccountView, BatchView, RiskView, StatusView, Views

if TYPE_CHECKING:
    from sequencer.member import Member

log = get_logger("sequencer")


@dataclass
class NodeOptions:
    """Tunables of the driver loops."""

    batch_max_txs: int = 256
    batch_interval_ms: int = 500
    l1_poll_ms: int = 250
    max_pending: int = 100_000
    bond_wei: int = 10**18
    """Bond posted at start when the sequencer is not bonded yet."""
    reserve_pending: int = 10_000
    """Mempool room above `max_pending` kept for cancels, liquidations, oracle updates and
    funding steps (`mempool.PRIORITY_TYPES`)."""
    order_time_margin_s: int = TIME_MARGIN_SECONDS
    """Orders are checked for expiry, and prices for staleness, this far ahead of the clock."""
    max_open_orders: int = MAX_OPEN_ORDERS
    """Most resting orders kept for one account (`Exchange.max_open_orders`)."""
    keeper_interval_ms: int = 1000
    """How often the keeper looks for due funding steps and accounts to deleverage."""
    admission_max_round: int = 64
    """Most ordinary items (orders, transactions) admitted in one group-commit round (a larger
    request is a round of its own); urgent ones (cancels, liquidations, oracle updates, funding)
    are all taken, first."""
    admission_max_queued: int = 20_000
    """Most items waiting for a round, per class; beyond it requests are refused `overloaded`."""
    signature_worker: bool = False
    """Compute order digests and recover signers in a worker process (`sequencer.sigpool`)
    instead of on the loop."""
    health: HealthLimits = field(default_factory=HealthLimits)
    """When /health says 503 and admission stops acknowledging (`sequencer.liveness`)."""
    account_orders_per_s: int = 2_000
    """Each signing account's share of orders placed (`sequencer.fairness.AccountRates`)."""
    account_orders_burst: int = 10_000
    """The most orders an account may place at once above its average rate."""
    in_set: bool = False
    """A member of a sequencer set (`attach_member`): it leads only while it holds the set's lease."""


PosterFactory = Callable[..., Poster]
"""Makes the node's poster from `Poster`'s arguments (a variant may post differently)."""


class SequencerNode:
    """One sequencer: its parts, wired; what the API calls (`sequencer.api.deps.NodeAPI`); its loops."""

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
        chain: Chain | None = None,
        poster: PosterFactory = Poster,
    ) -> None:
        options = options or NodeOptions()
        self.config = config
        self.store = store
        self.reader = reader
        self.writer = writer
        self.options = options
        self.chain = chain if chain is not None else Chain(config)
        """The chain as L1 defines it (`chain`: a derivation to start from instead of a new one)."""
        self.l2clock = L2Clock(self.chain)
        self.mempool = Mempool(config, store, options.max_pending, options.reserve_pending)
        self.mempool.l2_time = self.l2clock.estimate
        self.stream = Stream()
        """Chain and exchange events for WebSocket subscribers (`/v1/stream`)."""
        self.exchange = Exchange(
            config,
            self.mempool,
            stream=self.stream,
            clock=lambda: self.l2clock.wall(),
            l2_floor=lambda: self.chain.tip_l2_time,
            chain_state=lambda: self.chain.state,
            margin_s=options.order_time_margin_s,
            max_open_orders=options.max_open_orders,
        )
        """The order books (rebuilt with the mempool's view, see `Follower.rebase`)."""
        self.loop_health = LoopHealth(loops={"follower": False, "builder": False, "keeper": False})
        self.stopping = False
        self.follower = Follower(
            self.chain,
            reader,
            store,
            self.mempool,
            self.exchange,
            self.stream,
            address=writer.address,
            start_block=start_block,
            in_set=options.in_set,
        )
        self.poster = poster(
            config,
            self.chain,
            store,
            self.mempool,
            self.follower,
            writer,
            self.l2clock,
            self.loop_health,
            batch_max_txs=options.batch_max_txs,
            batch_interval_ms=options.batch_interval_ms,
        )
        self.liveness = Liveness(
            options.health,
            self.follower.cursor,
            self.poster,
            self.loop_health,
            synced=self._synced,
            critical=self._critical,
            pending=lambda: len(self.mempool),
            max_pending=options.max_pending,
        )
        self.intake = Intake(
            config,
            self.mempool,
            self.exchange,
            ready=self._synced,
            available=self._check_writes,
            admitted=self.poster.trigger,
            receipts=None if receipt_key is None else ReceiptSigner(receipt_key, config),
            signature_worker=options.signature_worker,
            max_round=options.admission_max_round,
            max_queued=options.admission_max_queued,
            accounts=AccountRates(options.account_orders_per_s, options.account_orders_burst),
        )
        self.upkeep = Upkeep(self.mempool, self.intake.submit, self.l2clock.estimate, self._admitting)
        self.views = Views(
            config,
            self.chain,
            store,
            self.mempool,
            self.exchange,
            self.liveness,
            address=writer.address,
            l2_time=self.l2clock.estimate,
        )

        self.member: Member | None = None
        """This node's place in its sequencer set (None: a sequencer on its own)."""

    def attach_member(self, member: Member) -> None:
        """Make this node a member of a sequencer set: it admits, answers, posts, sweeps and keeps
        only while it leads, answers each admission round once it is in the set's log, and posts
        only what the log holds (call before `start`)."""
        self.member = member
        self.intake.admission.hold = member.barrier
        self.poster.may_post = member.leading
        self.poster.postable_seq = member.postable_seq
        self.poster.log_batch_waits = member.batches.waiting
        self.poster.on_appended = member.batch_posted
        self.follower.leads = member.leading
        self.follower.on_slashed = member.slashed
        self.mempool.replica = True  # until it leads

    def forward_url(self) -> str | None:
        """The leader's URL while this node is a member of a set that does not lead (its API
        forwards writes there, `sequencer.api.forward`); None otherwise."""
        member = self.member
        if member is None or member.leading() or member.role == "deposed":
            return None
        leader = member.leader_name
        return leader if leader and leader != member.options.name else None

    def log_position(self) -> int | None:
        """The position of the set's log this member's reads answer from (None: not in a set)."""
        return None if self.member is None else self.member.position()

    @property
    def member_name(self) -> str:
        """This node's name in its set (its L1 address when on its own)."""
        return self.member.options.name if self.member is not None else "0x" + self.writer.address.hex()

    def _check_writes(self) -> None:
        """Raise the refusal of a write now: not the set's leader, or the L1 away too long."""
        if self.member is not None:
            self.member.check_leading()
        self.liveness.check_admission()

    def _synced(self) -> bool:
        return self.follower.synced

    def _admitting(self) -> bool:
        """Synced, and within the limits that stop acknowledgements (`Liveness.check_admission`)."""
        if not self.follower.synced:
            return False
        try:
            self._check_writes()
        except RollupError:
            return False
        return True

    def _critical(self) -> str | None:
        """Why a loop stopped, or the batch on L1 this node cannot read; None while neither."""
        stuck = self.chain.unreadable
        return self.loop_health.critical or (None if stuck is None else stuck.describe())

    # ---- running -------------------------------------------------------------------------

    async def start(self) -> None:
        """Catch up with L1 and reload the durable log; then the node accepts transactions."""
        await asyncio.to_thread(self.writer.ensure_bonded, self.options.bond_wei)
        if self.intake.signatures is not None:
            await self.intake.signatures.start()
        await self.follower.catch_up()
        if self.member is not None:  # the set's log, into the durable log, before reconciling it
            await self.member.catch_up()
        # the clock admission plans with follows the L1 head as the batch clock does
        self.l2clock.last_head_timestamp = await asyncio.to_thread(self.writer.head_timestamp)
        self.follower.reconcile_store()
        self.follower.synced = True
        log.info(
            "synced",
            batches=len(self.chain.batches),
            pending=len(self.mempool),
            root=state_root(self.chain.state),
        )

    async def follower_loop(self) -> None:
        """Poll L1 events forever; sweep expired orders out of the books between polls."""
        await self._drive("follower", self.follower.step, self.options.l1_poll_ms / 1000)

    async def builder_loop(self) -> None:
        """Post batches on the size or time trigger."""
        await self._drive("builder", self.poster.step, 0)

    async def keeper_loop(self) -> None:
        """Admit due funding steps and deleveragings every `keeper_interval_ms`."""
        await self._drive("keeper", self.upkeep.loop_step, self.options.keeper_interval_ms / 1000)

    async def _drive(self, name: str, step: Callable[[], Any], pause_seconds: float) -> None:
        await drive(
            name, step, self.loop_health, log, pause_seconds=pause_seconds, running=lambda: not self.stopping
        )

    async def close(self) -> None:
        """Stop what the node started besides its loops (the signature worker)."""
        if self.intake.signatures is not None:
            await self.intake.signatures.stop()

    # ---- what the API calls (`sequencer.api.deps.NodeAPI`) ----------------------------------

    @property
    def address(self) -> bytes:
        """The sequencer's L1 address."""
        return self.writer.address

    async def admit_orders(self, orders: list[SignedOrder]) -> list[OrderOutcome | RollupError]:
        """See `Intake.admit_orders`."""
        return await self.intake.admit_orders(orders)

    def place_orders_now(
        self,
        orders: list[SignedOrder],
        reply: Callable[[list[OrderOutcome | RollupError] | BaseException], None],
    ) -> None:
        """See `Intake.place_orders_now`."""
        self.intake.place_orders_now(orders, reply)

    async def admit_cancel(self, tx: Cancel) -> CancelOutcome:
        """See `Intake.admit_cancel`."""
        return await self.intake.admit_cancel(tx)

    def cancel_now(self, tx: Cancel, reply: Callable[[CancelOutcome | BaseException], None]) -> None:
        """See `Intake.cancel_now`."""
        self.intake.cancel_now(tx, reply)

    async def admit_bundle(self, bundle: Bundle, sig: Signature) -> BundleOutcome:
        """See `Intake.admit_bundle`."""
        return await self.intake.admit_bundle(bundle, sig)

    async def admit_txs(
        self, items: list[Tx | bytes], label: str = "batch"
    ) -> list[tuple[bytes, int] | RollupError]:
        """See `Intake.admit_txs`."""
        return await self.intake.admit_txs(items, label)

    async def admit_tx(self, item: Tx | bytes) -> tuple[bytes, int]:
        """See `Intake.admit_tx`."""
        return await self.intake.admit_tx(item)

    def receipt(self, tx_hash: bytes, seq: int) -> bytes | None:
        """See `Intake.receipt`."""
        return self.intake.receipt(tx_hash, seq)

    def batch_receipt(self, items: list[tuple[bytes, int]]) -> bytes | None:
        """See `Intake.batch_receipt`."""
        return self.intake.batch_receipt(items)

    def order_receipt(self, orders: list[bytes], items: list[tuple[bytes, int]]) -> bytes | None:
        """See `Intake.order_receipt`."""
        return self.intake.order_receipt(orders, items)

    def tx_status(self, h: bytes) -> StoredTx | None:
        """See `Views.tx_status`."""
        return self.views.tx_status(h)

    def account_view(self, address: bytes) -> AccountView:
        """See `Views.account_view`."""
        return self.views.account_view(address)

    def batch_view(self, index: int) -> BatchView | None:
        """See `Views.batch_view`."""
        return self.views.batch_view(index)

    def status_view(self) -> StatusView:
        """See `Views.status_view`."""
        return self.views.status_view()

    def risk_view(self) -> RiskView:
        """See `Views.risk_view`."""
        return self.views.risk_view()

    def order_details(self, digest: bytes) -> OrderDetails | None:
        """See `Views.order_details`."""
        return self.views.order_details(digest)

    def fills_of(self, account: bytes, limit: int, before_seq: int | None) -> list[FillRecord]:
        """See `Views.fills_of`."""
        return self.views.fills_of(account, limit, before_seq)

    def markets(self) -> Markets:
        """See `Views.markets`."""
        return self.views.markets()

    def book(self, market_id: int) -> OrderBook | None:
        """See `Views.book`."""
        return self.views.book(market_id)

    def health(self) -> dict[str, Any]:
        """See `Views.health`; a set's member adds its role, the leader and its log position."""
        facts = self.views.health()
        if self.member is not None:
            facts["cluster"] = self.member.status()
            if self.member.role == "deposed" or self.member.broken is not None:
                facts["ok"] = False
                why = self.member.broken or "this member was deposed: it acknowledges nothing more"
                code = "log_unreadable" if self.member.broken else "deposed"
                facts.setdefault("reasons", []).append({"code": code, "message": why})
        return facts
