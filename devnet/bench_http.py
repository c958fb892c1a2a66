"""Admission over HTTP: signed transfers acknowledged durably by one real sequencer process.

The network runs as real processes on 127.0.0.1 (embedded L1, contracts, one sequencer that also
posts batches while the load runs). Requests are signed before the timed run; the client shares
the 2 cores with the server (and with the L1), so CPU seconds of each are reported beside the
figures.

- `http_txs_accepted_per_s`: batch requests (`POST /v1/transactions/batch`, 200 transactions per
  request, 4 connections), every acknowledgement durable in SQLite before it is sent.
- `http_ack_ms_p50` / `http_ack_ms_p99`: once that backlog is on L1, single-transaction
  requests (`POST /v1/transactions`) sent at a fixed rate, latency from due time to
  acknowledgement.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from web3 import Web3

from devnet.deploy import DeployParams
from devnet.faucet import fund_traders
from devnet.markets import governance_payloads
from devnet.orchestrator import FIRST_TRADER, SEQ_A, Network, get_json
from devnet.procs import wait_until
from sequencer.stf.codec import encode_tx
from sequencer.stf.eip712 import address_of, sign_transfer
from sequencer.stf.types import ChainConfig

TRADERS = 4
"""Dev accounts 5..8 send; each connection carries one trader's transfers, in nonce order."""


def progress(message: str) -> None:
    """Show progress on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _batch_load(url: str, per_trader: list[list[str]], size: int) -> tuple[int, list[str]]:
    """Send each trader's transfers in requests of `size`, one connection per trader."""
    errors: list[str] = []

    async def one(raws: list[str]) -> int:
        accepted = 0
        async with httpx.AsyncClient(timeout=60) as client:
            for start in range(0, len(raws), size):
                r = await client.post(
                    f"{url}/v1/transactions/batch", json={"raws": raws[start : start + size]}
                )
                r.raise_for_status()
                for item in r.json()["results"]:
                    if item["error"] is None:
                        accepted += 1
                    else:
                        errors.append(item["error"]["code"])
        return accepted

    counts = await asyncio.gather(*(one(raws) for raws in per_trader))
    return sum(counts), errors


async def _latency_load(url: str, raws: list[str], rate: float, connections: int = 32) -> list[float]:
    """Open-loop load: request i is due at `i / rate`; its latency runs from when it was due to its
    acknowledgement, so time spent waiting for a free connection counts (no coordinated omission).

    A minimal keep-alive HTTP/1.1 client on asyncio streams: httpx's CPU per request, on cores
    the client shares with the server, would make the figure measure the client.
    """
    host, port = url.removeprefix("http://").split(":")
    bodies = [orjson.dumps({"raw": raw}) for raw in raws]
    requests = [
        b"POST /v1/transactions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(body), body)
        for body in bodies
    ]
    latencies: list[float] = []
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while (job := await queue.get()) is not None:
            due, request = job
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"refused: {head.splitlines()[0]!r}")
            latencies.append((time.perf_counter() - due) * 1000)
        writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    started = time.perf_counter()
    for i, request in enumerate(requests):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the open-loop schedule, not waiting for an outcome
        queue.put_nowait((due, request))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return latencies


def bench_http(quick: bool = False) -> dict[str, Any]:
    """Run the network, load it, return the figures."""
    n_batch = 1_000 if quick else 10_000  # quick: the backlog posted before the latency run stays short
    n_single = 500 if quick else 4_000
    rate = 500.0 if quick else 1_000.0
    workdir = Path(tempfile.mkdtemp(prefix="rollup-bench-http-"))
    progress(f"http: starting a network in {workdir}")
    with Network.start(workdir, params=DeployParams(challenge_window_seconds=600)) as net:
        seq = net.start_sequencer("sequencer-a", SEQ_A)
        traders = net.accounts[FIRST_TRADER : FIRST_TRADER + TRADERS]
        w3 = Web3(Web3.HTTPProvider(net.l1_url, request_kwargs={"timeout": 60}))
        fund_traders(
            w3, net.deployment, net.accounts[0].private_key, [t.private_key for t in traders], 10**15
        )
        wait_until(
            lambda: (
                get_json(f"{seq.url}/v1/status")["next_deposit_index"] == len(governance_payloads()) + TRADERS
            ),
            60,
            what="deposits batched",
        )
        dep = net.deployment
        config = ChainConfig(chain_id=dep.chain_id, rollup=bytes.fromhex(dep.rollup[2:]))
        keys = [bytes.fromhex(t.private_key[2:]) for t in traders]
        sink = address_of(b"\x42" * 32)
        progress(f"http: signing {n_batch + n_single} transfers before the timed runs")
        per_trader = [
            ["0x" + encode_tx(sign_transfer(k, sink, 1, n, config)).hex() for n in range(n_batch // TRADERS)]
            for k in keys
        ]
        # single requests come from many senders, round-robin, so that in-flight requests of
        # one sender (whose nonces must arrive in order) are a whole round apart
        senders = [(7_000_000 + i).to_bytes(32, "big") for i in range(min(n_single, 1_000))]
        first = n_batch // TRADERS  # the funded traders' next nonce after the batch load
        fan_out = [
            "0x"
            + encode_tx(
                sign_transfer(keys[i % TRADERS], address_of(k), 10**6, first + i // TRADERS, config)
            ).hex()
            for i, k in enumerate(senders)
        ]
        singles = [
            "0x"
            + encode_tx(sign_transfer(senders[i % len(senders)], sink, 1, i // len(senders), config)).hex()
            for i in range(n_single)
        ]

        server_cpu, client_cpu, started = _cpu_seconds(seq.process.pid), _client_cpu(), time.perf_counter()
        accepted, errors = asyncio.run(_batch_load(seq.url, per_trader, 200))
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = _cpu_seconds(seq.process.pid) - server_cpu, _client_cpu() - client_cpu
        if errors:
            raise RuntimeError(f"refused during the load: {sorted(set(errors))}")
        progress(
            f"http: {accepted / elapsed:,.0f} tx/s accepted in batches of 200"
            f" (server {server_cpu / elapsed:.0%} CPU, client {client_cpu / elapsed:.0%})"
        )
        funded, errors = asyncio.run(_batch_load(seq.url, [fan_out], 200))
        if funded != len(fan_out):
            raise RuntimeError(f"fan-out refused: {sorted(set(errors))}")
        # steady state: the backlog is on L1 first, then the node only posts what this load brings
        wait_until(
            lambda: get_json(f"{seq.url}/v1/status")["pending"] == 0,
            600,
            interval=0.5,
            what="the backlog on L1",
        )
        latencies = asyncio.run(_latency_load(seq.url, singles, rate))
        p50, p99 = statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
        progress(f"http: single requests at {rate:.0f}/s: ack p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        return {
            "http_txs_accepted_per_s": round(accepted / elapsed),
            "http_server_cpu_share": round(server_cpu / elapsed, 2),
            "http_client_cpu_share": round(client_cpu / elapsed, 2),
            "http_ack_rate_per_s": rate,
            "http_ack_ms_p50": round(p50, 2),
            "http_ack_ms_p99": round(p99, 2),
        }
