"""The replicated log's speed: fenced appends of admission rounds, one after another, on a
three-node JetStream cluster (R3, file storage), while followers read the log.

Each round is a `Round` entry of 200 transactions of 300 bytes (60 KB, about what a full round of
orders takes), appended fenced on the position the previous append returned, and timed from the
call to the quorum's acknowledgement. Followers (each on its own connection, in the same process
and event loop as the writer) read every entry; the figure beside them is how long after the
last acknowledgement the slowest follower had read it. Without `--nats-url` the bench starts its
own cluster under a temporary directory and reports the servers' CPU.

    python -m devnet.bench_cluster [--rounds N] [--followers N] [--nats-url URL,URL,URL] [--quick]

Progress goes to stderr; the last stdout line is the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

from devnet.bench_http import _client_cpu, _cpu_seconds
from devnet.jetstream import NatsCluster, run_nats_cluster
from sequencer.cluster.connect import connect
from sequencer.cluster.entries import Round, encode_entry
from sequencer.cluster.log import ReplicatedLog
from sequencer.journal import Commit, TxRow

TXS_PER_ROUND = 200
TX_BYTES = 300


def progress(message: str) -> None:
    """Show progress on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def round_payloads(count: int, seed: int = 5) -> list[bytes]:
    """`count` encoded rounds of 200 random 300-byte transactions (made before the timed run)."""
    rng = random.Random(seed)
    return [
        encode_entry(
            Round(
                wall_ms=i,
                commits=(
                    Commit(tuple(TxRow(j, i, i, rng.randbytes(TX_BYTES)) for j in range(TXS_PER_ROUND))),
                ),
            )
        )
        for i in range(count)
    ]


async def _follow(log: ReplicatedLog, after: int, end: int) -> float:
    """Read every entry after `after` up to `end`; returns when the last one arrived."""
    async with log.reader(after) as reader:
        while reader.position < end:
            if await reader.next(60.0) is None:
                raise RuntimeError(f"a follower got nothing for 60 s at position {reader.position}")
    return time.perf_counter()


async def _run(urls: list[str], payloads: list[bytes], followers: int) -> dict[str, Any]:
    stream = f"BENCH_{int(time.time() * 1000)}"
    writer = await connect(urls, "bench-writer")
    readers = [await connect(urls, f"bench-follower-{i}") for i in range(followers)]
    try:
        log = await ReplicatedLog.open(writer, stream)
        logs = [await ReplicatedLog.open(nc, stream) for nc in readers]
        end = len(payloads)
        following = [asyncio.create_task(_follow(other, 0, end)) for other in logs]
        latencies_ms: list[float] = []
        last = 0
        started = time.perf_counter()
        for payload in payloads:
            sent = time.perf_counter()
            last = await log.append(payload, last)
            latencies_ms.append((time.perf_counter() - sent) * 1000)
        acked = time.perf_counter()
        caught_up = await asyncio.gather(*following)
        return {
            "elapsed_s": acked - started,
            "latencies_ms": latencies_ms,
            # a follower may read the last entry before the writer's loop sees its ack: 0 then
            "followers_behind_ms": max(0.0, *((t - acked) * 1000 for t in caught_up)),
        }
    finally:
        await writer.jetstream().delete_stream(stream)  # the bench's rounds are of no further use
        await writer.close()
        for nc in readers:
            await nc.close()


def bench_cluster(
    rounds: int = 2_000, followers: int = 2, urls: list[str] | None = None, workdir: Path | None = None
) -> dict[str, Any]:
    """Time `rounds` sequential fenced 60 KB appends with `followers` readers; returns the figures."""
    payloads = round_payloads(rounds)
    progress(f"cluster: {rounds} rounds of {len(payloads[0]):,} bytes, {followers} followers")

    def measure(cluster_urls: list[str], cluster: NatsCluster | None) -> dict[str, Any]:
        pids = [node.process.pid for node in cluster.nodes if node.process is not None] if cluster else []
        servers_cpu, client_cpu = sum(_cpu_seconds(pid) for pid in pids), _client_cpu()
        result = uvloop.run(_run(cluster_urls, payloads, followers))
        servers_cpu = sum(_cpu_seconds(pid) for pid in pids) - servers_cpu
        result["servers_cpu"], result["client_cpu"] = servers_cpu, _client_cpu() - client_cpu
        return result

    if urls is not None:
        result = measure(urls, None)
    else:
        with (
            tempfile.TemporaryDirectory(prefix="bench-nats-", dir=workdir) as tmp,
            run_nats_cluster(tmp) as cluster,
        ):
            result = measure(cluster.urls, cluster)
    elapsed, latencies = result["elapsed_s"], result["latencies_ms"]
    rate = rounds / elapsed
    p50, p99 = statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
    progress(
        f"cluster: {rate:,.0f} rounds/s, append p50 {p50:.2f} ms, p99 {p99:.2f} ms; followers"
        f" {result['followers_behind_ms']:.1f} ms behind at the end; servers"
        f" {result['servers_cpu'] / elapsed:.0%} CPU, client {result['client_cpu'] / elapsed:.0%}"
    )
    return {
        "cluster_rounds": rounds,
        "cluster_round_bytes": len(payloads[0]),
        "cluster_followers": followers,
        "cluster_rounds_per_s": round(rate),
        "cluster_append_ms_p50": round(p50, 2),
        "cluster_append_ms_p99": round(p99, 2),
        "cluster_followers_behind_ms": round(result["followers_behind_ms"], 1),
        "cluster_servers_cpu_share": round(result["servers_cpu"] / elapsed, 2) if urls is None else None,
        "cluster_client_cpu_share": round(result["client_cpu"] / elapsed, 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m devnet.bench_cluster")
    parser.add_argument("--rounds", type=int, default=2_000)
    parser.add_argument("--followers", type=int, default=2)
    parser.add_argument(
        "--nats-url", help="an existing cluster: its URLs, comma-separated (default: start one)"
    )
    parser.add_argument("--quick", action="store_true", help="200 rounds (for tests)")
    args = parser.parse_args()
    urls = args.nats_url.split(",") if args.nats_url else None
    print(orjson.dumps(bench_cluster(200 if args.quick else args.rounds, args.followers, urls)).decode())
