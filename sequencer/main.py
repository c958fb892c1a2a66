"""`rollup sequencer`: run one sequencer (API + follower + builder) against any L1."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from contracts.health import HealthLimits
from contracts.keccak import use_pysha3
from contracts.l1 import Web3L1, load_deployment
from contracts.logs import get_logger
from sequencer.api.app import create_app, server_protocol
from sequencer.cluster.connect import connect
from sequencer.cluster.errors import ClusterUnavailable
from sequencer.cluster.lease import Lease
from sequencer.cluster.log import ReplicatedLog
from sequencer.cluster.renewer import Renewer
from sequencer.config import SequencerSettings, SettingsError, load_settings
from sequencer.fairness import Fairness, FairnessLimits
from sequencer.gcpause import full_collections, quiet_gc
from sequencer.l1proc import L1Params, L1Processes
from sequencer.member import Member, MemberOptions
from sequencer.node import NodeOptions, SequencerNode
from sequencer.stall import LoopMonitor
from sequencer.store import Store

NodeFactory = Callable[..., SequencerNode]
"""Makes a node from `SequencerNode`'s arguments."""

log = get_logger("sequencer")


def build_node(settings: SequencerSettings, node_type: NodeFactory = SequencerNode) -> SequencerNode:
    """Wire a node from its settings (`node_type`: a variant of the node, made with the same
    arguments)."""
    deployment = load_deployment(settings.deployment)
    l1 = Web3L1(
        settings.l1_url,
        deployment,
        private_key=settings.private_key,
        timeout=settings.l1_timeout_s,
        confirmations=settings.l1_confirmations,
    )
    Path(settings.db_path).parent.mkdir(parents=True, exist_ok=True)
    if settings.nats_url:  # a set's member: its durable log is the set's, rebuilt from it at start
        for suffix in ("", "-wal", "-shm"):
            Path(settings.db_path + suffix).unlink(missing_ok=True)
    store = Store(settings.db_path, fsync=settings.fsync, durable=not settings.nats_url)
    options = NodeOptions(
        batch_max_txs=settings.batch_max_txs,
        batch_interval_ms=settings.batch_interval_ms,
        l1_poll_ms=settings.l1_poll_ms,
        max_pending=settings.max_pending,
        max_open_orders=settings.max_open_orders,
        bond_wei=settings.bond_wei,
        in_set=bool(settings.nats_url),
        signature_worker=settings.signature_worker,
        account_orders_per_s=settings.account_orders_per_s,
        account_orders_burst=settings.account_orders_burst,
        health=HealthLimits(
            l1_silence_s=settings.l1_silence_limit_s,
            l1_lag_blocks=settings.l1_lag_limit_blocks,
            send_stall_s=settings.post_stall_limit_s,
        ),
    )
    calls: Web3L1 | L1Processes = l1
    if settings.l1_processes:
        params = L1Params(
            settings.l1_url,
            deployment,
            settings.private_key,
            settings.l1_confirmations,
            timeout=settings.l1_timeout_s,
        )
        calls = L1Processes(params, l1.address)
    node = node_type(
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
    node.l2clock.max_lag_seconds = rollup_params.max_l2_time_lag_seconds
    return node


def serve(settings: SequencerSettings, node: SequencerNode | None = None) -> None:
    """Run a node (by default the one `build_node` wires from `settings`) and its API until
    SIGINT/SIGTERM."""
    node = node or build_node(settings)
    exit_status = 0

    def deposed(reason: str) -> None:
        nonlocal exit_status
        exit_status = DEPOSED_EXIT_STATUS
        server.should_exit = True

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        member = None
        if settings.nats_url:
            member = await join_set(node, settings, deposed)
        await node.start()
        if member is not None:
            member.start()
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
            if member is not None:
                await member.stop()
                await member.log.nc.close()
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

    fairness = Fairness(
        FairnessLimits(
            bytes_per_s=settings.client_bytes_per_s,
            burst_bytes=settings.client_burst_bytes,
            penalty_s=settings.bad_signature_penalty_s,
        )
    )
    app = create_app(node, max_body_bytes=settings.max_body_bytes, fairness=fairness)
    app.router.lifespan_context = lifespan
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # httptools, with single orders answered in the protocol itself (`sequencer.api.direct`)
        http=server_protocol(node, max_body_bytes=settings.max_body_bytes, fairness=fairness),
        log_level="warning",
        access_log=False,
        # No proxy in front whose X-Forwarded-* headers to trust, and no server banner: a layer
        # and a header less on every request.
        proxy_headers=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    server.run()
    if exit_status:
        raise SystemExit(exit_status)


JOIN_WAIT_S = 60.0
"""How long a member keeps trying to open the set's log and lease at start."""
DEPOSED_EXIT_STATUS = 75
"""How a set's member that was deposed ends (EX_TEMPFAIL: started again, it rejoins as a
follower; uvicorn's own failure to start is status 3)."""


async def join_set(
    node: SequencerNode, settings: SequencerSettings, deposed: Callable[[str], None]
) -> Member:
    """Connect to the set's NATS cluster, open its log and lease, and make `node` a member."""
    name = settings.advertise_url or f"http://{settings.host}:{settings.port}"
    urls = [u.strip() for u in settings.nats_url.split(",") if u.strip()]
    nc = await connect(urls, name)
    deadline = time.monotonic() + JOIN_WAIT_S
    while True:  # the stream and the bucket are made by the first member: a new cluster is slow then
        try:
            replicated = await ReplicatedLog.open(nc)
            lease = await Lease.open(nc, name, ttl=settings.lease_ttl_s)
            break
        except ClusterUnavailable as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("join_set_retry", error=str(exc))
            await asyncio.sleep(0.5)
    renewer = Renewer(lease, urls)
    await asyncio.to_thread(renewer.start)
    member = Member(node, replicated, lease, MemberOptions(name), deposed, renewer)
    node.attach_member(member)
    log.info("joined_set", member=name, nats=settings.nats_url, lease_ttl_s=settings.lease_ttl_s)
    return member


FLAGS = {
    "l1_url": "--l1-url",
    "deployment": "--deployment",
    "private_key": "--private-key",
    "db_path": "--db",
    "host": "--host",
    "port": "--port",
    "batch_max_txs": "--batch-max-txs",
    "batch_interval_ms": "--batch-interval-ms",
    "l1_confirmations": "--l1-confirmations",
    "l1_timeout_s": "--l1-timeout-s",
    "l1_silence_limit_s": "--l1-silence-limit-s",
    "l1_lag_limit_blocks": "--l1-lag-limit-blocks",
    "post_stall_limit_s": "--post-stall-limit-s",
    "fsync": "--fsync",
    "nats_url": "--nats-url",
    "advertise_url": "--advertise-url",
    "lease_ttl_s": "--lease-ttl-s",
}
"""The flag of each setting that has one. `--fsync` is a switch; the others take a value, which the
settings model checks as it checks the environment's (`sequencer.config`)."""

_HELP = {
    "deployment": "deployment JSON written by `rollup deploy` / `rollup devnet`",
    "private_key": "hex key of the bonded sequencer account",
    "l1_confirmations": "read only L1 blocks this deep (default 0)",
    "l1_timeout_s": "each L1 request gives up after this (default 10)",
    "l1_silence_limit_s": "/health 503 and refusals once the L1 has not answered for this long (default 10)",
    "l1_lag_limit_blocks": "/health 503 while more L1 blocks than this wait to be read (default 100)",
    "post_stall_limit_s": "/health 503 and refusals once no batch could be posted for this long (default 30)",
    "nats_url": "the sequencer set's NATS servers (comma-separated): run as a member of the set",
    "advertise_url": "this member's API URL as the set names it (default http://HOST:PORT)",
    "lease_ttl_s": "a set's leader holds the lease this long past its last renewal (default 1.5)",
}


def argument_parser(
    prog: str = "rollup sequencer", description: str = "Run a sequencer node."
) -> argparse.ArgumentParser:
    """The sequencer's flags; each overrides the `ROLLUP_SEQ_*` environment (`settings_from`)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    for setting, flag in FLAGS.items():
        if setting == "fsync":
            parser.add_argument(flag, action="store_true", default=None)
        else:
            parser.add_argument(flag, dest=setting, help=_HELP.get(setting))
    return parser


def settings_from(args: argparse.Namespace, prog: str = "rollup sequencer") -> SequencerSettings:
    """The settings: the environment's, overridden by the flags given; invalid ones end the process
    with one line on stderr naming each bad setting (exit status 2, as for a bad flag)."""
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        return load_settings(overrides, FLAGS)
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    """Parse flags and serve."""
    use_pysha3()
    serve(settings_from(argument_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
