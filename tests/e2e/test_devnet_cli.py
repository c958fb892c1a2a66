"""`rollup devnet` brings the network up, prints its endpoints, keeps going when one service dies
and restarts it on request, and Ctrl-C stops every process."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from web3 import Web3

from contracts.deployment import Deployment
from devnet.faucet import fund_traders
from devnet.l1.chain import dev_accounts
from devnet.orchestrator import FIRST_TRADER
from devnet.procs import REPO_ROOT, spawn, wait_until
from sequencer.client import TraderClient
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.types import ChainConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def test_devnet__sigint__starts_serves_and_stops_everything(tmp_path: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "devnet.cli",
        "devnet",
        "--workdir",
        str(tmp_path / "net"),
    ]  # the default network: a set of three sequencers on a JetStream cluster
    argv += ["--l1-port", "0", "--sequencer-port", "0", "--watcher-port", "0"]
    proc = spawn(argv, "devnet", tmp_path / "devnet.log", cwd=REPO_ROOT)
    try:
        wait_until(lambda: proc.check_alive() or "Ctrl-C" in proc.log_tail(100_000), 180, what="devnet ready")
        out = proc.log_tail(100_000)
        urls = re.findall(r"^(?:sequencer-[acd]|watcher)\s+(http://127\.0\.0\.1:\d+)", out, re.M)
        assert len(urls) == 4
        assert re.search(r"^nats\s+nats://127\.0\.0\.1:\d+", out, re.M)
        leader = re.search(r"^leader\s+(sequencer-[acd])", out, re.M)
        assert leader is not None
        roles = {}
        for url in urls:
            health = httpx.get(f"{url}/health", timeout=5)
            assert health.status_code == 200
            if "cluster" in health.json():
                roles[health.json()["cluster"]["name"]] = health.json()["cluster"]["role"]
        assert sorted(roles.values()) == ["follower", "follower", "leader"]
        proc.popen.send_signal(signal.SIGINT)
        assert proc.popen.wait(timeout=60) == 0
        assert "stopped" in proc.log_tail(100_000)
        for url in urls:
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{url}/health", timeout=2)
    finally:
        proc.stop()


def test_devnet__one_service_killed__reported_the_rest_go_on_and_the_restart_command_brings_it_back(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "net"
    argv = [sys.executable, "-m", "devnet.cli", "devnet", "--workdir", str(workdir), "--sequencers", "2"]
    argv += ["--l1-port", "0", "--sequencer-port", "0", "--watcher-port", "0", "--oracle-port", "0"]
    proc = spawn(argv, "devnet", tmp_path / "devnet.log", cwd=REPO_ROOT)
    try:
        wait_until(lambda: proc.check_alive() or "Ctrl-C" in proc.log_tail(100_000), 240, what="devnet ready")
        services = json.loads((workdir / "devnet.json").read_text())["services"]
        assert set(services) == {"sequencer-a", "sequencer-b", "watcher", "oracle"}
        victim = services["sequencer-b"]
        config = ChainConfig(*_chain(services["sequencer-b"]["url"]))
        key = bytes.fromhex(dev_accounts(10)[FIRST_TRADER].private_key[2:])
        deployment = Deployment.load(workdir / "deployment.json")
        w3 = Web3(Web3.HTTPProvider(json.loads((workdir / "devnet.json").read_text())["l1"]["url"]))
        fund_traders(w3, deployment, dev_accounts(1)[0].private_key, ["0x" + key.hex()], 10**9)
        trader = TraderClient(victim["url"], key, config, timeout=10.0)
        wait_until(lambda: trader.account()["collateral"] != "0", 60, what="the deposit on sequencer-b")
        ack = trader.submit(sign_transfer(key, b"\x07" * 20, 1, trader.next_nonce(), config))
        trader.close()

        os.kill(victim["pid"], signal.SIGKILL)
        line = f"sequencer-b (pid {victim['pid']}) exited with status -9 (SIGKILL)"
        wait_until(lambda: line in proc.log_tail(100_000), 30, what="the devnet to report the kill")
        out = proc.log_tail(100_000)
        command = re.search(r"Restart it with: (rollup devnet restart sequencer-b --workdir \S+)", out)
        assert command is not None and proc.alive
        for name in ("sequencer-a", "watcher", "oracle"):
            assert httpx.get(f"{services[name]['url']}/health", timeout=5).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{victim['url']}/health", timeout=2)

        restart = [sys.executable, "-m", "devnet.cli", *shlex.split(command.group(1))[1:]]
        done = subprocess.run(restart, cwd=REPO_ROOT, capture_output=True, text=True, timeout=200)
        assert done.returncode == 0, done.stderr
        assert f"sequencer-b restarted: {victim['url']}" in done.stdout
        back = json.loads((workdir / "devnet.json").read_text())["services"]["sequencer-b"]
        assert back["pid"] != victim["pid"] and back["url"] == victim["url"]
        assert httpx.get(f"{victim['url']}/health", timeout=5).status_code == 200
        # its own database: the transfer it acknowledged before the kill is still known to it
        known = httpx.get(f"{victim['url']}/v1/transactions/{ack.hash}", timeout=5)
        assert known.status_code == 200 and known.json()["status"] in {"pending", "batched"}
        assert "sequencer-b is back" in proc.log_tail(100_000)

        proc.popen.send_signal(signal.SIGINT)
        assert proc.popen.wait(timeout=60) == 0
        for service in services.values():
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{service['url']}/health", timeout=2)
    finally:
        proc.stop()


def _chain(url: str) -> tuple[int, bytes]:
    status = httpx.get(f"{url}/v1/status", timeout=5).json()
    return int(status["chain_id"]), bytes.fromhex(status["rollup"][2:])
