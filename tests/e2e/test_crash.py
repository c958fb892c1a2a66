"""kill -9 of the sequencer under traffic loses no acknowledged transaction."""

from __future__ import annotations

import threading

import httpx
import pytest

from devnet.markets import governance_payloads
from devnet.orchestrator import SEQ_A, Network, get_json
from devnet.procs import wait_until
from sequencer.client import RequestRefused, TraderClient
from sequencer.endpoints import SequencersUnavailable
from sequencer.stf.eip712 import address_of, sign_transfer
from tests.e2e.helpers import TOKEN_UNIT, Clients

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_sequencer__kill9_under_traffic__every_acknowledged_tx_reaches_l1(
    network: Network, clients: Clients
) -> None:
    seq = network.start_sequencer("sequencer-a", SEQ_A, batch_max_txs=32, batch_interval_ms=200)
    keys = clients.fund(4, 1_000 * TOKEN_UNIT)
    wait_until(
        lambda: get_json(f"{seq.url}/v1/status")["next_deposit_index"] == len(governance_payloads()) + 4,
        60,
        what="deposits to be batched",
    )
    acked: list[str] = []
    refused: list[str] = []
    stop = threading.Event()
    addrs = [address_of(k) for k in keys]

    def trader(i: int) -> None:
        """Send transfers as fast as acknowledged; after a connection error, ask for the nonce again."""
        client = TraderClient(seq.url, keys[i], clients.config, timeout=5.0)
        nonce: int | None = None
        while not stop.is_set():
            try:
                if nonce is None:
                    nonce = client.next_nonce()
                tx = sign_transfer(keys[i], addrs[(i + 1) % 4], 1, nonce, clients.config)
                ack = client.submit(tx)
                acked.append(ack.hash)
                nonce += 1
            except SequencersUnavailable:  # down (killed or restarting): the outcome is unknown
                nonce = None
                stop.wait(0.05)
            except RequestRefused as exc:
                refused.append(exc.code)
                nonce = None
            except httpx.HTTPError:
                nonce = None  # down (killed or restarting): the outcome of this request is unknown
                stop.wait(0.05)
        client.close()

    threads = [threading.Thread(target=trader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acked) >= 150, 60, what="150 acknowledged transfers before the crash")
        seq.process.kill9()
        at_crash = len(acked)
        network.restart("sequencer-a")
        wait_until(
            lambda: len(acked) >= at_crash + 100, 60, what="100 more acknowledgements after the restart"
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    what = "every acknowledged transaction to be in an L1 batch"
    wait_until(lambda: set(acked) <= clients.hashes_on_l1(), 90, interval=0.5, what=what)
    assert len(set(acked)) == len(acked)
    # a refusal after the restart can only be a stale nonce guessed while the node was down
    assert set(refused) <= {"bad_nonce"}
    status = get_json(f"{seq.url}/v1/status")
    assert status["pending"] == 0 and status["halted_on_fraud"] is None
