"""The node's L1 calls run in child processes, not in threads of the node's process.

The node calls the L1 from worker threads (`asyncio.to_thread`) so that the event loop does not
wait for the network. But web3's own work is Python (ABI encoding and decoding of a batch's
calldata, JSON, signing): in a thread it holds the interpreter lock, which the event loop gives
up at each call into SQLite or libsecp256k1 and must then wait for while that thread runs. In a
child process the same work runs beside the loop, on the other core; the node's thread only
waits on a pipe.

`L1Processes` has the methods of `Web3L1` that the node uses (`L1Reader` and `L1Writer`). Each
call is sent to a child process holding its own `Web3L1` and answered there: sends and the
clock (`append_batch`, `ensure_bonded`, `head_timestamp`) go to one child, reads (`head_block`,
`block_hash`, `events`) to another, so a batch waiting for its receipt does not hold the follower up. Each
child answers one call at a time, in order. A failure in the child comes back as `L1CallFailed`
with the error's type name, message and revert `reason` (what the node looks at); a child that
died is started again by the next call, and the call that found it gone raises `L1ChildGone`.

A child is `python -m sequencer.l1proc` (web3 and the bindings, none of the node's API), fed on
its stdin and answering on its stdout, each message one frame `length (u32 LE) || pickle`: first
its `L1Params` (so the key is never on a command line), then `(method, args)` calls, each
answered by `(ok, value)`. It exits when its stdin closes.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from contracts.deployment import Deployment
from contracts.keccak import use_pysha3
from contracts.logs import get_logger
from sequencer.stf.l1types import L1Event

if TYPE_CHECKING:
    from contracts.l1 import Mined

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


_LENGTH = struct.Struct("<I")


def _write_frame(out: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)) + data)
    out.flush()


def _read_frame(source: IO[bytes]) -> Any:
    """The next frame's value; raises EOFError when the other side is gone."""
    head = source.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("pipe closed")
    (length,) = _LENGTH.unpack(head)
    data = source.read(length)
    if len(data) < length:
        raise EOFError("pipe closed")
    return pickle.loads(data)


def serve() -> None:
    """The child: read its `L1Params`, then answer `(method, args)` calls until stdin closes."""
    use_pysha3()
    from contracts.l1 import Web3L1  # the child's own web3

    # the frames get a descriptor of their own; anything printed (a library's warning) goes to
    # stderr instead of corrupting them
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    source = sys.stdin.buffer
    # the parent ends a child by closing its stdin; a signal to the process group (the node's
    # own shutdown) must not kill a send in the middle
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        params: L1Params = _read_frame(source)
    except EOFError:
        return
    l1: Web3L1 | None = None
    while True:
        try:
            method, args = _read_frame(source)
        except EOFError:  # the parent closed the pipe or died
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
            _write_frame(out, answer)
        except (BrokenPipeError, OSError):
            return


class L1Child:
    """One child process serving L1 calls, one at a time (see the module docstring)."""

    def __init__(self, name: str, params: L1Params) -> None:
        self.name = name
        self.params = params
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self.starts = 0
        """Child processes started so far."""

    @property
    def pid(self) -> int | None:
        """The running child's PID."""
        return None if self._process is None else self._process.pid

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "sequencer.l1proc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert process.stdin is not None
        _write_frame(process.stdin, self.params)
        self._process = process
        self.starts += 1
        log.info("l1_child_started", child=self.name, pid=process.pid)
        return process

    def call(self, method: str, *args: Any) -> Any:
        """Run `Web3L1.<method>(*args)` in the child and return what it returns."""
        with self._lock:
            if self._stopped:
                raise L1ChildGone(f"{self.name} stopped")
            process = self._process
            if process is None or process.poll() is not None:
                self._discard()
                process = self._start()
            assert process.stdin is not None and process.stdout is not None
            try:
                _write_frame(process.stdin, (method, args))
                ok, value = _read_frame(process.stdout)
            except Exception as exc:  # gone, killed by `stop`, or a frame that does not decode
                code = process.poll()
                self._discard()
                log.warning("l1_child_gone", child=self.name, exitcode=code, error=repr(exc))
                raise L1ChildGone(f"{self.name} child exited (code {code}) during {method}") from exc
        if ok:
            return value
        raise value

    def _discard(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()  # a live child reads the end of its input and exits
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the child for good: a call under way fails with `L1ChildGone` (the child is
        killed, whatever it was doing), and so does any later one."""
        self._stopped = True
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()  # a call blocked on its answer reads the end of the pipe at once
        with self._lock:
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

    def block_hash(self, number: int) -> bytes | None:
        """The hash of block `number`, None if the L1 has none (`Web3L1.block_hash`)."""
        value = self.reader.call("block_hash", number)
        return None if value is None else bytes(value)

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
    ) -> Mined:
        """Append a batch (`Web3L1.append_batch`)."""
        mined: Mined = self.writer.call(
            "append_batch", list(txs), list(roots), prev_root, queue_start, queue_end, l2_time
        )
        return mined

    def ensure_bonded(self, bond_wei: int) -> None:
        """Register with `bond_wei` unless already bonded (`Web3L1.ensure_bonded`)."""
        self.writer.call("ensure_bonded", bond_wei)


if __name__ == "__main__":
    # run from the module under its own name, so that what the child pickles (`L1CallFailed`)
    # names `sequencer.l1proc`, not `__main__`
    from sequencer.l1proc import serve as serve_as_module

    serve_as_module()
