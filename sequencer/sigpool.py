"""Signature recovery off the event loop's core: a worker process computes the EIP-712 digests
of orders and recovers their signers.

Recovering a secp256k1 public key costs about as much as everything else the sequencer does for
an order, and it needs nothing but the order and its signature; so the node hands the orders of a
request to a worker process (`python -m sequencer.sigpool`) as soon as the request arrives, goes
on serving other requests, and uses the digests and recovered addresses when the request's
admission round comes. The digest is computed there too: the round needs it only with the
signer. A thread would not do: every libsecp256k1 call through cffi gives the GIL back and must
take it again, and a worker thread waiting for the GIL of a busy event loop waits a whole switch
interval each time.

The hand-over is built for latency: each request is written to the worker at once (not gathered
until a later turn of the loop), and the worker's answers are parsed in the loop's I/O callback
the moment they arrive, where `on_answers` lets the node run the admission round that waited for
them in that same turn. Under load each turn of a busy loop is long, and each hop to a later turn
adds one to the answer's wait; a pipe write per request costs far less.

The worker runs the very functions admission would (`eip712.order_digest`, `recover_digest`) on
the order decoded from its exact encoding, so the outcome is the same; if the worker is
unavailable (not started, or gone) the node computes both on its own thread, and a worker that
died is replaced in the background by the next request that finds it gone (at most once a
second).

The worker ignores SIGINT and SIGTERM (a signal to the node's process group must not take it from
a node that is still serving): it ends when its stdin closes, which the node's `stop()` does and
the node's death, even by kill -9, does too.

Wire format, both ways over the worker's stdin/stdout, in order: a request is `count (u32 LE)`
then `count` signed orders as `codec.encode_signed_order` gives them (order (56) || r (32) || s (32)
|| v (1)); the answer is `count` items of `digest (32) || 1 || address (20)`, or the digest and 21
zero bytes where nothing valid is recovered. The worker is started with the EIP-712 domain (chain
id, rollup address) on its command line.
"""

from __future__ import annotations

import asyncio
import signal
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import cast

from contracts.keccak import use_pysha3
from contracts.logs import get_logger
from sequencer.stf.codec import decode_order, encode_signed_order
from sequencer.stf.eip712 import order_digest, recover_digest
from sequencer.stf.errors import RollupError
from sequencer.stf.types import ChainConfig, SignedOrder

log = get_logger("sigpool")

_ITEM_IN = 121
_ITEM_OUT = 53
_COUNT = struct.Struct("<I")
RESTART_INTERVAL_S = 1.0
"""A dead worker is replaced at most this often (a worker that dies at once does not loop)."""

Recovered = list[tuple[bytes, bytes | None]]
"""Per order: its digest (`order_digest`) and the address its signature recovers to (None if
none)."""


def _encode(orders: Sequence[SignedOrder]) -> bytes | None:
    """The items of a frame, or None if one does not fit the wire format (done inline, where the
    order is refused for it)."""
    try:
        return b"".join([encode_signed_order(signed) for signed in orders])
    except RollupError:
        return None


def _decode(data: bytes, count: int) -> Recovered:
    out: Recovered = []
    for i in range(count):
        at = i * _ITEM_OUT
        out.append((data[at : at + 32], data[at + 33 : at + _ITEM_OUT] if data[at + 32] else None))
    return out


def answer(data: bytes, count: int, config: ChainConfig) -> bytes:
    """The worker's answer to a frame's `count` items (module docstring)."""
    from_bytes = int.from_bytes
    out = bytearray()
    for i in range(count):
        at = i * _ITEM_IN
        digest = order_digest(decode_order(data, at), config)
        signer = recover_digest(
            digest,
            from_bytes(data[at + 56 : at + 88], "big"),
            from_bytes(data[at + 88 : at + 120], "big"),
            data[at + 120],
        )
        out += digest
        out += b"\x00" * 21 if signer is None else b"\x01" + signer
    return bytes(out)


class _Child(asyncio.SubprocessProtocol):
    """The worker process as the loop sees it: its answers parsed the moment its stdout has them
    (in the loop's I/O callback, not in a task woken one turn later), its exit awaited."""

    def __init__(self, owner: SignatureWorker) -> None:
        self.owner = owner
        self.transport: asyncio.SubprocessTransport | None = None
        self.stdin: asyncio.WriteTransport | None = None
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.closed = False
        """stdout closed or the process exited: nothing more will be answered."""

    @property
    def pid(self) -> int:
        """The worker's process id."""
        assert self.transport is not None
        return self.transport.get_pid()

    @property
    def returncode(self) -> int | None:
        """Its exit status, None while it runs."""
        return None if self.transport is None else self.transport.get_returncode()

    async def wait(self) -> int:
        """Wait for it to exit; its exit status."""
        return await asyncio.shield(self.exited)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have these methods without being subclasses of asyncio's
        self.transport = cast(asyncio.SubprocessTransport, transport)
        self.stdin = cast(asyncio.WriteTransport, self.transport.get_pipe_transport(0))

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1 and not self.closed and self.owner.process is self:  # (not a replaced one)
            self.buffer += data
            self.owner._answered(self.buffer)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._gone("its stdout closed")

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(self.returncode or 0)
        self._gone("it exited")

    def _gone(self, why: str) -> None:
        if not self.closed:
            self.closed = True
            self.owner._gone(why)


class SignatureWorker:
    """One worker process recovering signers for the node (see the module docstring)."""

    def __init__(self, config: ChainConfig, on_answers: Callable[[], None] | None = None) -> None:
        self.config = config
        """The EIP-712 domain the worker computes digests in."""
        self.on_answers = on_answers
        """Called (on the loop, in its I/O callback) each time answers arrived and their futures
        were resolved: what waits for them can go on in this turn of the loop."""
        self.process: _Child | None = None
        self._waiting: deque[tuple[asyncio.Future[Recovered], int]] = deque()
        """Requests sent and not answered yet: each one's future and its number of orders, in
        order."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        """Signatures handed to the worker so far."""
        self.frames = 0
        """Frames written to the worker so far."""
        self.starts = 0
        """Times a worker process was started (the first, then each one that replaced a dead one)."""
        self._started_at = 0.0
        self._stopped = False
        self._restarting: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        """Whether requests can be sent (started on the running loop, not gone)."""
        process = self.process
        return (
            process is not None
            and not process.closed
            and process.stdin is not None
            and not process.stdin.is_closing()
            and self._loop is asyncio.get_running_loop()
        )

    async def start(self) -> None:
        """Start the worker process."""
        self._stopped = False
        await self._spawn()

    async def _spawn(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._started_at = time.monotonic()
        self.starts += 1
        _, self.process = await loop.subprocess_exec(
            lambda: _Child(self),
            sys.executable,
            "-m",
            "sequencer.sigpool",
            str(self.config.chain_id),
            self.config.rollup.hex(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
        )

    async def stop(self) -> None:
        """Stop the worker (its stdin closes, it exits)."""
        self._stopped = True
        restarting, self._restarting = self._restarting, None
        if restarting is not None:
            restarting.cancel()
            await asyncio.gather(restarting, return_exceptions=True)
        process = self.process
        if process is None:
            return
        await _end(process)
        self._gone("stopped")

    def recover(self, orders: Sequence[SignedOrder]) -> asyncio.Future[Recovered] | None:
        """Send signed orders to the worker, one frame written at once; the future gives each
        one's digest and what `recover_sig` gives for it. None when the worker cannot take them
        (do it inline)."""
        if not orders:
            return None
        if not self.alive:
            self._replace_dead()
            return None
        encoded = _encode(orders)
        if encoded is None:
            return None
        assert self.process is not None and self.process.stdin is not None and self._loop is not None
        self.process.stdin.write(_COUNT.pack(len(orders)) + encoded)  # (raises: nothing queued)
        future: asyncio.Future[Recovered] = self._loop.create_future()
        self._waiting.append((future, len(orders)))
        self.frames += 1
        self.sent += len(orders)
        return future

    def _replace_dead(self) -> None:
        """Start a new worker in the background if this one died (not stopped), at most once per
        `RESTART_INTERVAL_S`; meanwhile the node computes inline."""
        process, loop = self.process, self._loop
        if self._stopped or process is None or not process.closed or self._restarting is not None:
            return
        if loop is not asyncio.get_running_loop() or time.monotonic() - self._started_at < RESTART_INTERVAL_S:
            return
        log.warning("signature_worker_restarting", returncode=process.returncode)
        if process.transport is not None:
            process.transport.close()

        async def restart() -> None:
            try:
                await self._spawn()
                if self._stopped and self.process is not None:  # stopped meanwhile
                    await _end(self.process)
            except OSError as exc:
                log.error("signature_worker_restart_failed", error=repr(exc))
            finally:
                self._restarting = None

        self._restarting = loop.create_task(restart())

    def _answered(self, buffer: bytearray) -> None:
        """Resolve every request whose whole answer is in `buffer` (taken out of it)."""
        at = 0
        waiting = self._waiting
        while waiting and len(buffer) - at >= waiting[0][1] * _ITEM_OUT:
            future, count = waiting.popleft()
            end = at + count * _ITEM_OUT
            if not future.done():
                future.set_result(_decode(bytes(buffer[at:end]), count))
            at = end
        if not at:
            return
        del buffer[:at]
        if self.on_answers is not None:
            try:
                self.on_answers()
            except Exception as exc:  # it must not take the worker's pipe down with it
                log.error("signature_answers_callback_failed", error=repr(exc))

    def _gone(self, why: str) -> None:
        if self._waiting:
            log.warning("signature_worker_gone", why=why, unanswered=len(self._waiting))
        exc = RuntimeError(f"signature worker gone: {why}")
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(exc)
        if self.on_answers is not None:
            self.on_answers()  # the rounds waiting for it compute on their own


async def _end(process: _Child) -> None:
    """Close its stdin (it exits), wait for it (killed after 5 s), release its transport."""
    if process.stdin is not None:
        process.stdin.close()
    try:
        await asyncio.wait_for(process.wait(), 5)
    except TimeoutError:
        assert process.transport is not None
        process.transport.kill()
    process.closed = True
    if process.transport is not None:
        process.transport.close()


def serve(config: ChainConfig) -> None:
    """The worker: answer frames from stdin on stdout until stdin closes."""
    use_pysha3()
    # the node ends its worker by closing its stdin; a signal to the process group (the node's
    # own shutdown, a Ctrl-C) must not take the worker away while the node still serves
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    read, write = sys.stdin.buffer.read, sys.stdout.buffer.write
    flush = sys.stdout.buffer.flush
    while True:
        head = read(4)
        if len(head) < 4:
            return
        (count,) = _COUNT.unpack(head)
        data = read(count * _ITEM_IN)
        if len(data) < count * _ITEM_IN:
            return
        write(answer(data, count, config))
        flush()


if __name__ == "__main__":
    serve(ChainConfig(chain_id=int(sys.argv[1]), rollup=bytes.fromhex(sys.argv[2])))
