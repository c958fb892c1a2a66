"""Signature recovery off the event loop's core: a worker process recovers EIP-712 signers.

Recovering a secp256k1 public key costs about as much as everything else the sequencer does for
an order, and it needs nothing but the digest and the signature; so the node hands the orders of a
request to a worker process (`python -m sequencer.sigpool`) as soon as the request arrives, goes
on serving other requests, and uses the recovered addresses when the request's admission round
comes. What arrives in one turn of the event loop goes to the worker as one frame (one write, one
read back), so single orders under load share the cost of the hand-over. A thread would not do:
every libsecp256k1 call through cffi gives the GIL back and must take it again, and a worker
thread waiting for the GIL of a busy event loop waits a whole switch interval each time.

The worker runs the very function admission would (`eip712.recover_digest`), so the outcome is
the same; if the worker is unavailable (not started, or gone) the node recovers on its own thread.
The worker ignores SIGINT and SIGTERM (a signal to the node's process group must not take it from
a node that is still serving): it ends when its stdin closes, which the node's `stop()` does and
the node's death, even by kill -9, does too.

Wire format, both ways over the worker's stdin/stdout, in order: a request is `count (u32 LE)`
then `count` items of `digest (32) || r (32) || s (32) || v (1)`; the answer is `count` items of
`1 || address (20)`, or 21 zero bytes where nothing valid is recovered.
"""

from __future__ import annotations

import asyncio
import signal
import struct
import sys
from collections import deque
from collections.abc import Sequence

from sequencer.logs import get_logger
from sequencer.stf.eip712 import recover_digest
from sequencer.stf.types import Signature

log = get_logger("sigpool")

_ITEM_IN = 97
_ITEM_OUT = 21
_COUNT = struct.Struct("<I")
_U256_LIMIT = 1 << 256


def _encode(items: Sequence[tuple[bytes, Signature]]) -> bytes | None:
    """The items of a frame, or None if one does not fit the wire format (recover it inline)."""
    parts = []
    for digest, sig in items:
        r, s, v = sig.r, sig.s, sig.v
        if len(digest) != 32 or not (0 <= r < _U256_LIMIT and 0 <= s < _U256_LIMIT and 0 <= v <= 0xFF):
            return None
        parts.append(digest + r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,)))
    return b"".join(parts)


def _decode(data: bytes, count: int) -> list[bytes | None]:
    out: list[bytes | None] = []
    for i in range(count):
        at = i * _ITEM_OUT
        out.append(data[at + 1 : at + _ITEM_OUT] if data[at] else None)
    return out


class SignatureWorker:
    """One worker process recovering signers for the node (see the module docstring)."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self._waiting: deque[list[tuple[asyncio.Future[list[bytes | None]], int]]] = deque()
        """Frames sent and not answered yet: each, its requests' futures and sizes, in order."""
        self._frame: list[bytes] = []
        """Items of the frame being gathered in this turn of the loop."""
        self._frame_futures: list[tuple[asyncio.Future[list[bytes | None]], int]] = []
        self._reader: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        """Signatures handed to the worker so far."""
        self.frames = 0
        """Frames written to the worker so far."""

    @property
    def alive(self) -> bool:
        """Whether requests can be sent (started on the running loop, not gone)."""
        return (
            self.process is not None
            and self.process.returncode is None
            and self._reader is not None
            and not self._reader.done()
            and self._loop is asyncio.get_running_loop()
        )

    async def start(self) -> None:
        """Start the worker process."""
        self._loop = asyncio.get_running_loop()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sequencer.sigpool",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read_answers())

    async def stop(self) -> None:
        """Stop the worker (its stdin closes, it exits)."""
        if self.process is None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self._reader is not None:
            self._reader.cancel()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
        self._fail(RuntimeError("signature worker stopped"))

    def recover(self, items: Sequence[tuple[bytes, Signature]]) -> asyncio.Future[list[bytes | None]] | None:
        """Send `(digest, signature)` items to the worker (with whatever else arrives in this turn
        of the loop); the future gives what `recover_digest` gives for each. None when the worker
        cannot take them (recover inline)."""
        if not items or not self.alive:
            return None
        encoded = _encode(items)
        if encoded is None:
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bytes | None]] = loop.create_future()
        if not self._frame_futures:
            loop.call_soon(self._send_frame)
        self._frame.append(encoded)
        self._frame_futures.append((future, len(items)))
        self.sent += len(items)
        return future

    def _send_frame(self) -> None:
        futures, self._frame_futures = self._frame_futures, []
        items, self._frame = self._frame, []
        if not self.alive:
            for future, _ in futures:
                if not future.done():
                    future.set_exception(RuntimeError("signature worker gone"))
            return
        assert self.process is not None and self.process.stdin is not None
        count = sum(n for _, n in futures)
        self._waiting.append(futures)
        self.process.stdin.write(_COUNT.pack(count) + b"".join(items))
        self.frames += 1

    async def _read_answers(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        try:
            while True:
                first = await stdout.readexactly(_ITEM_OUT)  # wait without knowing for whom
                futures = self._waiting.popleft()
                count = sum(n for _, n in futures)
                answers = _decode(first + await stdout.readexactly(_ITEM_OUT * (count - 1)), count)
                at = 0
                for future, n in futures:
                    if not future.done():
                        future.set_result(answers[at : at + n])
                    at += n
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            log.warning("signature_worker_gone", error=str(exc))
            self._fail(RuntimeError("signature worker gone"))

    def _fail(self, exc: Exception) -> None:
        while self._waiting:
            for future, _ in self._waiting.popleft():
                if not future.done():
                    future.set_exception(exc)


def serve() -> None:
    """The worker: answer frames from stdin on stdout until stdin closes."""
    # the node ends its worker by closing its stdin; a signal to the process group (the node's
    # own shutdown, a Ctrl-C) must not take the worker away while the node still serves
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    read, write = sys.stdin.buffer.read, sys.stdout.buffer.write
    flush = sys.stdout.buffer.flush
    from_bytes = int.from_bytes
    while True:
        head = read(4)
        if len(head) < 4:
            return
        (count,) = _COUNT.unpack(head)
        data = read(count * _ITEM_IN)
        if len(data) < count * _ITEM_IN:
            return
        out = bytearray()
        for i in range(count):
            at = i * _ITEM_IN
            signer = recover_digest(
                data[at : at + 32],
                from_bytes(data[at + 32 : at + 64], "big"),
                from_bytes(data[at + 64 : at + 96], "big"),
                data[at + 96],
            )
            out += b"\x00" * _ITEM_OUT if signer is None else b"\x01" + signer
        write(out)
        flush()


if __name__ == "__main__":
    serve()
