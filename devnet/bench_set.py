"""The sequencer set's figures: orders through a set of three members on a three-node JetStream
cluster, every process on this machine's cores, and failovers under load.

- `orders_accepted_per_s_replicated`: signed orders accepted per second in batches of 200 by the
  leader, each acknowledged only once its round is in the set's log (beside the lone sequencer's
  `orders_accepted_per_s`, measured in the same run by `devnet.bench_orders`).
- `order_ack_p99_ms_replicated`: single orders at a steady 2,000 per second, from send to
  acknowledgement.
- `failover_ms`: from kill -9 of the leader under two traders' orders to the next leader's first
  acknowledgement (median and worst of `KILLS` kills, each member started again after it), and
  `failover_to_batch_ms` to the next leader's first batch on L1; `acked_orders_lost` counts
  acknowledged orders the next leader does not know and acknowledged fills L1 never got: the
  bench fails unless it is 0.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from web3 import Web3

from contracts.bindings import RollupClient
from devnet.bench_orders import (
    COLLATERAL,
    ORDER_ACK_RATE,
    TRADERS,
    _batch_load,
    _latency_load,
    default_l1,
    dropped_after_ack,
    fund,
    order_flow,
    progress,
)
from devnet.deploy import DeployParams
from devnet.failover import failover_under_load
from devnet.markets import MARKETS, governance_payloads
from devnet.orchestrator import SET_ACCOUNTS, Network, get_json
from devnet.procs import wait_until
from sequencer.builder import batch_tx_hashes
from sequencer.client import TraderClient, order_body
from sequencer.stf.eip712 import address_of
from sequencer.stf.types import ChainConfig

KILLS = 17
"""Failovers measured per run (with the end-to-end tests' three, 20 in a `make test` and a `make bench`);
each killed member starts again while the next leader works, and the next kill waits for it."""


def _followers(net: Network) -> int:
    """Members of the set that answer /health with 200 as followers."""
    count = 0
    for name in SET_ACCOUNTS:
        service = net.services.get(name)
        if service is None or not service.process.alive:
            continue
        try:
            facts = httpx.get(f"{service.url}/health", timeout=2.0)
        except httpx.HTTPError:
            continue
        if facts.status_code == 200 and facts.json().get("cluster", {}).get("role") == "follower":
            count += 1
    return count


def _batch_senders(rollup: RollupClient, start_block: int) -> list[bytes]:
    """The sequencer of each batch appended from `start_block` on, in order."""
    return [e.header.sequencer for e in rollup.batch_appended_events(start_block)]


def bench_set(quick: bool = False, l1: str | None = None) -> dict[str, Any]:
    """Run a set on `l1`, load its leader with orders, kill leaders; return the figures."""
    l1 = l1 or default_l1()
    n_batch = 2_000 if quick else 40_000
    n_single = 500 if quick else 10_000
    rate = 500.0 if quick else ORDER_ACK_RATE
    kills = 1 if quick else KILLS
    workdir = Path(tempfile.mkdtemp(prefix="rollup-bench-set-"))
    progress(f"set: starting a set of three on a JetStream cluster and the {l1} L1 in {workdir}")
    with Network.start(workdir, l1=l1, params=DeployParams(challenge_window_seconds=600)) as net:
        net.start_nats()
        members = net.start_set(3)
        dep = net.deployment
        config = ChainConfig(chain_id=dep.chain_id, rollup=bytes.fromhex(dep.rollup[2:]))
        keys = [(9_000_000 + i).to_bytes(32, "big") for i in range(TRADERS)]
        fund(net, [address_of(k) for k in keys], COLLATERAL)
        leader = net.leader()
        wait_until(
            lambda: (
                get_json(f"{leader.url}/v1/status")["next_deposit_index"]
                == len(governance_payloads()) + TRADERS
            ),
            120,
            what="markets and deposits batched",
        )
        net.start_oracle("oracle", members, interval_ms=2_000, walk_bps=0)
        progress(f"set: signing {n_batch + n_single} orders before the timed runs")
        batch_orders = order_flow(keys, n_batch, config, seed=1)
        single_orders = order_flow(keys, n_single, config, seed=2)
        bodies = [
            orjson.dumps({"orders": [order_body(o) for o in batch_orders[i : i + 200]]})
            for i in range(0, n_batch, 200)
        ]
        started = time.perf_counter()
        accepted, fills, errors = uvloop.run(_batch_load(leader.url, bodies, 4))
        elapsed = time.perf_counter() - started
        if errors:
            raise RuntimeError(f"refused during the load: {sorted(set(errors))}")
        progress(f"set: {accepted / elapsed:,.0f} orders/s accepted in batches of 200 ({fills} fills)")
        wait_until(
            lambda: get_json(f"{leader.url}/v1/status")["pending"] == 0,
            900,
            interval=0.5,
            what="backlog on L1",
        )
        latencies = uvloop.run(
            _latency_load(leader.url, [orjson.dumps(order_body(o)) for o in single_orders], rate)
        )
        p50, p99 = statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
        progress(f"set: single orders at {rate:.0f}/s: ack p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        wait_until(
            lambda: get_json(f"{leader.url}/v1/status")["pending"] == 0, 900, interval=0.5, what="all on L1"
        )
        dropped = dropped_after_ack(leader.url)

        w3 = Web3(Web3.HTTPProvider(net.l1_url, request_kwargs={"timeout": 60}))
        rollup = RollupClient(w3, dep.rollup)

        def on_l1() -> set[str]:
            return {
                "0x" + h.hex()
                for e in rollup.batch_appended_events(dep.deploy_block)
                for h in batch_tx_hashes(e.txs)
            }

        urls = [m.url for m in members]
        maker, taker = (TraderClient(urls, k, config) for k in keys[:2])
        failovers: list[float] = []
        to_batch: list[float] = []
        lost = 0
        for i in range(kills):
            # a member that can take over must be up: the one killed before starts again meanwhile
            wait_until(lambda: _followers(net) >= 1, 180, interval=0.2, what="a follower to take over")
            since = w3.eth.block_number
            report = failover_under_load(
                net,
                maker,
                taker,
                market=MARKETS[0].market_id,
                price=MARKETS[0].start_price,
                size=MARKETS[0].params.lot_size,
                hashes_on_l1=on_l1,
                before=20,
                after=20,
                batch_senders=partial(_batch_senders, rollup, since),
            )
            net.respawn(report.killed)  # it rejoins as a follower, its log rebuilt from the set's
            if report.failover_to_batch_ms is None:
                raise RuntimeError(f"no batch by another member within a minute of killing {report.killed}")
            to_batch.append(report.failover_to_batch_ms)
            failovers.append(report.failover_ms)
            lost += report.acked_orders_lost
            progress(
                f"set: failover {i + 1}/{kills}: {report.killed} killed, {report.leader} acknowledged"
                f" after {report.failover_ms:.0f} ms, posted after {report.failover_to_batch_ms:.0f} ms;"
                f" {report.acked_orders} orders,"
                f" {report.acked_fills} fills, {report.acked_orders_lost} lost"
            )
        maker.close()
        taker.close()
        wait_until(lambda: _followers(net) == 2, 180, interval=0.2, what="every member back")
        if lost or dropped:
            raise RuntimeError(f"acknowledged work lost: {lost} in failovers, {dropped} dropped after ack")
        return {
            "set_members": len(members),
            "orders_accepted_per_s_replicated": round(accepted / elapsed),
            "orders_fills_per_s_replicated": round(fills / elapsed),
            "order_ack_rate_per_s_replicated": rate,
            "order_ack_ms_p50_replicated": round(p50, 2),
            "order_ack_p99_ms_replicated": round(p99, 2),
            "failovers": kills,
            "failover_ms": round(statistics.median(failovers), 1),
            "failover_ms_max": round(max(failovers), 1),
            "failover_to_batch_ms": round(statistics.median(to_batch), 1),
            "acked_orders_lost": lost,
        }


if __name__ == "__main__":
    from contracts.keccak import use_pysha3

    use_pysha3()
    parser = argparse.ArgumentParser(prog="python -m devnet.bench_set")
    parser.add_argument("--quick", action="store_true", help="small sizes (for tests)")
    parser.add_argument("--l1", choices=["anvil", "embedded"], help="default: anvil if installed")
    args = parser.parse_args()
    print(orjson.dumps(bench_set(quick=args.quick, l1=args.l1)).decode())
