"""Intake: the node's write side, what the API admits through.

Orders, cancels, bundles and transactions go into the exchange (`sequencer.exchange`) and the
durable log in group-commit rounds (`sequencer.admission`): every request queued meanwhile is
admitted with one durable commit, urgent ones (cancels, liquidations, oracle updates, funding)
first. An order's digest and signer may be computed beside the loop (`sequencer.sigpool`). An
acknowledged transaction can carry the sequencer's signed receipt (`sequencer.receipts`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import cast

from sequencer.admission import AdmissionQueue
from sequencer.errors import NotReady
from sequencer.exchange import (
    AdmitTxs,
    Answer,
    BundleOutcome,
    CancelOrder,
    CancelOutcome,
    Exchange,
    ExchangeRequest,
    OrderOutcome,
    PlaceBundle,
    PlaceOrders,
)
from sequencer.fairness import AccountRates
from sequencer.mempool import PRIORITY_TYPE_BYTES, Mempool, is_priority
from sequencer.metrics import (
    ADMISSION_ROUND_ITEMS,
    ADMISSION_SIGNATURE_WAIT_SECONDS,
    ADMIT_SECONDS,
    TXS_ACCEPTED,
)
from sequencer.receipts import ReceiptSigner
from sequencer.sigpool import Recovered, SignatureWorker
from sequencer.stf.eip712 import order_digest
from sequencer.stf.errors import RollupError
from sequencer.stf.types import Bundle, Cancel, ChainConfig, Signature, SignedOrder, Tx

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


class Intake:
    """Admits what the API sends, once the node is `ready` and while it is `available`; `admitted`
    is called after each admission (the poster's size trigger)."""

    def __init__(
        self,
        config: ChainConfig,
        mempool: Mempool,
        exchange: Exchange,
        *,
        ready: Callable[[], bool],
        available: Callable[[], None],
        admitted: Callable[[], None],
        receipts: ReceiptSigner | None,
        signature_worker: bool,
        max_round: int,
        max_queued: int,
        accounts: AccountRates | None = None,
    ) -> None:
        self.config = config
        self.mempool = mempool
        self.exchange = exchange
        self.ready = ready
        self.available = available
        """Raises the refusal (`L1Unavailable`) while the node must not acknowledge: the L1 away
        for longer than its limits (`Liveness.check_admission`)."""
        self.admitted = admitted
        self.accounts = accounts
        """Each signing account's share of orders (`sequencer.fairness.AccountRates`; None: no
        limit)."""
        self.receipts = receipts
        """Signs acknowledgements with the sequencer's L1 key (None: unsigned acks, tests only)."""
        self.signatures = SignatureWorker(config) if signature_worker else None
        """Computes order digests and recovers signers in another process (`sequencer.sigpool`);
        None: on the loop."""
        self.admission: AdmissionQueue[_Queued, Answer] = AdmissionQueue(
            self._admit_round,
            max_round=max_round,
            max_queued=max_queued,
            observe_wait=ADMISSION_SIGNATURE_WAIT_SECONDS.observe,
        )
        """Group commit: the API's requests wait here for the next round (`sequencer.admission`)."""
        if self.signatures is not None:  # a round waiting for signers runs as they arrive
            self.signatures.on_answers = self.admission.run_ready

    def _require_ready(self) -> None:
        if not self.ready():
            raise NotReady("the node is still catching up with the L1")
        self.available()

    # ---- one transaction at once ---------------------------------------------------------

    def submit(self, item: Tx | bytes, *, revive: bool = False) -> tuple[bytes, int]:
        """Admit one transaction durably now (see `Mempool.submit`)."""
        self._require_ready()
        started = time.perf_counter()
        h, seq = self.mempool.submit(item, revive=revive)
        ADMIT_SECONDS.observe(time.perf_counter() - started)
        TXS_ACCEPTED.labels(type=type(item).__name__ if not isinstance(item, bytes) else "raw").inc()
        self._resync_books([item])
        self.admitted()
        return h, seq

    def submit_many(self, items: list[bytes]) -> list[tuple[bytes, int] | RollupError]:
        """Admit several encoded transactions with one durable commit (see `Mempool.submit_many`)."""
        self._require_ready()
        started = time.perf_counter()
        results = self.mempool.submit_many(items)
        accepted = sum(1 for r in results if not isinstance(r, RollupError))
        if accepted:
            ADMIT_SECONDS.observe((time.perf_counter() - started) / len(items))
            TXS_ACCEPTED.labels(type="batch").inc(accepted)
        self._resync_books([i for i, r in zip(items, results, strict=True) if not isinstance(r, RollupError)])
        self.admitted()
        return results

    def _resync_books(self, admitted: list[Tx | bytes]) -> None:
        """Orders that raw Cancel / Fill / BundleFill transactions touched: update the books."""
        digests = self.exchange.touched_orders(admitted)
        if digests:
            self.exchange.resync(digests)

    # ---- acknowledgements ----------------------------------------------------------------

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

    def order_receipt(self, orders: list[bytes], items: list[tuple[bytes, int]]) -> bytes | None:
        """One signed acknowledgement of placed orders (digests) and their fills (hash, seq)."""
        if self.receipts is None or not orders:
            return None
        return self.receipts.sign_orders(orders, items)

    # ---- group commit --------------------------------------------------------------------

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
        if self.accounts is not None:
            self._spend(work, answers)
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
        self.admitted()
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

    def _spend(self, work: list[ExchangeRequest], answers: list[Answer]) -> None:
        """Charge each account the orders it placed in a round (known ones and refusals cost
        nothing: only orders whose signature was verified count against their trader)."""
        assert self.accounts is not None
        counts: dict[bytes, int] = {}
        for request, answer in zip(work, answers, strict=True):
            if isinstance(request, PlaceOrders) and isinstance(answer, list):
                for signed, out in zip(request.orders, answer, strict=True):
                    if isinstance(out, OrderOutcome) and not out.known:
                        trader = signed.order.trader
                        counts[trader] = counts.get(trader, 0) + 1
        if counts:
            self.accounts.spend(counts)

    def _place_request(
        self, orders: list[SignedOrder]
    ) -> tuple[PlaceOrders, asyncio.Future[Recovered] | None]:
        self._require_ready()
        if self.accounts is not None:  # before any signature is recovered
            self.accounts.check({signed.order.trader for signed in orders})
        signers = None if self.signatures is None else self.signatures.recover(orders)
        if signers is None:  # digests now, signers in the round
            config = self.config
            return PlaceOrders(orders, [order_digest(signed.order, config) for signed in orders]), None
        return PlaceOrders(orders), signers

    async def admit_cancel(self, tx: Cancel) -> CancelOutcome:
        """Admit a signed Cancel and take the order out of its book (urgent class)."""
        self._require_ready()
        answer = await self._admit(CancelOrder(tx), "Cancel", urgent=True)
        if isinstance(answer, RollupError):
            raise answer
        assert isinstance(answer, CancelOutcome)
        return answer

    def cancel_now(self, tx: Cancel, reply: Callable[[CancelOutcome | BaseException], None]) -> None:
        """`admit_cancel` without a task waiting: the admission round calls `reply` with its
        outcome (or the refusal `admit_cancel` would raise), in the same turn of the loop."""
        self._require_ready()
        answered = cast("Callable[[Answer | BaseException], None]", reply)  # CancelOrder: a CancelOutcome
        self.admission.submit_nowait((CancelOrder(tx), "Cancel", None), answered, urgent=True)

    async def admit_bundle(self, bundle: Bundle, sig: Signature) -> BundleOutcome:
        """Fill a signed bundle whole against resting orders, or refuse it."""
        self._require_ready()
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
        self._require_ready()
        urgent = all(_priority_item(item) for item in items)
        answer = await self._admit(AdmitTxs(items), label, urgent=urgent, weight=len(items))
        assert isinstance(answer, list)
        return answer  # type: ignore[return-value]

    async def admit_tx(self, item: Tx | bytes) -> tuple[bytes, int]:
        """Admit one transaction in the next admission round."""
        label = "raw" if isinstance(item, bytes) else type(item).__name__
        (result,) = await self.admit_txs([item], label)
        if isinstance(result, RollupError):
            raise result
        return result
