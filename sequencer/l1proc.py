"""The node's L1 calls run in child processes, not in threads of the node's process.

The node calls the L1 from worker threads (`asyncio.to_thread`) so that the event loop does not
wait for the network. But web3's own work is Python (ABI encoding and decoding of a batch's
calldata, JSON, signing): in a thread it holds the GIL, and the event loop gives up the GIL each
time it calls into SQLite or libsecp256k1, then waits for it again, up to the interpreter's
switch interval (5 ms) per call while that thread runs. Under load that made single requests
wait tens of milliseconds in a commit or a receipt signature. In a child process the same work
runs beside the loop, on the other core; the node's thread only waits on a pipe.

`L1Processes` has the methods of `Web3L1` that the node uses (`L1Reader` and `L1Writer`). Each
call is sent to a child process holding its own `Web3L1` and answered there: sends and the
clock (`append_batch`, `ensure_bonded`, `head_timestamp`) go to one child, reads (`head_block`,
`events`) to another, so a batch waiting for its receipt does not hold the follower up. Each
child answers one call at a time, in order. A failure in the child comes back as `L1CallFailed`
with the error's type name, message and revert `reason` (what the node looks at); a child that
died is started again by the next call, and the call that found it gone raises `L1ChildGone`.
"""

from __future__ import annotations

import multiprocessing
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from devnet.deploy import Deployment
from sequencer.l1types import L1Event
from sequencer.logs import get_logger

log = get_logger("l1proc")

STOP_TIMEOUT_S = 5.0


class L1CallFailed(Exception):
    """An L1 call raised in the child: its type name, message and revert reason (if any)."""

    def __init__(self, kind: str, message: str, reason: str | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        """Type name of the child's exception (e.g. "TransactionReverted")."""
        self.message = message
        self.reason = reason
        """The contract's revert string, as `TransactionReverted.reason`."""

    def __reduce__(self) -> tuple[type[L1CallFailed], tuple[str, str, str | None]]:
        return (L1CallFailed, (self.kind, self.message, self.reason))


class L1ChildGone(Exception):
    """The child process serving L1 calls exited (the next call starts a new one)."""


@dataclass(frozen=True)
class L1Params:
    """What a child needs to build its `Web3L1`."""

    url: str
    deployment: Deployment
    private_key: str
    confirmations: int
    timeout: float = 30.0


def _serve(conn: Connection, params: L1Params) -> None:
    """The child: answer `(method, args)` calls on `conn` until the parent closes it."""
    from sequencer.l1 import Web3L1  # the child's own web3

    l1: Web3L1 | None = None
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe or died
            return
        try:
            if l1 is None:  # built on first use, and again after a failure to connect
                l1 = Web3L1(
                    params.url,
                    params.deployment,
                    private_key=params.private_key,
                    timeout=params.timeout,
                    confirmations=params.confirmations,
                )
            answer: tuple[bool, Any] = (True, getattr(l1, method)(*args))
        except Exception as exc:
            reason = getattr(exc, "reason", None)
            failed = L1CallFailed(type(exc).__name__, str(exc), reason if isinstance(reason, str) else None)
            answer = (False, failed)
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return


class L1Child:
    """One child process serving L1 calls, one at a time (see the module docstring)."""

    def __init__(self, name: str, params: L1Params) -> None:
        self.name = name
        self.params = params
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded process
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self._stopped = False
        self.starts = 0
        """Child processes started so far."""

    @property
    def pid(self) -> int | None:
        """The running child's PID."""
        return None if self._process is None else int(self._process.pid)

    def _start(self) -> Connection:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(child, self.params), name=f"rollup-{self.name}", daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self.starts += 1
        log.info("l1_child_started", child=self.name, pid=process.pid)
        return parent

    def call(self, method: str, *args: Any) -> Any:
        """Run `Web3L1.<method>(*args)` in the child and return what it returns."""
        with self._lock:
            if self._stopped:
                raise L1ChildGone(f"{self.name} stopped")
            conn = self._conn
            if conn is None or not self._process.is_alive():
                self._discard()
                conn = self._start()
            try:
                conn.send((method, args))
                ok, value = conn.recv()
            except (EOFError, OSError) as exc:
                code = self._process.exitcode
                self._discard()
                log.warning("l1_child_gone", child=self.name, exitcode=code)
                raise L1ChildGone(f"{self.name} child exited (code {code}) during {method}") from exc
        if ok:
            return value
        raise value

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join(STOP_TIMEOUT_S)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(STOP_TIMEOUT_S)
        self._process = self._conn = None

    def stop(self) -> None:
        """Stop the child for good (a call under way, and any later one, fails with
        `L1ChildGone`)."""
        self._stopped = True
        if self._conn is not None:
            self._conn.close()  # the child's recv ends: it exits by itself
        if self._process is not None:
            self._process.join(STOP_TIMEOUT_S)
        self._discard()


class L1Processes:
    """The node's `L1Reader` and `L1Writer`, served by two children (see the module docstring)."""

    def __init__(self, params: L1Params, address: bytes) -> None:
        self.address = address
        """The sequencer's L1 address."""
        self.writer = L1Child("l1-writer", params)
        self.reader = L1Child("l1-reader", params)

    def stop(self) -> None:
        """Stop both children."""
        self.writer.stop()
        self.reader.stop()

    # ---- L1Reader ----------------------------------------------------------------------

    def head_block(self) -> int:
        """The latest L1 block with enough confirmations (`Web3L1.head_block`)."""
        return int(self.reader.call("head_block"))

    def events(self, from_block: int, to_block: int) -> list[L1Event]:
        """Every rollup event in the inclusive range, in L1 order (`Web3L1.events`)."""
        return list(self.reader.call("events", from_block, to_block))

    # ---- L1Writer ----------------------------------------------------------------------

    def head_timestamp(self) -> int:
        """Timestamp of the latest L1 block (`Web3L1.head_timestamp`)."""
        return int(self.writer.call("head_timestamp"))

    def append_batch(
        self,
        txs: list[bytes],
        roots: list[bytes],
        prev_root: bytes,
        queue_start: int,
        queue_end: int,
        l2_time: int,
    ) -> bytes:
        """Append a batch (`Web3L1.append_batch`); returns the L1 tx hash."""
        return bytes(
            self.writer.call(
                "append_batch", list(txs), list(roots), prev_root, queue_start, queue_end, l2_time
            )
        )

    def ensure_bonded(self, bond_wei: int) -> None:
        """Register with `bond_wei` unless already bonded (`Web3L1.ensure_bonded`)."""
        self.writer.call("ensure_bonded", bond_wei)
