"""Orders over HTTP: signed orders accepted durably by one real sequencer process.

The network runs as real processes on 127.0.0.1: an L1 (see the end), the contracts with the
devnet's markets, one sequencer that posts batches while the load runs, and the committee's price
feed. `TRADERS` funded accounts send a book-like flow: 80% of the orders rest away from the touch, 20%
cross it and fill. Orders are signed before the timed runs; the client shares the 2 cores with
the server, the L1 and the feed, so the CPU shares of the sequencer's process, of its helper
processes (signature worker, L1 children), of the client and of the L1 are reported beside the
figures. The client is kept lean for that reason: keep-alive HTTP/1.1 over asyncio streams on
uvloop, bodies encoded beforehand, answers parsed with orjson (no HTTP library).

- `orders_accepted_per_s`: `POST /v1/orders/batch` (200 orders per request, 4 connections), each
  acknowledgement durable in SQLite (orders and fills in one commit per request) before it is
  sent; beside it `orders_floor_per_s`, the same orders' EIP-712 signature checks and their fills'
  state-tree updates alone, on one core in this process.
- `order_ack_ms_p50` / `order_ack_ms_p99`: single-order requests (`POST /v1/orders`) sent
  open-loop at `ORDER_ACK_RATE` orders per second, latency from due time to acknowledgement;
  beside it `order_ack_floor_ms`, the signature check and tree work of one order.
- `orders_dropped_after_ack`: acknowledged transactions the sequencer dropped, once everything
  is on L1; nothing in the run may invalidate one, so the bench fails unless it is 0.

The L1 is anvil when it is installed (`orders_l1` says which). What is measured is the
sequencer; the L1 shares the 2 cores only because this is a devnet. The embedded py-evm node
executes each batch append three times (two for the gas estimate, once mined), so while a backlog
of fills waits for L1 it takes much of a core from the sequencer; anvil's EVM takes little, as a
production node on its own machine would take none. `orders_l1_cpu_share` reports the L1's share
during the batch load either way; `python -m devnet.bench_orders --l1 embedded` runs the same
bench on the embedded node.
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

import httpx
import orjson
import uvloop
from web3 import Web3

from contracts.bindings import BridgeClient, Sender, TokenClient
from devnet.anvil import AnvilNotFound, find_anvil
from devnet.bench_http import _client_cpu, _cpu_seconds
from devnet.deploy import DeployParams
from devnet.markets import MARKETS, governance_payloads
from devnet.orchestrator import DEPLOYER, SEQ_A, Network, get_json
from devnet.procs import wait_until
from sequencer.client import order_body
from sequencer.stf.constants import SIDE_BUY
from sequencer.stf.eip712 import address_of, order_digest, recover_sig, sign_order
from sequencer.stf.keys import account_key, insurance_key, order_key
from sequencer.stf.smt import SparseMerkleTree
from sequencer.stf.types import ChainConfig, Order, SignedOrder

TRADERS = 50
"""Funded accounts sending the flow: enough that none of them rests more orders than a sequencer
keeps for one account by default (`sequencer.exchange.MAX_OPEN_ORDERS`)."""
ORDER_ACK_RATE = 2_000.0
"""Single orders per second for the latency figure (the issue's rate)."""
ETH = MARKETS[0].market_id
MARK = MARKETS[0].start_price
LOT = MARKETS[0].params.lot_size
COLLATERAL = 10**14
"""Each trader's deposit: 100 million dUSD, so margin never refuses the flow."""


def progress(message: str) -> None:
    """Show progress on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def order_flow(keys: list[bytes], n: int, config: ChainConfig, seed: int) -> list[SignedOrder]:
    """`n` signed ETH orders: 80% rest 1..50 ticks away from the mark, 20% cross it by a tick."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = keys[rng.randrange(len(keys))]
        side = rng.randrange(2)
        away = -1 if rng.random() < 0.2 else rng.randint(1, 50)
        price = MARK - away if side == SIDE_BUY else MARK + away
        order = Order(address_of(k), ETH, side, price, LOT * rng.randint(1, 20), 0, 0, seed * 10_000_000 + i)
        out.append(sign_order(k, order, config))
    return out


def floor_per_order_s(orders: list[SignedOrder], config: ChainConfig, fill_share: float) -> float:
    """Seconds per order of the work no implementation avoids: its EIP-712 digest and signature
    recovery, plus, for the share of orders that fill, the fill's five leaf writes and a root."""
    started = time.perf_counter()
    for signed in orders:
        assert recover_sig(order_digest(signed.order, config), signed.sig) == signed.order.trader
    sig_s = (time.perf_counter() - started) / len(orders)
    tree = SparseMerkleTree()
    rng = random.Random(3)
    accounts = [account_key(rng.randbytes(20)) for _ in range(TRADERS)]
    for key in accounts:
        tree.set(key, b"\x01" * 192)
    value, order_value = b"\x02" * 192, b"\x03" * 64
    fills = 2_000
    started = time.perf_counter()
    for i in range(fills):
        tree.set(accounts[i % TRADERS], value)
        tree.set(accounts[(i + 7) % TRADERS], value)
        tree.set(order_key(rng.randbytes(32)), order_value)
        tree.set(order_key(rng.randbytes(32)), order_value)
        tree.set(insurance_key(), i.to_bytes(32, "big"))
        _ = tree.root
    tree_s = (time.perf_counter() - started) / fills
    return sig_s + fill_share * tree_s


def helpers_cpu(pid: int) -> float:
    """CPU seconds of the direct children of `pid` (the sequencer's signature worker and L1
    children), as far as they are running now."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == pid:
                total += _cpu_seconds(int(entry.name))
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
    return total


def fund(net: Network, addresses: list[bytes], amount: int) -> None:
    """The deployer mints and deposits `amount` for each address (it is the devnet's faucet)."""
    w3 = Web3(Web3.HTTPProvider(net.l1_url, request_kwargs={"timeout": 60}))
    deployer = Sender.from_key(net.accounts[DEPLOYER].private_key)
    token, bridge = TokenClient(w3, net.deployment.token), BridgeClient(w3, net.deployment.bridge)
    token.mint(deployer, deployer.address, amount * len(addresses))
    token.approve(deployer, net.deployment.bridge, amount * len(addresses))
    for address in addresses:
        bridge.deposit(deployer, address, amount)


def dropped_after_ack(url: str) -> int:
    """Acknowledged transactions the sequencer dropped so far (`rollup_txs_dropped_total`)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples = [line for line in text.splitlines() if line.startswith("rollup_txs_dropped_total{")]
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in samples)


def _post(url: str, path: bytes, body: bytes) -> bytes:
    """The bytes of a JSON `POST path` request to `url`."""
    host = url.removeprefix("http://").encode()
    head = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n" % (path, host)
    return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class _Connection:
    """A minimal keep-alive HTTP/1.1 client connection on asyncio streams: the load generators
    share the 2 cores with the sequencer, so they spend as little CPU as they can (no HTTP
    library, uvloop, orjson)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> _Connection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def exchange(self, request: bytes) -> tuple[bytes, bytes]:
        """Send one request, read its answer: (status line, body)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        return head.split(b"\r\n", 1)[0], await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _batch_load(url: str, bodies: list[bytes], connections: int) -> tuple[int, int, list[str]]:
    """POST pre-encoded batch bodies over `connections` connections; (accepted, fills, errors)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(_post(url, b"/v1/orders/batch", body))
    accepted = fills = 0
    errors: list[str] = []

    async def worker() -> None:
        nonlocal accepted, fills
        conn = await _Connection.open(url)
        try:
            while not queue.empty():
                status, answer = await conn.exchange(queue.get_nowait())
                if not status.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"refused: {status!r} {answer[:200]!r}")
                for item in orjson.loads(answer)["results"]:
                    if item["error"] is None:
                        accepted += 1
                        fills += len(item["result"]["fills"])
                    else:
                        errors.append(item["error"]["code"])
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return accepted, fills, errors


async def _latency_load(url: str, bodies: list[bytes], rate: float, connections: int = 64) -> list[float]:
    """Open-loop single-order requests: request i is due at `i / rate`; latency runs from due time
    to acknowledgement (waiting for a free connection counts). The keep-alive connections are
    open before the first request is due, as a trading client's are."""
    requests = [_post(url, b"/v1/orders", body) for body in bodies]
    latencies: list[float] = []
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def connection(conn: _Connection) -> None:
        try:
            while (job := await queue.get()) is not None:
                due, request = job
                status, answer = await conn.exchange(request)
                if not status.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"refused: {status!r} {answer[:200]!r}")
                latencies.append((time.perf_counter() - due) * 1000)
        finally:
            conn.close()

    opened = await asyncio.gather(*(_Connection.open(url) for _ in range(connections)))
    workers = [asyncio.create_task(connection(conn)) for conn in opened]
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


def default_l1() -> str:
    """anvil when it is installed, else the embedded node (see the module docstring)."""
    try:
        find_anvil()
    except AnvilNotFound:
        return "embedded"
    return "anvil"


def bench_orders(quick: bool = False, l1: str | None = None) -> dict[str, Any]:
    """Run the network on `l1` (`default_l1()` if None), load it with orders, return the figures."""
    l1 = l1 or default_l1()
    n_batch = 4_000 if quick else 40_000
    n_single = 1_000 if quick else 10_000
    rate = 500.0 if quick else ORDER_ACK_RATE
    workdir = Path(tempfile.mkdtemp(prefix="rollup-bench-orders-"))
    progress(f"orders: starting a network on the {l1} L1 in {workdir}")
    with Network.start(workdir, l1=l1, params=DeployParams(challenge_window_seconds=600)) as net:
        seq = net.start_sequencer("sequencer-a", SEQ_A)
        dep = net.deployment
        config = ChainConfig(chain_id=dep.chain_id, rollup=bytes.fromhex(dep.rollup[2:]))
        keys = [(9_000_000 + i).to_bytes(32, "big") for i in range(TRADERS)]
        fund(net, [address_of(k) for k in keys], COLLATERAL)
        wait_until(
            lambda: (
                get_json(f"{seq.url}/v1/status")["next_deposit_index"] == len(governance_payloads()) + TRADERS
            ),
            120,
            what="markets and deposits batched",
        )
        net.start_oracle("oracle", seq, interval_ms=2_000, walk_bps=0)
        progress(f"orders: signing {n_batch + n_single} orders before the timed runs")
        batch_orders = order_flow(keys, n_batch, config, seed=1)
        single_orders = order_flow(keys, n_single, config, seed=2)
        bodies = [
            orjson.dumps({"orders": [order_body(o) for o in batch_orders[i : i + 200]]})
            for i in range(0, n_batch, 200)
        ]

        l1_pid = net.l1_process.pid if net.l1_process is not None else None
        l1_cpu = _cpu_seconds(l1_pid) if l1_pid is not None else 0.0
        helpers = helpers_cpu(seq.process.pid)
        server_cpu, client_cpu, started = _cpu_seconds(seq.process.pid), _client_cpu(), time.perf_counter()
        accepted, fills, errors = uvloop.run(_batch_load(seq.url, bodies, 4))
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = _cpu_seconds(seq.process.pid) - server_cpu, _client_cpu() - client_cpu
        helpers = helpers_cpu(seq.process.pid) - helpers
        l1_cpu = _cpu_seconds(l1_pid) - l1_cpu if l1_pid is not None else 0.0
        if errors:
            raise RuntimeError(f"refused during the load: {sorted(set(errors))}")
        rate_accepted = accepted / elapsed
        floor_s = floor_per_order_s(batch_orders[:4_000], config, fills / max(accepted, 1))
        progress(
            f"orders: {rate_accepted:,.0f}/s accepted in batches of 200 ({fills} fills; server"
            f" {server_cpu / elapsed:.0%} CPU and its helpers {helpers / elapsed:.0%}, client"
            f" {client_cpu / elapsed:.0%}, L1 {l1_cpu / elapsed:.0%});"
            f" floor {1 / floor_s:,.0f}/s"
        )
        # steady state: the backlog is on L1 first, then the node only posts what this load brings
        wait_until(
            lambda: get_json(f"{seq.url}/v1/status")["pending"] == 0,
            900,
            interval=0.5,
            what="the backlog on L1",
        )
        single_bodies = [orjson.dumps(order_body(o)) for o in single_orders]
        server_at, client_at, single_at = _cpu_seconds(seq.process.pid), _client_cpu(), time.perf_counter()
        latencies = uvloop.run(_latency_load(seq.url, single_bodies, rate))
        single_s = time.perf_counter() - single_at
        single_server = (_cpu_seconds(seq.process.pid) - server_at) / single_s
        single_client = (_client_cpu() - client_at) / single_s
        p50, p99 = statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
        progress(
            f"orders: single orders at {rate:.0f}/s: ack p50 {p50:.1f} ms, p99 {p99:.1f} ms (server"
            f" {single_server:.0%} CPU, client {single_client:.0%})"
        )
        wait_until(
            lambda: get_json(f"{seq.url}/v1/status")["pending"] == 0, 900, interval=0.5, what="all on L1"
        )
        dropped = dropped_after_ack(seq.url)
        if dropped:  # nothing happened that could invalidate an acknowledged order: a lost order
            raise RuntimeError(f"{dropped} acknowledged transactions were dropped (see the sequencer's log)")
        return {
            "orders_l1": l1,
            "orders_accepted_per_s": round(rate_accepted),
            "orders_floor_per_s": round(1 / floor_s),
            "orders_fills_per_s": round(fills / elapsed),
            "orders_server_cpu_share": round(server_cpu / elapsed, 2),
            "orders_server_helpers_cpu_share": round(helpers / elapsed, 2),
            "orders_client_cpu_share": round(client_cpu / elapsed, 2),
            "orders_l1_cpu_share": round(l1_cpu / elapsed, 2),
            "order_ack_rate_per_s": rate,
            "order_ack_ms_p50": round(p50, 2),
            "order_ack_p99_ms": round(p99, 2),
            "order_ack_floor_ms": round(floor_s * 1000, 3),
            "order_ack_server_cpu_share": round(single_server, 2),
            "order_ack_client_cpu_share": round(single_client, 2),
            "orders_dropped_after_ack": dropped,
        }


if __name__ == "__main__":
    from contracts.keccak import use_pysha3

    use_pysha3()
    parser = argparse.ArgumentParser(prog="python -m devnet.bench_orders")
    parser.add_argument("--quick", action="store_true", help="small sizes (for tests)")
    parser.add_argument("--l1", choices=["anvil", "embedded"], help="default: anvil if installed")
    args = parser.parse_args()
    print(orjson.dumps(bench_orders(quick=args.quick, l1=args.l1)).decode())
