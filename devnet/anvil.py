"""anvil (Foundry's dev L1) as a second L1: find the npm-installed binary, run it, stop it.

anvil and our py-evm node (`devnet.l1node`) share the mnemonic, the chain id (31337) and the
block gas limit, so code and tests run against either.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterator
from pathlib import Path

from devnet.l1.chain import DEFAULT_CHAIN_ID, DEV_ACCOUNT_COUNT, DEV_MNEMONIC
from devnet.procs import (
    REPO_ROOT,
    L1Handle,
    ProcsError,
    default_log_path,
    spawn,
    wait_for_chain_id,
    wait_for_listening,
)

ANVIL_START_TIMEOUT_S = 15.0


class AnvilNotFound(ProcsError, FileNotFoundError):
    """The anvil binary is not installed under node_modules."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"anvil not found at {path}: run `make bootstrap` (npm ci installs @foundry-rs/anvil)"
        )
        self.path = path


def _platform_package() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    system = platform.system().lower()
    return f"anvil-{system}-{arch}"


def find_anvil(root: Path = REPO_ROOT) -> Path:
    """Path of the anvil binary npm installed under `root/node_modules`; AnvilNotFound if absent."""
    path = root / "node_modules" / "@foundry-rs" / _platform_package() / "bin" / "anvil"
    if not path.is_file():
        raise AnvilNotFound(path)
    return path


@contextlib.contextmanager
def run_anvil(
    port: int = 0,
    chain_id: int = DEFAULT_CHAIN_ID,
    block_time: float | None = None,
    log_path: Path | str | None = None,
    timeout: float = ANVIL_START_TIMEOUT_S,
) -> Iterator[L1Handle]:
    """Start anvil on 127.0.0.1 with the dev mnemonic; yield once it answers eth_chainId.

    `block_time=None` keeps automine (one block per transaction), as our node does. On exit
    anvil is stopped by its own PID (SIGTERM, then SIGKILL) and reaped.
    """
    argv = [
        str(find_anvil()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--mnemonic",
        DEV_MNEMONIC,
        "--accounts",
        str(DEV_ACCOUNT_COUNT),
        "--gas-limit",
        "30000000",
    ]
    if block_time is not None:
        argv += ["--block-time", str(block_time)]
    proc = spawn(argv, "anvil", log_path or default_log_path("anvil"))
    try:
        url = wait_for_listening(proc, timeout)
        got = wait_for_chain_id(proc, url, timeout)
        if got != chain_id:
            raise ProcsError(f"anvil answers chain id {got}, expected {chain_id}")
        yield L1Handle(url=url, pid=proc.pid, chain_id=chain_id)
    finally:
        proc.stop()
