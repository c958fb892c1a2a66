"""An L1 that stops (SIGSTOP) under a running sequencer, watcher and oracle feed, with traffic: their
/health turns 503 with the reason, the sequencer refuses `l1_unavailable` once past its limits;
after SIGCONT every /health is 200 again with `last_error` cleared, and every acknowledged
transaction reaches an L1 batch that the watcher verifies."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import httpx
import pytest

from devnet.markets import governance_payloads
from devnet.orchestrator import SEQ_A, WATCHER_1, Network, Service
from devnet.procs import wait_until
from sequencer.client import RequestRefused, TraderClient
from sequencer.stf.eip712 import address_of, sign_transfer
from tests.e2e.helpers import TOKEN_UNIT, Clients

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LIMITS = ["--l1-timeout-s", "2", "--l1-silence-limit-s", "3"]
"""Small limits, so that the outage is short: L1 requests give up after 2 s, and 3 s without an
answer from the L1 makes a service unhealthy."""


def health(service: Service) -> tuple[int, dict[str, Any]]:
    reply = httpx.get(f"{service.url}/health", timeout=5.0)
    return reply.status_code, reply.json()


def reasons(service: Service) -> list[str]:
    return [r["code"] for r in health(service)[1]["reasons"]]


def recovered(service: Service) -> bool:
    status, facts = health(service)
    return status == 200 and facts.get("last_error") is None


def test_l1_stopped_then_resumed__health_503_with_reason_then_200_cleared_nothing_acknowledged_lost(
    network: Network, clients: Clients
) -> None:
    seq = network.start_sequencer(
        "sequencer-a", SEQ_A, batch_interval_ms=200, extra_args=[*LIMITS, "--post-stall-limit-s", "10"]
    )
    watcher = network.start_watcher("watcher", WATCHER_1, extra_args=LIMITS)
    oracle = network.start_oracle("oracle", seq)
    (key,) = clients.fund(1, 1_000 * TOKEN_UNIT)
    deposits = len(governance_payloads()) + 1
    wait_until(
        lambda: httpx.get(f"{seq.url}/v1/status").json()["next_deposit_index"] == deposits,
        60,
        what="the deposit to be batched",
    )
    l1 = network.l1_process
    assert l1 is not None
    acked: list[tuple[float, str]] = []
    refused: list[str] = []
    stop = threading.Event()

    def trader() -> None:
        """Send transfers one after another; after a refusal, ask for the nonce again."""
        client = TraderClient(seq.url, key, clients.config, timeout=10.0)
        nonce: int | None = None
        while not stop.is_set():
            try:
                if nonce is None:
                    nonce = client.next_nonce()
                ack = client.submit(sign_transfer(key, address_of(b"\x07" * 32), 1, nonce, clients.config))
                acked.append((time.monotonic(), ack.hash))
                nonce += 1
            except RequestRefused as exc:
                refused.append(exc.code)
                nonce = None
            stop.wait(0.02)
        client.close()

    thread = threading.Thread(target=trader)
    thread.start()
    stopped_at = 0.0
    try:
        wait_until(lambda: len(acked) >= 20, 60, what="20 acknowledged transfers before the outage")
        assert all(recovered(s) for s in (seq, watcher, oracle))
        os.kill(l1.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        for service in (seq, watcher):
            what = f"{service.name} 503 l1_unreachable"
            wait_until(lambda s=service: "l1_unreachable" in reasons(s), 30, what=what)
        status, facts = health(seq)
        assert status == 503 and facts["admitting"] is False
        assert facts["limits"]["l1_silence_s"] == 3 and facts["max_pending"] > 0
        wait_until(lambda: "l1_unavailable" in refused, 30, what="a transfer refused with l1_unavailable")
        wait_until(lambda: health(seq)[1]["last_error"] is not None, 30, what="the timed-out read reported")
        wait_until(lambda: "l1_unavailable" in reasons(oracle), 30, what="the oracle feed 503 l1_unavailable")
        assert any(t > stopped_at for t, _ in acked), "nothing acknowledged within the bound"
        os.kill(l1.pid, signal.SIGCONT)
        for service in (seq, watcher, oracle):
            what = f"{service.name} 200 with last_error cleared"
            wait_until(lambda s=service: recovered(s), 60, what=what)
        at_recovery = len(acked)
        wait_until(lambda: len(acked) >= at_recovery + 20, 60, what="20 more acknowledgements after recovery")
    finally:
        os.kill(l1.pid, signal.SIGCONT)
        stop.set()
        thread.join(timeout=30)

    hashes = {h for _, h in acked}

    what = "every acknowledged transfer in an L1 batch"
    wait_until(lambda: hashes <= clients.hashes_on_l1(), 90, interval=0.5, what=what)
    assert len(hashes) == len(acked) and set(refused) == {"l1_unavailable"}

    def verified() -> bool:
        status = httpx.get(f"{watcher.url}/v1/status").json()
        return status["pending_fraud"] is None and status["batches_verified"] == status["l1_batches"] > 0

    wait_until(verified, 60, what="the watcher to verify every batch")
    assert recovered(seq) and recovered(watcher)
