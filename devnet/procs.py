"""Process helpers shared by the devnet orchestrator and the end-to-end tests.

Every child runs in its own process group with stdout and stderr in a log file, and is stopped
by its own PID (SIGTERM, wait, then SIGKILL): never by name. Waiting is always on a condition
with a timeout (`wait_until`), never a bare sleep.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
LISTENING_RE = re.compile(r"Listening on (?:http://)?(\d+\.\d+\.\d+\.\d+):(\d+)")
"""The line both our L1 node and anvil print once their socket is bound."""
L1_START_TIMEOUT_S = 30.0


class ProcsError(Exception):
    """Root of the process helpers' errors."""


class WaitTimeout(ProcsError, TimeoutError):
    """A condition did not become true in time."""

    def __init__(self, what: str, timeout_s: float, last_error: BaseException | None = None) -> None:
        detail = f" (last error: {last_error!r})" if last_error is not None else ""
        super().__init__(f"timed out after {timeout_s:.1f}s waiting for {what}{detail}")
        self.what = what
        """What was awaited, in words."""
        self.timeout_s = timeout_s
        self.last_error = last_error
        """The last exception the predicate raised, if any."""


class ProcessExited(ProcsError):
    """A child exited while we were waiting for it to come up."""

    def __init__(self, name: str, returncode: int, log_tail: str) -> None:
        super().__init__(f"{name} exited with code {returncode}; log tail:\n{log_tail}")
        self.name = name
        self.returncode = returncode
        self.log_tail = log_tail


_PICK = random.SystemRandom()  # (never a seeded sequence another process shares)


def _ephemeral_low() -> int:
    """The first port of the range the OS hands out to outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, taken below the range of outgoing connections'
    ports, so that no client's connection takes it before the service binds it (another process
    picking ports may still take it)."""
    low = min(_ephemeral_low(), 60_000)
    for _ in range(200):
        port = _PICK.randrange(10_000, low) if low > 11_000 else _PICK.randrange(61_000, 65_000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `predicate` until it returns a truthy value, and return that value.

    Exceptions raised by the predicate count as "not yet" (the last one is reported on timeout).
    Raises `WaitTimeout` naming `what` after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except (ProcessExited, KeyboardInterrupt):
            raise
        except Exception as err:
            last_error = err
        else:
            if value:
                return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(what, timeout, last_error)
        time.sleep(min(interval, remaining))


@dataclass
class ManagedProcess:
    """A child process started by `spawn`, in its own process group."""

    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_start: int = 0
    """Size of the log when the process started: what it wrote begins there (a restarted
    service appends to its old log)."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The last `max_bytes` this process wrote to its log (never an earlier run's lines)."""
        try:
            with open(self.log_path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(self.log_start, size - max_bytes))
                data = log.read()
        except OSError:
            return ""
        return data.decode(errors="replace")

    def check_alive(self) -> None:
        """Raise ProcessExited if the child has died."""
        code = self.popen.poll()
        if code is not None:
            raise ProcessExited(self.name, code, self.log_tail())

    def _signal(self, sig: int) -> None:
        # the child leads its own group (start_new_session): signal the group, by its id,
        # so helpers it started go too; fall back to the PID alone.
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit code."""
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        return int(self.popen.returncode)

    def kill9(self) -> int:
        """SIGKILL now (a crash, for fault-injection tests) and reap; returns the exit code."""
        if self.popen.poll() is None:
            self._signal(signal.SIGKILL)
        return int(self.popen.wait(timeout=10.0))


def spawn(
    argv: Sequence[str],
    name: str,
    log_path: Path | str,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
) -> ManagedProcess:
    """Start `argv` in a new process group (session), stdout+stderr appended to `log_path`.

    `env` entries are added to the current environment.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    log: IO[bytes]
    with open(log_path, "ab") as log:
        start = log.seek(0, os.SEEK_END)
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(cwd) if cwd is not None else None,
            start_new_session=True,
        )
    return ManagedProcess(name=name, argv=list(argv), popen=popen, log_path=log_path, log_start=start)


@dataclass(frozen=True)
class L1Handle:
    """A running L1 node."""

    url: str
    """JSON-RPC endpoint, e.g. http://127.0.0.1:8545."""
    pid: int
    chain_id: int


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 2.0) -> Any:
    """One JSON-RPC call with the standard library (no web3); raises on an error response."""
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = orjson.loads(resp.read())
    if "error" in reply:
        raise ProcsError(f"{method} failed: {reply['error']}")
    return reply["result"]


def wait_for_listening(proc: ManagedProcess, timeout: float) -> str:
    """Wait for the "Listening on HOST:PORT" line in the child's log; returns http://HOST:PORT."""

    def found() -> str | None:
        proc.check_alive()
        match = LISTENING_RE.search(proc.log_tail(1_000_000))
        return f"http://{match.group(1)}:{match.group(2)}" if match else None

    return wait_until(found, timeout, interval=0.05, what=f"{proc.name} to print its listening address")


def wait_for_chain_id(proc: ManagedProcess, url: str, timeout: float) -> int:
    """Wait until the node answers eth_chainId; returns the chain id."""

    def answers() -> int | None:
        proc.check_alive()
        try:
            return int(rpc_call(url, "eth_chainId", timeout=1.0), 16)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    return wait_until(answers, timeout, interval=0.05, what=f"{proc.name} to answer eth_chainId at {url}")


def default_log_path(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-")) / f"{name}.log"


@contextlib.contextmanager
def run_l1node(
    port: int = 0,
    chain_id: int = 31337,
    log_path: Path | str | None = None,
    timeout: float = L1_START_TIMEOUT_S,
) -> Iterator[L1Handle]:
    """Start `python -m devnet.l1node` as a real process; yield once it answers; stop it by PID."""
    argv = [sys.executable, "-m", "devnet.l1node", "--port", str(port), "--chain-id", str(chain_id)]
    proc = spawn(argv, "l1node", log_path or default_log_path("l1node"), cwd=REPO_ROOT)
    try:
        url = wait_for_listening(proc, timeout)
        got = wait_for_chain_id(proc, url, timeout)
        if got != chain_id:
            raise ProcsError(f"l1node answers chain id {got}, expected {chain_id}")
        yield L1Handle(url=url, pid=proc.pid, chain_id=chain_id)
    finally:
        proc.stop()
