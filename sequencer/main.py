"""`rollup sequencer`: run one sequencer (API + follower + builder) against any L1."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from contracts.keccak import use_pysha3
from contracts.l1 import Web3L1, load_deployment
from contracts.logs import get_logger
from sequencer.api.app import create_app, server_protocol
from sequencer.config import SequencerSettings
from sequencer.gcpause import full_collections, quiet_gc
from sequencer.l1proc import L1Params, L1Processes
from sequencer.node import NodeOptions, SequencerNode
from sequencer.stall import LoopMonitor
from sequencer.stf.constants import TX_TYPE_NAMES
from sequencer.store import Store

TX_TYPE_BYTES = {name: byte for byte, name in TX_TYPE_NAMES.items()}
"""Type byte of each transaction type name (for `--fault-tx-type`)."""

log = get_logger("sequencer")


def build_node(settings: SequencerSettings) -> SequencerNode:
    """Wire a node from its settings."""
    deployment = load_deployment(settings.deployment)
    l1 = Web3L1(
        settings.l1_url, deployment, private_key=settings.private_key, confirmations=settings.l1_confirmations
    )
    Path(settings.db_path).parent.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_path, fsync=settings.fsync)
    options = NodeOptions(
        batch_max_txs=settings.batch_max_txs,
        batch_interval_ms=settings.batch_interval_ms,
        l1_poll_ms=settings.l1_poll_ms,
        max_pending=settings.max_pending,
        corrupt_root_at=settings.fault_post_root_offset,
        corrupt_tx_type=TX_TYPE_BYTES[settings.fault_tx_type] if settings.fault_tx_type else -1,
        bond_wei=settings.bond_wei,
        signature_worker=settings.signature_worker,
    )
    calls: Web3L1 | L1Processes = l1
    if settings.l1_processes:
        params = L1Params(settings.l1_url, deployment, settings.private_key, settings.l1_confirmations)
        calls = L1Processes(params, l1.address)
    node = SequencerNode(
        l1.chain_config(),
        store,
        calls,
        calls,
        start_block=deployment.deploy_block,
        options=options,
        receipt_key=l1.sender.private_key if l1.sender else None,
    )
    rollup_params = l1.rollup.params()
    node.chain.challenge_window_seconds = rollup_params.challenge_window_seconds
    node.max_l2_time_lag_seconds = rollup_params.max_l2_time_lag_seconds
    return node


def serve(settings: SequencerSettings) -> None:
    """Run the node and its API until SIGINT/SIGTERM."""
    node = build_node(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await node.start()
        quiet_gc()
        monitor = LoopMonitor() if settings.loop_monitor else None
        if monitor is not None:
            monitor.start()
        tasks = [
            asyncio.create_task(node.follower_loop()),
            asyncio.create_task(node.builder_loop()),
            asyncio.create_task(node.keeper_loop()),
        ]
        if settings.gc_full_collection_s > 0:
            tasks.append(asyncio.create_task(full_collections(settings.gc_full_collection_s)))
        log.info(
            "api_listening", url=f"http://{settings.host}:{settings.port}", sequencer=node.writer.address
        )
        try:
            yield
        finally:
            node.stopping = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if monitor is not None:
                await monitor.stop()
            await node.close()
            if isinstance(node.writer, L1Processes):
                await asyncio.to_thread(node.writer.stop)
            node.store.close()
            log.info("stopped")

    app = create_app(node, max_body_bytes=settings.max_body_bytes)
    app.router.lifespan_context = lifespan
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # httptools, with single orders answered in the protocol itself (`sequencer.api.direct`)
        http=server_protocol(node, max_body_bytes=settings.max_body_bytes),
        log_level="warning",
        access_log=False,
        # No proxy in front whose X-Forwarded-* headers to trust, and no server banner: a layer
        # and a header less per request (~3 us of uvicorn's ~31 measured with a trivial app).
        proxy_headers=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    server.run()


def main(argv: list[str] | None = None) -> None:
    """Parse flags (each overrides the `ROLLUP_SEQ_*` environment) and serve."""
    use_pysha3()
    parser = argparse.ArgumentParser(prog="rollup sequencer", description="Run a sequencer node.")
    parser.add_argument("--l1-url")
    parser.add_argument("--deployment", help="deployment JSON written by `rollup deploy` / `rollup devnet`")
    parser.add_argument("--private-key", help="hex key of the bonded sequencer account")
    parser.add_argument("--db", dest="db_path")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--batch-max-txs", type=int)
    parser.add_argument("--batch-interval-ms", type=int)
    parser.add_argument("--fsync", action="store_true", default=None)
    parser.add_argument("--l1-confirmations", type=int, help="read only L1 blocks this deep (default 0)")
    parser.add_argument(
        "--fault-post-root-offset",
        type=int,
        help="TESTS/DEMO ONLY: corrupt the post-root of this transaction of the next batch",
    )
    parser.add_argument(
        "--fault-tx-type",
        choices=sorted(TX_TYPE_BYTES),
        help="TESTS/DEMO ONLY: corrupt the post-root of the next batch's first transaction of this type",
    )
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    settings = SequencerSettings(**overrides)
    serve(settings)


if __name__ == "__main__":
    main()
