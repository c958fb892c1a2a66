"""Fair admission on a real sequencer process: one client floods bad signatures at full speed on
several connections (reconnecting whenever it is cut off) while an honest trader places an order
every 20 ms; the honest trader's acknowledgements keep their latency, the flood is refused with
429 before its signatures cost the node a recovery."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.queues
import os
import signal
import statistics
import time
from typing import Any

import httpx
import orjson
import pytest

from devnet.orchestrator import SEQ_A, Network, get_json
from devnet.procs import wait_until
from sequencer.stf.constants import SIDE_BUY
from sequencer.stf.eip712 import address_of
from sequencer.stf.types import Order
from tests.e2e.helpers import TOKEN_UNIT, Clients
from tests.e2e.test_crash_orders import LOT, order_body

pytestmark = [pytest.mark.e2e, pytest.mark.alone, pytest.mark.timeout(240)]

FLOOD_CONNECTIONS = 8
HONEST_ORDERS = 300
HONEST_INTERVAL_S = 0.02


def _request(body: bytes) -> bytes:
    return (
        b"POST /v1/orders HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
    )
    return int(head.split(b" ", 2)[1]), await reader.readexactly(length)


def _flood(host: str, port: int, forged: list[bytes], counts_out: Any) -> None:
    """The flooder, in a process of its own (its loop must not delay the honest client's): 8
    connections sending forged orders pipelined, reconnecting whenever cut off; on SIGTERM it puts
    the count of each answer's code on `counts_out`."""
    counts: dict[str, int] = {}

    async def connection() -> None:
        i = 0
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                continue
            try:
                while True:
                    batch = [forged[(i + k) % len(forged)] for k in range(16)]  # pipelined
                    i += 16
                    writer.write(b"".join(batch))
                    for _ in batch:
                        _, body = await _answer(reader)
                        code = orjson.loads(body)["error"]["code"]
                        counts[code] = counts.get(code, 0) + 1
            except (asyncio.IncompleteReadError, ConnectionError):
                pass  # cut off: connect again, as a flooder would
            finally:
                writer.close()

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        tasks = [asyncio.create_task(connection()) for _ in range(FLOOD_CONNECTIONS)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())
    counts_out.put(counts)


def _rate_limited(url: str) -> float:
    """How many requests the sequencer refused with `rate_limited` so far (its metrics)."""
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("rollup_txs_rejected_total{") and 'code="rate_limited"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_flood__bad_signatures_at_full_speed__honest_orders_keep_their_latency(
    network: Network, clients: Clients
) -> None:
    seq = network.start_sequencer("sequencer-a", SEQ_A, batch_max_txs=256, batch_interval_ms=200)
    network.start_oracle("oracle", seq, interval_ms=1000)
    honest_key, victim_key = clients.fund(2, 10_000 * TOKEN_UNIT)

    def ready() -> bool:
        markets = get_json(f"{seq.url}/v1/markets")
        funded = get_json(f"{seq.url}/v1/status")["next_deposit_index"] >= 5  # 3 messages, 2 deposits
        return funded and len(markets) == 2 and markets[0]["mark_price"] > 0

    wait_until(ready, 60, what="markets, prices and deposits")
    mark = get_json(f"{seq.url}/v1/markets")[0]["mark_price"]
    bid = mark // 2  # rests far from the touch

    def signed(key: bytes, trader: bytes, salt: int) -> bytes:
        order = Order(trader, 0, SIDE_BUY, bid, LOT, 0, 0, salt)
        return orjson.dumps(order_body(key, order, clients))

    honest = [_request(signed(honest_key, address_of(honest_key), i)) for i in range(HONEST_ORDERS)]
    # signed by the honest key, claiming the victim: the signature recovers to someone else
    forged = [_request(signed(honest_key, address_of(victim_key), 10**6 + i)) for i in range(500)]
    host, port = "127.0.0.1", int(seq.url.rsplit(":", 1)[1])

    ctx = multiprocessing.get_context("spawn")
    counts_out: multiprocessing.queues.Queue[dict[str, int]] = ctx.Queue()
    flooder = ctx.Process(target=_flood, args=(host, port, forged, counts_out), daemon=True)

    async def trade() -> list[float]:
        # the honest trader's connection is open before the flood (a host that floods has its new
        # connections refused)
        reader, writer = await asyncio.open_connection(host, port)
        flooder.start()
        await asyncio.to_thread(
            wait_until, lambda: _rate_limited(seq.url) > 0, 30, what="the flood to be refused"
        )
        latencies: list[float] = []
        start = time.perf_counter()
        for n, request in enumerate(honest):
            due = start + n * HONEST_INTERVAL_S
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            writer.write(request)
            status, body = await _answer(reader)
            latencies.append((time.perf_counter() - due) * 1000)
            assert status == 200, body
            assert orjson.loads(body)["status"] == "resting"
        writer.close()
        return latencies

    try:
        latencies = asyncio.run(trade())
    finally:
        if flooder.pid is not None:
            os.kill(flooder.pid, signal.SIGTERM)  # it sends what it counted, then exits
            flooder.join(30)
            if flooder.is_alive():
                flooder.kill()
                flooder.join()
    counts = counts_out.get(timeout=10)
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"honest p50 {statistics.median(latencies):.1f} ms p99 {p99:.1f} ms; flood answers {counts}")
    assert set(counts) <= {"bad_signature", "rate_limited"}, counts
    assert counts["rate_limited"] > 10 * counts["bad_signature"], counts  # refused before a recovery
    assert p99 < 50, f"honest p99 {p99:.1f} ms"
    account = get_json(f"{seq.url}/v1/accounts/0x{address_of(honest_key).hex()}")
    assert len(account["open_orders"]) == HONEST_ORDERS
