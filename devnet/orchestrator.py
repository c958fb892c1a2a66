"""The orchestrator: a whole network on this machine, as real processes on 127.0.0.1.

`Network` starts an L1 (the embedded node, anvil, or an external URL), deploys the contracts,
and starts sequencers and watchers as separate processes, each with its own L1 key, port, log
file and (for sequencers) SQLite log under the work directory. It waits on conditions (health
endpoints, JSON-RPC answers) with timeouts, and stops every process it started by its own PID.
`rollup devnet` and `rollup deploy` live here; `rollup demo` and the end-to-end tests use it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from web3 import Web3

from contracts.bindings import Sender
from contracts.deployment import Deployment
from contracts.logs import get_logger
from devnet.anvil import find_anvil
from devnet.deploy import DeployParams, deploy_all
from devnet.jetstream import NatsCluster, new_cluster
from devnet.l1.chain import DEV_ACCOUNT_COUNT, DEV_MNEMONIC, DevAccount, dev_accounts
from devnet.markets import COMMITTEE_THRESHOLD, MARKETS, committee_keys, list_devnet_markets
from devnet.procs import (
    REPO_ROOT,
    ManagedProcess,
    free_port,
    spawn,
    wait_for_chain_id,
    wait_for_listening,
    wait_until,
)
from devnet.supervisor import Supervisor, restart_command, restart_main
from sequencer.cluster.lease import DEFAULT_BUCKET as LEASE_BUCKET
from sequencer.cluster.log import DEFAULT_STREAM as LOG_STREAM

log = get_logger("devnet")

DEPLOYER, SEQ_A, SEQ_B, WATCHER_1, WATCHER_2 = 0, 1, 2, 3, 4
"""Dev-account roles (indices into the mnemonic's accounts)."""
FIRST_TRADER = 5
SEQ_C, SEQ_D = 10, 11
"""The other members of a sequencer set."""
SET_ACCOUNTS = {"sequencer-a": SEQ_A, "sequencer-c": SEQ_C, "sequencer-d": SEQ_D}
"""The members of a sequencer set and their dev accounts (SEQ_B stays a sequencer on its own:
the devnet's second, the demo's faulty one)."""
SET_STREAMS = (LOG_STREAM, f"KV_{LEASE_BUCKET}")
"""The JetStream streams of a sequencer set: its log and its lease's key-value bucket."""


@dataclass
class Service:
    """A running rollup service."""

    name: str
    url: str
    process: ManagedProcess
    account: DevAccount


@dataclass
class Network:
    """An L1, the deployed contracts, and the services started on them."""

    workdir: Path
    l1_url: str
    deployment: Deployment
    deployment_path: Path
    accounts: list[DevAccount]
    l1_process: ManagedProcess | None = None
    services: dict[str, Service] = field(default_factory=dict)
    nats: NatsCluster | None = None
    """The sequencer set's JetStream cluster, once started (`start_nats`)."""
    nats_urls: list[str] = field(default_factory=list)
    """The set's NATS servers (started here, or an existing cluster's)."""

    # ---- starting ----------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        l1: str = "embedded",
        params: DeployParams | None = None,
        chain_id: int = 31337,
        l1_port: int = 0,
        markets: bool = True,
    ) -> Network:
        """Start (or attach to) the L1, deploy, and (unless `markets` is False) queue the devnet's
        markets and oracle committee through the governor; services are started with
        `start_sequencer` etc."""
        workdir.mkdir(parents=True, exist_ok=True)
        proc: ManagedProcess | None = None
        if l1 in {"embedded", "anvil"}:
            proc, url = start_l1(workdir, l1, chain_id, l1_port)
        else:
            url = l1
        try:
            accounts = dev_accounts()
            w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
            deployer = Sender.from_key(accounts[DEPLOYER].private_key)
            deployment = deploy_all(w3, deployer, params or DeployParams())
            path = workdir / "deployment.json"
            deployment.save(path)
            log.info("deployed", rollup=deployment.rollup, bridge=deployment.bridge, token=deployment.token)
            if markets:
                queued = list_devnet_markets(w3, deployment, accounts[DEPLOYER].private_key)
                log.info("markets_queued", messages=queued, markets=[m.name for m in MARKETS])
        except BaseException:
            if proc is not None:
                proc.stop()
            raise
        return cls(workdir, url, deployment, path, accounts, proc)

    def start_nats(self, urls: Sequence[str] = (), size: int = 3) -> list[str]:
        """Start a `size`-node JetStream cluster for the sequencer set under the work directory
        (or use the existing one at `urls`); returns its URLs."""
        if urls:
            self.nats_urls = list(urls)
        else:
            self.nats = new_cluster(self.workdir / "nats", size)
            for index in range(size):
                self.nats.start_node(index)
            self.nats.wait_ready()
            self.nats_urls = self.nats.urls
        log.info("nats_started", urls=self.nats_urls)
        return self.nats_urls

    def start_set(self, size: int = 3, *, first_port: int = 0, **options: Any) -> list[Service]:
        """Start a sequencer set of `size` members on the set's NATS cluster (`start_nats` first);
        the first one started takes the lease. `options`: `start_sequencer`'s."""
        if not self.nats_urls:
            raise ValueError("start the set's NATS cluster first (start_nats)")
        timeout = options.pop("timeout", 90.0)
        members = []
        for i, (name, account) in enumerate(list(SET_ACCOUNTS.items())[:size]):  # all at once
            port = first_port + i if first_port else 0
            members.append(self.start_sequencer(name, account, port=port, wait=False, member=True, **options))
        return [self._wait_healthy(member, timeout) for member in members]

    def kill_nats_node(self, index: int | None = None) -> int:
        """kill -9 one node of the set's JetStream cluster (`start_nats` started it); by default
        one that leads neither the set's log nor its lease, whose loss costs the set no Raft
        election. Returns the node's index (for `restart_nats_node`)."""
        cluster = self._nats_cluster()
        if index is None:
            leaders = {cluster.stream_leader(stream) for stream in SET_STREAMS}
            index = next(i for i, node in enumerate(cluster.nodes) if node.alive and i not in leaders)
        cluster.kill9(index)
        log.info("nats_node_killed", node=cluster.nodes[index].name)
        return index

    def restart_nats_node(self, index: int, timeout: float = 30.0) -> None:
        """Start node `index` of the set's cluster again on its ports and store, and wait until it
        holds the set's log as far as the other nodes held it when it came back."""
        cluster = self._nats_cluster()
        other = next(i for i, node in enumerate(cluster.nodes) if node.alive and i != index)
        end = cluster.stream_last_seq(other, LOG_STREAM) or 0
        cluster.start_node(index)
        cluster.wait_replica(index, LOG_STREAM, end, timeout)
        log.info("nats_node_rejoined", node=cluster.nodes[index].name, log_end=end)

    def _nats_cluster(self) -> NatsCluster:
        if self.nats is None:
            raise ValueError("the set's NATS cluster was not started here (start_nats)")
        return self.nats

    def leader(self, timeout: float = 30.0) -> Service:
        """The member of the set that leads now (waits until one says so)."""
        found: list[Service] = []

        def leads() -> bool:
            for service in self.services.values():
                if not service.name.startswith("sequencer-") or not service.process.alive:
                    continue
                try:
                    facts = httpx.get(f"{service.url}/health", timeout=2.0).json()
                except (httpx.HTTPError, ValueError):
                    continue
                if (facts.get("cluster") or {}).get("role") == "leader":
                    found[:] = [service]
                    return True
            return False

        wait_until(leads, timeout, interval=0.05, what="a member of the set to lead")
        return found[0]

    def start_sequencer(
        self,
        name: str,
        account_index: int,
        *,
        port: int = 0,
        fault_tx: int = -1,
        fault_tx_type: str = "",
        batch_max_txs: int = 256,
        batch_interval_ms: int = 300,
        extra_args: Sequence[str] = (),
        timeout: float = 60.0,
        wait: bool = True,
        member: bool = False,
    ) -> Service:
        """Start a sequencer process and wait (unless not `wait`) until it is synced and healthy.
        With `fault_tx` (a transaction's position) or `fault_tx_type` (a type name, e.g. `fill`)
        it is the faulty sequencer of `devnet.faulty`, which lies about that transaction's root
        in its next batch; with `member`, a member of the set (on `start_nats`'s cluster);
        `extra_args`: more of its flags."""
        port = port or free_port()
        account = self.accounts[account_index]
        faulty = fault_tx >= 0 or bool(fault_tx_type)
        argv = self._argv("devnet.faulty" if faulty else "sequencer.main", account, port)
        argv += ["--db", str(self.workdir / f"{name}.sqlite")]
        argv += ["--batch-max-txs", str(batch_max_txs), "--batch-interval-ms", str(batch_interval_ms)]
        if fault_tx >= 0:
            argv += ["--fault-post-root-offset", str(fault_tx)]
        if fault_tx_type:
            argv += ["--fault-tx-type", fault_tx_type]
        if member:
            argv += ["--nats-url", ",".join(self.nats_urls)]
        return self._start_service(name, [*argv, *extra_args], port, account, timeout if wait else None)

    def start_watcher(
        self,
        name: str,
        account_index: int,
        *,
        port: int = 0,
        poll_ms: int = 250,
        extra_args: Sequence[str] = (),
        timeout: float = 60.0,
        wait: bool = True,
    ) -> Service:
        """Start a watcher process and wait until it is healthy (`extra_args`: more of its flags;
        `wait=False`: return at once, `wait_healthy` later)."""
        port = port or free_port()
        account = self.accounts[account_index]
        argv = [*self._argv("prover.main", account, port), "--poll-ms", str(poll_ms), *extra_args]
        return self._start_service(name, argv, port, account, timeout if wait else None)

    def start_oracle(
        self,
        name: str,
        sequencer: Service | Sequence[Service],
        *,
        port: int = 0,
        interval_ms: int = 2000,
        walk_bps: int = 20,
        source: str = "walk",
        timeout: float = 60.0,
    ) -> Service:
        """Start the devnet's price feed (threshold many committee members) on a sequencer, or on
        several members of the set (it moves on when one cannot serve), and wait until its first
        updates are acknowledged. `source` is `walk` (a seeded random walk
        from the devnet's start prices) or `file:PATH` (JSON lines, see `sequencer.oracle_feed`)."""
        port = port or free_port()
        argv = [sys.executable, "-m", "sequencer.oracle_feed", "--sequencer", _urls(sequencer)]
        argv += ["--deployment", str(self.deployment_path), "--port", str(port), "--source", source]
        argv += ["--interval-ms", str(interval_ms), "--walk-bps", str(walk_bps)]
        for key in committee_keys()[:COMMITTEE_THRESHOLD]:
            argv += ["--member-key", key.hex()]
        for market in MARKETS:
            argv += ["--market", f"{market.market_id}={market.start_price}"]
        return self._start_service(name, argv, port, self.accounts[DEPLOYER], timeout)

    def start_liquidator(
        self,
        name: str,
        sequencer: Service | Sequence[Service],
        account_index: int,
        *,
        port: int = 0,
        interval_ms: int = 500,
    ) -> Service:
        """Start a liquidation bot trading with dev account `account_index`'s key on a sequencer
        (or on several members of the set, as `start_oracle`)."""
        port = port or free_port()
        account = self.accounts[account_index]
        argv = [sys.executable, "-m", "sequencer.liquidator", "--sequencer", _urls(sequencer)]
        argv += ["--private-key", account.private_key, "--port", str(port), "--interval-ms", str(interval_ms)]
        return self._start_service(name, argv, port, account, 60.0)

    def _argv(self, module: str, account: DevAccount, port: int) -> list[str]:
        """The command line shared by every service: its module, the L1, the deployment, its key."""
        return [
            sys.executable,
            "-m",
            module,
            "--l1-url",
            self.l1_url,
            "--deployment",
            str(self.deployment_path),
            "--private-key",
            account.private_key,
            "--port",
            str(port),
        ]

    def _start_service(
        self, name: str, argv: list[str], port: int, account: DevAccount, timeout: float | None
    ) -> Service:
        """Spawn a service; wait until it is healthy unless `timeout` is None."""
        proc = spawn(argv, name, self.workdir / f"{name}.log", cwd=REPO_ROOT)
        service = Service(name, f"http://127.0.0.1:{port}", proc, account)
        self.services[name] = service
        return service if timeout is None else self._wait_healthy(service, timeout)

    def wait_healthy(self, name: str, timeout: float = 60.0) -> Service:
        """Wait until service `name` (started without waiting) is healthy."""
        return self._wait_healthy(self.services[name], timeout)

    def _wait_healthy(self, service: Service, timeout: float) -> Service:
        proc, url = service.process, service.url
        what = f"{service.name} to be healthy at {url}"
        wait_until(lambda: _healthy(proc, url), timeout, interval=0.1, what=what)
        log.info("service_started", name=service.name, url=url, pid=proc.pid, account=service.account.address)
        return service

    def respawn(self, name: str) -> Service:
        """Start a stopped (or killed) service again with the same arguments, port, database and
        log, without waiting for it."""
        old = self.services[name]
        proc = spawn(old.process.argv, name, old.process.log_path, cwd=REPO_ROOT)
        service = Service(name, old.url, proc, old.account)
        self.services[name] = service
        return service

    def stop_service(self, name: str, timeout: float = 10.0) -> int:
        """Stop service `name` by its own PID (SIGTERM, then SIGKILL after `timeout`); returns its
        exit code. `restart` starts it again."""
        code = self.services[name].process.stop(timeout)
        log.info("service_stopped", name=name, code=code)
        return code

    def restart(self, name: str, timeout: float = 60.0) -> Service:
        """`respawn` a service and wait until it is healthy."""
        return self._wait_healthy(self.respawn(name), timeout)

    # ---- stopping ----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every service, then the L1, each by its own PID."""
        for service in reversed(list(self.services.values())):
            service.process.stop()
        if self.nats is not None:
            self.nats.stop()
        if self.l1_process is not None:
            self.l1_process.stop()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _urls(sequencers: Service | Sequence[Service]) -> str:
    """The `--sequencer` value naming one sequencer or several (comma-separated)."""
    return ",".join(s.url for s in ([sequencers] if isinstance(sequencers, Service) else sequencers))


def _healthy(proc: ManagedProcess, url: str) -> bool:
    proc.check_alive()
    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_l1(workdir: Path, kind: str, chain_id: int, port: int = 0) -> tuple[ManagedProcess, str]:
    """Start the embedded node or anvil (on a free port when `port` is 0); returns it and its URL."""
    if kind == "embedded":
        argv = [sys.executable, "-m", "devnet.l1node", "--port", str(port), "--chain-id", str(chain_id)]
        proc = spawn(argv, "l1", workdir / "l1.log", cwd=REPO_ROOT)
        try:
            url = wait_for_listening(proc, 60)
        except BaseException:
            proc.stop()
            raise
    else:
        port = port or free_port()
        argv = [str(find_anvil()), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id)]
        argv += ["--mnemonic", DEV_MNEMONIC, "--accounts", str(DEV_ACCOUNT_COUNT), "--silent"]
        # mine each transaction at once, and an empty block every second so that time moves on
        # the L1 as it does on a live chain (challenge windows are measured in block time)
        argv += ["--block-time", "1", "--mixed-mining"]
        proc = spawn(argv, "anvil", workdir / "anvil.log", cwd=REPO_ROOT)
        url = f"http://127.0.0.1:{port}"
    try:
        wait_for_chain_id(proc, url, 60)
    except BaseException:
        proc.stop()
        raise
    log.info("l1_started", kind=kind, url=url, pid=proc.pid, chain_id=chain_id)
    return proc, url


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a JSON document (raises on a non-2xx status)."""
    response = httpx.get(url, timeout=timeout)
    response.raise_for_status()
    return response.json()


# ---- CLI ---------------------------------------------------------------------------------


def devnet_main(argv: list[str] | None = None) -> None:
    """`rollup devnet`: L1 + contracts + a set of three sequencers (or one or two on their own) + a
    watcher + the oracle feed until Ctrl-C;
    a service that dies is reported and the rest go on (`devnet.supervisor`).
    `rollup devnet restart NAME --workdir DIR` restarts one service of a running devnet."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["restart"]:
        restart_main(argv[1:])
        return
    parser = argparse.ArgumentParser(
        prog="rollup devnet",
        description="Run a whole network on this machine. "
        "`rollup devnet restart NAME --workdir DIR` restarts one service of a running devnet.",
    )
    parser.add_argument("--l1", default="embedded", help="embedded | anvil | an L1 JSON-RPC URL")
    parser.add_argument("--workdir", default="", help="where logs, databases and deployment.json go")
    parser.add_argument(
        "--sequencers",
        type=int,
        default=3,
        choices=(1, 2, 3),
        help="3: a sequencer set on a JetStream cluster (default); 1 or 2: sequencers on their own",
    )
    parser.add_argument("--nats-url", default="", help="the set's existing NATS cluster (comma-separated)")
    parser.add_argument("--window", type=int, default=20, help="challenge window in seconds")
    parser.add_argument("--l1-port", type=int, default=8545, help="0 picks a free port")
    parser.add_argument(
        "--sequencer-port", type=int, default=8600, help="first sequencer; the others get +1, +2"
    )
    parser.add_argument("--watcher-port", type=int, default=8700)
    parser.add_argument("--oracle-port", type=int, default=8800)
    args = parser.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="rollup-devnet-"))
    net = Network.start(
        workdir, l1=args.l1, params=DeployParams(challenge_window_seconds=args.window), l1_port=args.l1_port
    )
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    supervisor: Supervisor | None = None
    try:
        if args.sequencers == 3:
            net.start_nats([u for u in args.nats_url.split(",") if u])
            net.start_set(3, first_port=args.sequencer_port)
        else:
            net.start_sequencer("sequencer-a", SEQ_A, port=args.sequencer_port)
        if args.sequencers == 2:
            net.start_sequencer("sequencer-b", SEQ_B, port=args.sequencer_port and args.sequencer_port + 1)
        net.start_watcher("watcher", WATCHER_1, port=args.watcher_port)
        # a set's members all (the feed moves on when one cannot serve); else the first sequencer
        members = [s for n, s in net.services.items() if n.startswith("sequencer-")]
        net.start_oracle("oracle", members if args.sequencers == 3 else members[0], port=args.oracle_port)
        print(f"L1            {net.l1_url}  (chain id {net.deployment.chain_id})")
        print(f"deployment    {net.deployment_path}")
        for c in ("rollup", "bridge", "verifier", "token"):
            print(f"  {c:<11} {getattr(net.deployment, c)}")
        if net.nats_urls:
            print(f"nats          {','.join(net.nats_urls)}  (the set's log and lease)")
        for s in net.services.values():
            print(
                f"{s.name:<13} {s.url}  (pid {s.process.pid}, L1 account {s.account.address}, "
                f"log {s.process.log_path})"
            )
        if args.sequencers == 3:
            print(f"leader        {net.leader().name} (the others follow its log; any of them may take over)")
        print(
            "markets       "
            + ", ".join(f"{m.market_id} {m.name}" for m in MARKETS)
            + " (prices from the oracle feed)"
        )
        print("traders       dev accounts 5..9 of the test mnemonic hold ETH; the deployer (0) can mint dUSD")
        print("A service that exits is reported here and the rest keep running; restart one with")
        print(f"  {restart_command('NAME', workdir)}")
        print("Ctrl-C stops everything.", flush=True)
        supervisor = Supervisor(net, lambda line: print(line, flush=True))
        while not stop:
            supervisor.tick()
            time.sleep(0.2)
    finally:
        if supervisor is not None:
            supervisor.close()
        net.stop()
        print("stopped", flush=True)


def deploy_main(argv: list[str] | None = None) -> None:
    """`rollup deploy`: deploy the contracts to any L1 and write the deployment file."""
    parser = argparse.ArgumentParser(
        prog="rollup deploy", description="Deploy the rollup contracts to an L1."
    )
    parser.add_argument("--l1-url", default="http://127.0.0.1:8545")
    parser.add_argument("--key", required=True, help="hex private key of the deployer")
    parser.add_argument("--out", default="var/deployment.json")
    parser.add_argument("--window", type=int, default=DeployParams.challenge_window_seconds)
    parser.add_argument("--min-bond-wei", type=int, default=DeployParams.min_bond_wei)
    parser.add_argument("--reward-bps", type=int, default=DeployParams.challenger_reward_bps)
    parser.add_argument("--force-inclusion", type=int, default=DeployParams.force_inclusion_seconds)
    parser.add_argument("--max-l2-time-lag", type=int, default=DeployParams.max_l2_time_lag_seconds)
    parser.add_argument(
        "--escape-delay",
        type=int,
        default=0,
        help="seconds before a freeze (0: the window plus --force-inclusion)",
    )
    parser.add_argument("--exit-window", type=int, default=DeployParams.exit_window_seconds)
    parser.add_argument("--token", default=None, help="an existing ERC-20 to use as collateral")
    args = parser.parse_args(argv)
    w3 = Web3(Web3.HTTPProvider(args.l1_url, request_kwargs={"timeout": 60}))
    params = DeployParams(
        challenge_window_seconds=args.window,
        min_bond_wei=args.min_bond_wei,
        challenger_reward_bps=args.reward_bps,
        force_inclusion_seconds=args.force_inclusion,
        max_l2_time_lag_seconds=args.max_l2_time_lag,
        escape_delay_seconds=args.escape_delay,
        exit_window_seconds=args.exit_window,
        token_address=args.token,
    )
    deployment = deploy_all(w3, Sender.from_key(args.key), params)
    deployment.save(args.out)
    print(deployment.to_json())
