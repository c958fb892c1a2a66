"""Signature recovery off the event loop's core: a worker process computes the EIP-712 digests
of orders and recovers their signers.

Recovering a secp256k1 public key costs about as much as everything else the sequencer does for
an order, and it needs nothing but the order and its signature; so the node hands the orders of a
request to a worker process (`python -m sequencer.sigpool`) as soon as the request arrives, goes
on serving other requests, and uses the digests and recovered addresses when the request's
admission round comes. The digest (~5 us of hashing per order) is computed there too: the round
needs it only with the signer. What arrives in one turn of the event loop goes to the worker as
one frame (one write, one read back), so single orders under load share the cost of the
hand-over. A thread would not do: every libsecp256k1 call through cffi gives the GIL back and
must take it again, and a worker thread waiting for the GIL of a busy event loop waits a whole
switch interval each time.

The worker runs the very functions admission would (`eip712.order_digest`, `recover_digest`) on
the order decoded from its exact encoding, so the outcome is the same; if the worker is
unavailable (not started, or gone) the node computes both on its own thread.
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
import sys
from collections import deque
from collections.abc import Sequence

from sequencer.logs import get_logger
from sequencer.stf.codec import decode_order, encode_signed_order
from sequencer.stf.eip712 import order_digest, recover_digest
from sequencer.stf.errors import RollupError
from sequencer.stf.types import ChainConfig, SignedOrder

log = get_logger("sigpool")

_ITEM_IN = 121
_ITEM_OUT = 53
_COUNT = struct.Struct("<I")

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


class SignatureWorker:
    """One worker process recovering signers for the node (see the module docstring)."""

    def __init__(self, config: ChainConfig) -> None:
        self.config = config
        """The EIP-712 domain the worker computes digests in."""
        self.process: asyncio.subprocess.Process | None = None
        self._waiting: deque[list[tuple[asyncio.Future[Recovered], int]]] = deque()
        """Frames sent and not answered yet: each, its requests' futures and sizes, in order."""
        self._frame: list[bytes] = []
        """Items of the frame being gathered in this turn of the loop."""
        self._frame_futures: list[tuple[asyncio.Future[Recovered], int]] = []
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
            str(self.config.chain_id),
            self.config.rollup.hex(),
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

    def recover(self, orders: Sequence[SignedOrder]) -> asyncio.Future[Recovered] | None:
        """Send signed orders to the worker (with whatever else arrives in this turn of the loop);
        the future gives each one's digest and what `recover_sig` gives for it. None when the
        worker cannot take them (do it inline)."""
        if not orders or not self.alive:
            return None
        encoded = _encode(orders)
        if encoded is None:
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Recovered] = loop.create_future()
        if not self._frame_futures:
            loop.call_soon(self._send_frame)
        self._frame.append(encoded)
        self._frame_futures.append((future, len(orders)))
        self.sent += len(orders)
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


def serve(config: ChainConfig) -> None:
    """The worker: answer frames from stdin on stdout until stdin closes."""
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
