"""The watcher: follows the L1 only, re-derives every batch, and proves the first wrong one.

It trusts nothing but L1 data: batches come from the append transactions' calldata, queue
entries (deposits, governance messages, forced transactions) from the Bridge's events, and the
state machine is the sequencer's own (`sequencer.stf`, through the shared derivation
`sequencer.stf.chain`). When a commitment is wrong it builds the witnesses and
sends one `prove_*_fraud` transaction. Two watchers racing on the same fraud both end consistent:
the loser's transaction reverts with "rollup: unknown batch", which is logged and ignored, and
both see the same `BatchesReverted` event. Once the Rollup is frozen it has nothing left to prove
(every batch is final): it says so in /health (`rollup_frozen`) and /v1/status (`frozen`).

A proof counts as settled until the watcher has read past the L1 block where its outcome shows
(the block that holds it; for another watcher's, the L1 head it was told of): a proof that a
reorganisation of the L1 took out is sent again. When the L1 reorganises blocks the watcher read,
it takes back what it derived from them (`Chain.rewind`) and derives again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from contracts.follow import L1Cursor, LoopHealth, TransientError, drive
from contracts.health import (
    HealthLimits,
    Problem,
    follow_problems,
    l1_facts,
    report,
    rollup_frozen,
    send_stall,
)
from contracts.l1 import Mined
from contracts.logs import get_logger
from prover.proofs import FraudProof, build_fraud_proof
from sequencer.stf.chain import Chain
from sequencer.stf.l1types import L1Batch, L1Event, L1Frozen, L1Reader
from sequencer.stf.state import state_root
from sequencer.stf.types import ChainConfig

log = get_logger("watcher")

LOOP = "watcher"
"""The name of the watcher's one driver loop."""

RETRY_SECONDS = 2.0
"""Pause before sending a proof again after a failed attempt."""

PROOF = "proof"
"""The source of a failed proof in the watcher's `LoopHealth` (until a proof of it is settled)."""


class FraudSink(Protocol):
    """Sends a fraud proof to L1."""

    def submit_proof(self, proof: FraudProof) -> Mined:
        """Send the proof; returns the mined L1 transaction, raises with the revert reason."""
        ...


@dataclass
class WatcherMetrics:
    """Prometheus metrics of one watcher."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.batches_verified = Gauge(
            "watcher_batches_verified", "Batches re-derived and found correct", registry=self.registry
        )
        self.l1_block = Gauge("watcher_l1_block", "Last L1 block read", registry=self.registry)
        self.frauds_found = Counter(
            "watcher_frauds_found_total", "Wrong batches found", registry=self.registry
        )
        self.proofs_sent = Counter(
            "watcher_proofs_sent_total", "Fraud proofs that succeeded", registry=self.registry
        )
        self.proofs_lost = Counter(
            "watcher_proofs_lost_total",
            "Fraud proofs that found the batch already reverted",
            registry=self.registry,
        )
        self.l1_reorgs = Counter(
            "watcher_l1_reorgs_total", "L1 reorganisations rewound", registry=self.registry
        )
        self.txs_derived = Counter(
            "watcher_txs_derived_total", "Transactions re-executed", registry=self.registry
        )


class Watcher:
    """Derives the chain from L1 and challenges wrong batches."""

    def __init__(
        self,
        config: ChainConfig,
        reader: L1Reader,
        sink: FraudSink,
        *,
        start_block: int,
        poll_seconds: float = 0.25,
        challenge: bool = True,
        limits: HealthLimits | None = None,
        confirmations: int = 0,
    ) -> None:
        self.chain = Chain(config)
        self.reader = reader
        self.sink = sink
        self.cursor = L1Cursor(start_block)
        """Where the watcher is in the L1 (`contracts.follow`, as the sequencer's follower)."""
        self.poll_seconds = poll_seconds
        self.challenge = challenge
        self.metrics = WatcherMetrics()
        self.confirmations = confirmations
        """How deep below the L1 head `reader` reads (its `head_block`)."""
        self.proven: list[dict[str, Any]] = []
        self.attempted: dict[tuple[int, int, bytes], int] = {}
        """Frauds settled (our proof succeeded, or another watcher's did first), each with the L1
        block by which the revert must have been read; a fraud still there after it is proven
        again."""
        self.found: set[tuple[int, int, bytes]] = set()
        self.retry_at = 0.0
        self.proofs_lost = 0
        """Proofs that found the batch already reverted (another watcher was first)."""
        self.loop_health = LoopHealth(loops={LOOP: False}, name_errors=False)
        """The driver loop's health (`run`)."""
        self.limits = limits or HealthLimits()
        """When /health says 503 (`health`)."""
        self.proof_waiting_since: float | None = None
        """`time.monotonic()` of the first failed attempt to prove the pending fraud; None while
        no proof waits."""
        self.unreadable: str | None = None
        """A batch this node cannot read, with where (verification stops there; the watcher
        keeps following L1 meanwhile); None when there is none."""
        self.published: dict[str, Any] = {}
        """The status as of the last step: `step` runs in a worker thread and is the only one to
        touch the chain, so readers (the HTTP API) get this copy, never the live tree."""

    @property
    def next_block(self) -> int:
        """The next L1 block to read."""
        return self.cursor.next_block

    @property
    def alive(self) -> bool:
        """Whether the driver loop runs."""
        return self.loop_health.loops[LOOP]

    @alive.setter
    def alive(self, value: bool) -> None:
        self.loop_health.loops[LOOP] = value

    @property
    def last_error(self) -> str | None:
        """The last error met (retried)."""
        return self.loop_health.last_error

    @property
    def critical(self) -> str | None:
        """What stops verification and needs an operator, with where: the loop stopped for good,
        or a batch this node cannot read; None when nothing does."""
        return self.loop_health.critical or self.unreadable

    def step(self) -> int:
        """Read new L1 events, fold them, and challenge if a batch is wrong; returns events read."""
        window = self.cursor.read(self.reader)
        self.metrics.l1_block.set(window.last)
        if window.last < window.head:
            log.info(
                "catching_up", l1_block=window.last, l1_head=window.head, batches=len(self.chain.batches)
            )
        folded = self.cursor.fold(window, self._fold, self._rewind)
        self.chain.settle(self.cursor.settled_block)
        self.metrics.batches_verified.set(self.chain.valid_count)
        self._note_unreadable()
        fraud = self.chain.fraud
        if fraud is not None and self.challenge:
            batch = self.chain.batches[fraud.batch_index]
            key = (fraud.batch_index, fraud.tx_index, batch.header.hash())
            settled_by = self.attempted.get(key)
            due = settled_by is None or self.cursor.next_block > settled_by
            if due and time.monotonic() >= self.retry_at:
                if settled_by is not None:  # a reorganisation of the L1 took the proof out
                    log.warning("proof_not_on_l1", batch=fraud.batch_index, tx=fraud.tx_index)
                if key not in self.found:
                    self.found.add(key)
                    self.metrics.frauds_found.inc()
                    log.warning(
                        "fraud_found", batch=fraud.batch_index, tx=fraud.tx_index, reason=fraud.reason
                    )
                try:
                    self._challenge(key)
                except Exception:
                    # temporary (L1 unreachable, nonce race): try again after a pause
                    self.retry_at = time.monotonic() + RETRY_SECONDS
                    self.published = self._status()
                    raise
        self.published = self._status()
        return folded

    def _fold(self, events: list[L1Event]) -> None:
        for event in events:
            self.chain.apply_event(event)
            self.cursor.mark(event)
            if isinstance(event, L1Batch):
                self.metrics.txs_derived.inc(event.header.tx_count)
                log.info("batch_derived", index=event.header.index, txs=event.header.tx_count)

    def _rewind(self, l1_block: int) -> None:
        """The L1 no longer holds the blocks after `l1_block`: take back what was derived from
        them; frauds in the batches that changed are to be proven again."""
        rewound = self.chain.rewind(l1_block)
        first = rewound.from_index
        self.attempted = {k: v for k, v in self.attempted.items() if k[0] < first}
        self.found = {k for k in self.found if k[0] < first}
        self.metrics.l1_reorgs.inc()
        log.warning("l1_reorg", **rewound.facts(), batches=len(self.chain.batches))

    def _note_unreadable(self) -> None:
        """Report a batch the chain stopped at because its data could not be read (once per
        batch), and clear the report once a revert has removed it."""
        stuck = self.chain.unreadable
        message = None if stuck is None else stuck.describe()
        if stuck is not None and message != self.unreadable:
            log.critical(
                "batch_unreadable",
                batch=stuck.batch_index,
                l1_tx="0x" + stuck.l1_tx_hash.hex(),
                reason=stuck.reason,
            )
        elif stuck is None and self.unreadable is not None:
            log.info("batch_unreadable_cleared")
        self.unreadable = message

    def _challenge(self, key: tuple[int, int, bytes]) -> None:
        """Prove the pending fraud (`key` names it) and settle it, or raise to try again."""
        fraud = self.chain.fraud
        assert fraud is not None
        started = time.perf_counter()
        proof = build_fraud_proof(self.chain, fraud)
        try:
            mined = self.sink.submit_proof(proof)
        except Exception as exc:
            message = str(exc)
            if "unknown batch" in message:
                self.metrics.proofs_lost.inc()
                self.proofs_lost += 1
                log.info("fraud_already_proven", batch=fraud.batch_index, tx=fraud.tx_index)
                # the winning proof is in the L1 as of its head at most
                self.attempted[key] = self.cursor.l1_head + self.confirmations + 1
                self._proof_settled()
                return
            self.loop_health.fail(PROOF, message)
            if self.proof_waiting_since is None:
                self.proof_waiting_since = time.monotonic()
            log.error("fraud_proof_failed", batch=fraud.batch_index, tx=fraud.tx_index, error=message)
            raise TransientError(f"fraud proof not sent: {message}") from exc
        self.metrics.proofs_sent.inc()
        self.attempted[key] = mined.l1_block
        self._proof_settled()
        record = {"batch": fraud.batch_index, "tx": fraud.tx_index, "l1_tx": "0x" + mined.tx_hash.hex()}
        self.proven.append(record)
        log.warning("fraud_proven", **record, build_ms=round((time.perf_counter() - started) * 1000, 1))

    def _proof_settled(self) -> None:
        self.proof_waiting_since = None
        self.loop_health.recover(PROOF)

    def health(self) -> dict[str, Any]:
        """The /health body (`contracts.health.report`): not ok before the first L1 read, while the
        L1 does not answer or the watcher is behind it beyond the limits, while a fraud proof has
        failed for longer than `send_stall_s`, when the loop does not run, or after a critical
        error."""
        now = time.monotonic()
        problems = follow_problems(self.cursor, self.loop_health, self.critical, self.limits, now)
        synced = self.cursor.answered_at is not None
        if not synced:
            problems.insert(0, Problem("not_synced", "the L1 has not been read yet"))
        stall = send_stall(
            "proof_stalled", "a fraud proof not sent", self.proof_waiting_since, self.limits, now
        )
        if stall is not None:
            problems.append(stall)
        frozen = rollup_frozen(self.chain.frozen)
        if frozen is not None:
            problems.append(frozen)
        return report(
            problems,
            self.loop_health,
            self.critical,
            synced=synced,
            l1=l1_facts(self.cursor, now),
            limits=self.limits.facts(),
        )

    def status(self) -> dict[str, Any]:
        """The watcher at a glance as of its last step (served at /v1/status)."""
        return self.published or {"l1_batches": 0, "batches_verified": 0, "next_block": self.next_block}

    def _status(self) -> dict[str, Any]:
        fraud = self.chain.fraud
        return {
            "l1_batches": len(self.chain.batches),
            "batches_verified": self.chain.valid_count,
            "state_root": "0x" + state_root(self.chain.state).hex(),
            "tip_root": "0x" + self.chain.tip_root.hex(),
            "pending_fraud": None if fraud is None else {"batch": fraud.batch_index, "tx": fraud.tx_index},
            "critical": self.critical,
            "proofs_sent": list(self.proven),
            "proofs_lost": self.proofs_lost,
            "reverts_seen": len(self.chain.reverts_seen),
            "next_block": self.next_block,
            "frozen": None if self.chain.frozen is None else _frozen_status(self.chain.frozen),
        }

    async def run(self) -> None:
        """Step until a critical error (`contracts.follow.drive`): transient errors are retried
        with backoff; between steps it waits only when caught up with L1."""

        async def step() -> bool:
            n = await asyncio.to_thread(self.step)
            return n == 0 and self.cursor.caught_up  # caught up: wait for new blocks

        await drive(
            LOOP, step, self.loop_health, log, pause_seconds=self.poll_seconds, error_event="watcher_error"
        )


def _frozen_status(frozen: L1Frozen) -> dict[str, Any]:
    """The freeze as /v1/status shows it."""
    return {
        "batch_count": frozen.batch_count,
        "post_root": "0x" + frozen.post_root.hex(),
        "queue_end": frozen.queue_end,
        "timestamp": frozen.timestamp,
    }
