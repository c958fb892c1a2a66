"""The devnet's supervisor: `rollup devnet` keeps running while its services come and go.

`rollup devnet` calls `Supervisor.tick` a few times a second. A service that exits is reported
once (log event `service_exited` at level error, and a printed line naming it, its PID, its exit
status and the command that restarts it) and the others keep running. `rollup devnet restart
NAME --workdir DIR` asks the running devnet to restart one service; the devnet stops it by its PID
if it still runs, starts it again with its own arguments, port, database and log
(`Network.respawn`), and reports it once its /health answers 200, so the restarted service stays
one of the devnet's and Ctrl-C stops it with the rest.

The devnet and the restart command talk through files under the work directory:
- `devnet.json`: the devnet's PID and each service's URL, PID and log, rewritten when a PID
  changes and removed when the devnet stops;
- `control/NAME.restart`: a restart request, holding its id (written whole, by a rename); the
  devnet removes it when it takes it;
- `control/NAME.restarted`: the answer, `{"id", "ok", "pid", "url", "error"}`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from contracts.logs import get_logger
from devnet.procs import ProcsError, wait_until

if TYPE_CHECKING:  # the orchestrator runs the supervisor: only its types here
    from devnet.orchestrator import Network, Service

log = get_logger("devnet")

STATE_FILE = "devnet.json"
CONTROL_DIR = "control"
RESTART_TIMEOUT_S = 120.0
"""How long a restarted service has to answer /health with 200."""


def restart_command(name: str, workdir: Path) -> str:
    """The command line that restarts service `name` of the devnet running in `workdir`."""
    return f"rollup devnet restart {name} --workdir {shlex.quote(str(workdir))}"


def exit_status(code: int) -> str:
    """An exit status in words: `status 1`, or `status -9 (SIGKILL)` for a signal."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"status {code} ({signal.Signals(-code).name})"
    return f"status {code}"


def _write_json(path: Path, value: Any) -> None:
    """Write `path` whole: a reader sees the old file or the new one, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2))
    tmp.replace(path)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Restart:
    """A restart under way."""

    request_id: str
    deadline: float
    """`time.monotonic()` by which the service must be healthy."""


class Supervisor:
    """Watches a running network's processes and carries out restart requests (module docstring)."""

    def __init__(self, net: Network, out: Callable[[str], None]) -> None:
        self.net = net
        self.out = out
        """Prints one line for the operator."""
        self.control = net.workdir / CONTROL_DIR
        self.control.mkdir(parents=True, exist_ok=True)
        self.reported: set[int] = set()
        """PIDs whose exit was reported (or that a restart replaced)."""
        self.restarting: dict[str, Restart] = {}
        self.write_state()

    def write_state(self) -> None:
        """Write `devnet.json`: the devnet's PID, the L1's, and each service's URL, PID and log."""
        l1 = self.net.l1_process
        _write_json(
            self.net.workdir / STATE_FILE,
            {
                "pid": os.getpid(),
                "l1": {"url": self.net.l1_url, "pid": None if l1 is None else l1.pid},
                "services": {
                    s.name: {"url": s.url, "pid": s.process.pid, "log": str(s.process.log_path)}
                    for s in self.net.services.values()
                },
            },
        )

    def close(self) -> None:
        """The devnet stops: no restart can be asked of it any more."""
        (self.net.workdir / STATE_FILE).unlink(missing_ok=True)

    def tick(self) -> None:
        """Report what exited, take restart requests, and follow the restarts under way."""
        l1 = self.net.l1_process
        if l1 is not None and l1.returncode is not None and l1.pid not in self.reported:
            self.reported.add(l1.pid)
            log.error("l1_exited", pid=l1.pid, status=l1.returncode)
            self.out(
                f"l1 (pid {l1.pid}) exited with {exit_status(l1.returncode)}; it held the chain in "
                "memory and cannot be restarted: the services keep running without it (Ctrl-C stops them)"
            )
        for service in list(self.net.services.values()):
            if service.name not in self.restarting:
                self._watch(service)
        for request in sorted(self.control.glob("*.restart")):
            self._take(request)
        for name, restart in list(self.restarting.items()):
            self._follow(name, restart)

    def _watch(self, service: Service) -> None:
        code = service.process.returncode
        if code is None or service.process.pid in self.reported:
            return
        self.reported.add(service.process.pid)
        log.error("service_exited", name=service.name, pid=service.process.pid, status=code)
        self.out(
            f"{service.name} (pid {service.process.pid}) exited with {exit_status(code)}; the rest keep "
            f"running. Restart it with: {restart_command(service.name, self.net.workdir)}"
        )

    def _take(self, request: Path) -> None:
        name = request.name.removesuffix(".restart")
        request_id = request.read_text().strip()
        request.unlink(missing_ok=True)
        old = self.net.services.get(name)
        if old is None:
            known = ", ".join(self.net.services)
            self._answer(name, request_id, error=f"no service named {name!r} (there are: {known})")
            return
        if name in self.restarting:
            self._answer(name, request_id, error=f"{name} is already restarting")
            return
        if old.process.alive:
            old.process.stop()
            log.info("service_stopped", name=name, pid=old.process.pid, status=old.process.returncode)
        self.reported.add(old.process.pid)
        new = self.net.respawn(name)
        self.restarting[name] = Restart(request_id, time.monotonic() + RESTART_TIMEOUT_S)
        self.write_state()
        log.info("service_restarting", name=name, pid=new.process.pid, url=new.url)
        self.out(f"{name} restarting (pid {new.process.pid}, log {new.process.log_path})")

    def _follow(self, name: str, restart: Restart) -> None:
        service = self.net.services[name]
        code = service.process.returncode
        if code is not None:
            del self.restarting[name]
            self.reported.add(service.process.pid)
            error = f"{name} exited with {exit_status(code)} while starting; see {service.process.log_path}"
            log.error("service_restart_failed", name=name, pid=service.process.pid, status=code)
            self.out(error)
            self._answer(name, restart.request_id, error=error)
        elif _healthy(service.url):
            del self.restarting[name]
            log.info("service_restarted", name=name, pid=service.process.pid, url=service.url)
            self.out(f"{name} is back: {service.url} (pid {service.process.pid})")
            self._answer(name, restart.request_id, service=service)
        elif time.monotonic() > restart.deadline:
            del self.restarting[name]
            error = f"{name} (pid {service.process.pid}) not healthy after {RESTART_TIMEOUT_S:g} s"
            log.error("service_restart_failed", name=name, pid=service.process.pid, error=error)
            self.out(error)
            self._answer(name, restart.request_id, error=error)

    def _answer(self, name: str, request_id: str, *, service: Service | None = None, error: str = "") -> None:
        _write_json(
            self.control / f"{name}.restarted",
            {
                "id": request_id,
                "ok": service is not None,
                "pid": None if service is None else service.process.pid,
                "url": None if service is None else service.url,
                "error": error or None,
            },
        )


class RestartFailed(ProcsError):
    """A restart could not be asked, or the devnet could not carry it out."""


def request_restart(workdir: Path, name: str, timeout: float) -> dict[str, Any]:
    """Ask the devnet running in `workdir` to restart service `name` and wait for its answer
    (`Supervisor`); returns the answer of a restart that worked, raises `RestartFailed` otherwise."""
    try:
        state = json.loads((workdir / STATE_FILE).read_text())
    except FileNotFoundError:
        raise RestartFailed(f"no devnet runs in {workdir} (no {STATE_FILE})") from None
    pid = int(state["pid"])
    if not _running(pid):
        raise RestartFailed(f"the devnet of {workdir} (pid {pid}) is not running")
    if name not in state["services"]:
        raise RestartFailed(f"no service named {name!r} (there are: {', '.join(state['services'])})")
    control = workdir / CONTROL_DIR
    request_id = uuid.uuid4().hex
    tmp = control / f"{name}.restart.tmp"
    tmp.write_text(request_id)
    tmp.replace(control / f"{name}.restart")

    def answered() -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = json.loads((control / f"{name}.restarted").read_text())
        except (FileNotFoundError, ValueError):
            answer = {"id": None}
        if answer["id"] == request_id:
            return answer
        if not _running(pid):
            return {"ok": False, "error": f"the devnet (pid {pid}) stopped before it answered"}
        return None

    answer = wait_until(answered, timeout, interval=0.1, what=f"the devnet to restart {name}")
    if not answer["ok"]:
        raise RestartFailed(answer["error"])
    return answer


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def restart_main(argv: list[str]) -> None:
    """`rollup devnet restart NAME --workdir DIR`: restart one service of a running devnet."""
    parser = argparse.ArgumentParser(
        prog="rollup devnet restart",
        description="Restart one service of a running `rollup devnet` (its own arguments, port, "
        "database and log); the devnet keeps it with the rest.",
    )
    parser.add_argument("name", help="the service, as `rollup devnet` names it (e.g. sequencer-a)")
    parser.add_argument("--workdir", required=True, help="the running devnet's work directory")
    parser.add_argument("--timeout", type=float, default=RESTART_TIMEOUT_S + 10, help="seconds to wait")
    args = parser.parse_args(argv)
    try:
        answer = request_restart(Path(args.workdir), args.name, args.timeout)
    except ProcsError as exc:
        print(f"rollup devnet restart: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{args.name} restarted: {answer['url']} (pid {answer['pid']})")
