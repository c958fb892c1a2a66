"""A failover under load, as the demo and the bench show it: the sequencer set's leader is killed
with SIGKILL while two traders' orders are in flight, and what the set acknowledged is checked
against what the next leader knows.

Two traders trade through every member's URL (`TraderClient` moves on when one cannot serve): a
maker rests an ask and a taker lifts it, again and again, so acknowledged orders and fills are
both in flight at the kill. `failover_ms` is from the kill to the first acknowledgement another
member signed; `failover_to_batch_ms` from the kill to the moment the first batch another member
appended after it is seen on L1; `acked_orders_lost` counts acknowledged orders the next leader
does not know and acknowledged fills no batch on L1 holds once the set has posted again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from devnet.orchestrator import Network, Service, get_json
from devnet.procs import WaitTimeout, wait_until
from sequencer.client import BUY, SELL, TraderClient
from sequencer.stf.errors import RollupError


@dataclass
class FailoverReport:
    """What one failover under load showed."""

    killed: str
    """The member that led and was killed."""
    leader: str
    """The member that leads after it."""
    failover_ms: float
    """From the kill to the next leader's first acknowledgement."""
    acked_orders: int
    acked_fills: int
    acked_orders_lost: int
    """Acknowledged orders the next leader does not know, plus acknowledged fills not on L1."""
    leader_changes: int
    """Leaders the next leader has seen take over, itself included."""
    failover_to_batch_ms: float | None = None
    """From the kill to the first batch by another member seen on L1 (None: not watched, or none
    came within the timeout)."""


class _BatchWatch:
    """From the kill on, polls the L1 every `POLL_S` for a batch appended by a member other than
    the killed one, and notes when the first is seen."""

    POLL_S = 0.05

    def __init__(self, senders: Callable[[], list[bytes]], killed: bytes, timeout: float) -> None:
        self.senders, self.killed = senders, killed
        self.known = len(senders())
        self.seen_at: float | None = None
        self.deadline = time.monotonic() + timeout
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.POLL_S) and time.monotonic() < self.deadline:
            if any(s != self.killed for s in self.senders()[self.known :]):
                self.seen_at = time.monotonic()
                return

    def wait(self) -> float | None:
        self.thread.join(max(0.0, self.deadline - time.monotonic()) + 1)
        self.stop.set()
        return self.seen_at


@dataclass
class _Flow:
    acked: list[str] = field(default_factory=list)
    fills: set[str] = field(default_factory=set)
    times: list[tuple[float, str | None]] = field(default_factory=list)
    """When each acknowledgement came, and the sequencer that signed it."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def _trade(maker: TraderClient, taker: TraderClient, market: int, price: int, size: int, flow: _Flow) -> None:
    salt = int(time.time() * 1000) % 10**9
    while not flow.stop.is_set():
        salt += 1
        for client, side in ((maker, SELL), (taker, BUY)):
            signed = client.sign_order(market, side, price, size, salt=salt)
            try:
                placed = client.place_many([signed])[0]
            except RollupError:
                flow.stop.wait(0.01)  # no member answered this round: the outcome is unknown
                continue
            if isinstance(placed, RollupError):
                continue
            with flow.lock:
                flow.acked.append(placed.digest)
                flow.fills.update(f.tx_hash for f in placed.fills)
                flow.times.append((time.monotonic(), placed.sequencer))


def failover_under_load(
    net: Network,
    maker: TraderClient,
    taker: TraderClient,
    *,
    market: int,
    price: int,
    size: int,
    hashes_on_l1: Callable[[], set[str]],
    before: int = 40,
    after: int = 40,
    timeout: float = 60.0,
    batch_senders: Callable[[], list[bytes]] | None = None,
) -> FailoverReport:
    """Kill the leader after `before` acknowledged orders, keep trading until `after` more, and
    check every acknowledgement against the next leader and L1. With `batch_senders` (the
    sequencer of each batch on L1, in order), time the first batch by another member too."""
    leader = net.leader()
    flow = _Flow()
    worker = threading.Thread(target=_trade, args=(maker, taker, market, price, size, flow), daemon=True)
    worker.start()
    watch = None
    try:
        wait_until(lambda: len(flow.acked) >= before, timeout, what=f"{before} acknowledged orders")
        if batch_senders is not None:
            watch = _BatchWatch(batch_senders, bytes.fromhex(leader.account.address[2:]), timeout)
        leader.process.kill9()
        killed_at = time.monotonic()
        if watch is not None:
            watch.thread.start()
        with flow.lock:
            at_kill = len(flow.acked)
        wait_until(
            lambda: len(flow.acked) >= at_kill + after, timeout, what="orders acknowledged after the kill"
        )
    finally:
        flow.stop.set()
        worker.join(timeout=30)
    # the first acknowledgement signed by another member: one the killed leader sent just before
    # the kill can still be read after it
    gone = leader.account.address.lower()
    first = min(t for t, by in flow.times if t > killed_at and (by or "").lower() != gone)
    nxt = net.leader()
    lost = sum(1 for d in flow.acked if not _known(nxt, d))
    with contextlib.suppress(WaitTimeout):  # a fill that never reaches L1 is counted lost below
        wait_until(
            lambda: flow.fills <= hashes_on_l1(), timeout, interval=0.5, what="acknowledged fills on L1"
        )
    lost += len(flow.fills - hashes_on_l1())
    health = get_json(f"{nxt.url}/health")
    batch_at = watch.wait() if watch is not None else None
    return FailoverReport(
        killed=leader.name,
        leader=nxt.name,
        failover_ms=round((first - killed_at) * 1000, 1),
        acked_orders=len(flow.acked),
        acked_fills=len(flow.fills),
        acked_orders_lost=lost,
        leader_changes=int(health["cluster"]["leader_changes"]),
        failover_to_batch_ms=None if batch_at is None else round((batch_at - killed_at) * 1000, 1),
    )


def _known(member: Service, digest: str) -> bool:
    return httpx.get(f"{member.url}/v1/orders/{digest}", timeout=5.0).status_code == 200
