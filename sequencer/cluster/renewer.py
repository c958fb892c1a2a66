"""The lease renewed from a thread of its own, so that a long turn of the member's event loop does
not cost it the lease, while a wedged one still does.

The member's loop takes the lease (`Lease.try_acquire`) and reads it (`Lease.held`, a local
deadline); a `Renewer` renews it on its own thread, event loop and NATS connection every
`every_s` while the member says it may (`active`) and its loop has turned (`beat`) within
`max_stall_s`. A leader busy for a second or two on a loaded machine keeps the lease; one whose
loop has not turned for `max_stall_s` (stuck, or starved for that long) stops being renewed and
loses the lease at its deadline, as a dead one does, so the set moves on. A paused process
(SIGSTOP) pauses this thread too: the deadline rule of `Lease` holds unchanged.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import nats.errors
from nats.js.kv import KeyValue

from contracts.logs import get_logger
from sequencer.cluster.connect import connect
from sequencer.cluster.errors import ClusterUnavailable
from sequencer.cluster.lease import DEFAULT_BUCKET, Lease

log = get_logger("cluster")

MAX_STALL_S = 5.0
"""Longest time the member's loop may go without turning before the lease is no longer renewed."""


class Renewer:
    """Renews `lease` from its own thread (see the module docstring)."""

    def __init__(
        self,
        lease: Lease,
        urls: Sequence[str],
        *,
        bucket: str = DEFAULT_BUCKET,
        every_s: float | None = None,
        max_stall_s: float = MAX_STALL_S,
    ) -> None:
        self.lease = lease
        self.urls = list(urls)
        self.bucket = bucket
        self.every_s = lease.ttl / 5 if every_s is None else every_s
        self.max_stall_s = max_stall_s
        self.active = False
        """Set by the member while it leads or takes over: renew while it is set."""
        self.renewals = 0
        """Renewals that succeeded."""
        self.ready = threading.Event()
        """Set once the thread's own connection is open (or failed: see `error`)."""
        self.error: str | None = None
        """Why the thread could not open its connection, if it could not."""
        self._last_beat = time.monotonic()
        self._stop = threading.Event()
        self._stalled = False
        self._thread = threading.Thread(target=self._run, name="lease-renewer", daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        """Start the thread and wait until its connection is open; ClusterUnavailable if it
        cannot open one."""
        self._thread.start()
        self.ready.wait(timeout)
        if self.error is not None or not self.ready.is_set():
            self.stop()
            raise ClusterUnavailable(f"the lease renewer cannot reach NATS: {self.error or 'timed out'}")

    def beat(self) -> None:
        """The member's loop turned (call it every turn of a short periodic task)."""
        self._last_beat = time.monotonic()

    def stop(self) -> None:
        """Stop renewing (the lease then lapses at its deadline unless released) and end the
        thread."""
        self.active = False
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self.lease.timeout + 1)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        try:
            nc = await connect(self.urls, f"{self.lease.holder} lease")
            kv: KeyValue = await nc.jetstream(timeout=self.lease.timeout).key_value(self.bucket)
        except (ClusterUnavailable, nats.errors.Error, OSError, TimeoutError) as err:
            self.error = f"{type(err).__name__}: {err}"
            self.ready.set()
            return
        self.ready.set()
        try:
            while not self._stop.is_set():
                await self._turn(kv)
                await asyncio.sleep(self.every_s)
        finally:
            await nc.close()

    async def _turn(self, kv: KeyValue) -> None:
        if not self.active or not self.lease.held():
            return
        stalled = time.monotonic() - self._last_beat > self.max_stall_s
        if stalled != self._stalled:
            self._stalled = stalled
            if stalled:
                log.error("lease_not_renewed", reason="the member's loop stalled", stall_s=self.max_stall_s)
            else:
                log.info("lease_renewing_again")
        if stalled:
            return
        try:
            if await self.lease.renew(kv):
                self.renewals += 1
        except ClusterUnavailable as exc:  # held until its deadline; the next turn tries again
            log.warning("lease_renew_retry", error=str(exc))
