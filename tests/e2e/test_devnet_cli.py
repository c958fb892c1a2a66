"""`rollup devnet` brings the network up, prints its endpoints, and Ctrl-C stops every process."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

from devnet.procs import REPO_ROOT, spawn, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_devnet__sigint__starts_serves_and_stops_everything(tmp_path: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "devnet.cli",
        "devnet",
        "--workdir",
        str(tmp_path / "net"),
        "--sequencers",
        "1",
    ]
    argv += ["--l1-port", "0", "--sequencer-port", "0", "--watcher-port", "0"]
    proc = spawn(argv, "devnet", tmp_path / "devnet.log", cwd=REPO_ROOT)
    try:
        wait_until(lambda: proc.check_alive() or "Ctrl-C" in proc.log_tail(100_000), 120, what="devnet ready")
        out = proc.log_tail(100_000)
        urls = re.findall(r"^(?:sequencer-a|watcher)\s+(http://127\.0\.0\.1:\d+)", out, re.M)
        assert len(urls) == 2
        for url in urls:
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        proc.popen.send_signal(signal.SIGINT)
        assert proc.popen.wait(timeout=60) == 0
        assert "stopped" in proc.log_tail(100_000)
        for url in urls:
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{url}/health", timeout=2)
    finally:
        proc.stop()
