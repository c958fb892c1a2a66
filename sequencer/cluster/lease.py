"""One leader at a time: a lease in JetStream's key-value store.

The lease is one key in a bucket whose entries live `ttl` seconds (the bucket's max age, kept by
the servers). A member takes it by creating the key (refused while it exists), keeps it by
updating it with compare-and-set on the revision it last wrote (refused if anyone else wrote),
and gives it up by deleting it, again on its revision. When the holder stops renewing, the
servers drop the key `ttl` seconds after its last write and the next create succeeds. The term
is the key's revision when it was taken: the bucket's sequence, so a later term is larger.

A member holds the lease only until its *local deadline*: the moment it sent its last successful
write, plus `ttl`, minus a safety `margin`. The servers expire that write no earlier than `ttl`
after it arrived, so the deadline passes before any other member can take the lease, whatever
this member's state: a paused process (SIGSTOP) or one cut off from NATS finds `held()` False
the moment it runs again, without asking anyone. Once the deadline passes the term is over: the
member must take the lease again, in a new term.

A member that does not hold the lease watches the key (`watch`): the servers push each write to
it, so it asks them for the key (`try_acquire`) only once the last write it saw is nearly `ttl`
old, or the key was deleted (`may_be_free`). A refused create costs every server a request; a
watch costs one pushed message per renewal. What it saw ages when the watch falls silent, so a
member whose watch is broken tries as often as one without a watch.

The servers drop an expired key some time after its `ttl` (a tenth of a second or more). A
watching member need not wait for that: once `ttl` has passed on its own clock since the watch
delivered the last write, with no later write seen, it writes over that write with a
compare-and-set on its revision (`lapsed_revision`). Its writer sent it before the servers stored
it, and they stored it before the watch delivered it, so the writer's deadline (`ttl - margin`
after sending) passed before then, on clocks that only have to run at the same rate, as for the
servers' own expiry. If anyone wrote the key since (a renewal the watch has not delivered yet, or
another member's take), the compare-and-set is refused; if the servers already dropped the key,
a create decides as usual. Either way the servers' compare-and-set alone decides who holds the
lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NATS
from nats.js.api import StorageType
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from contracts.logs import get_logger
from sequencer.cluster.errors import ClusterUnavailable, ConfigMismatch

log = get_logger("cluster")

DEFAULT_BUCKET = "ROLLUP_LEASE"
DEFAULT_KEY = "leader"
DEFAULT_TTL_S = 3.0
DEFAULT_REPLICAS = 3
REQUEST_TIMEOUT_S = 2.0
TAKE_EARLY_S = 0.25
"""How long before the last write a member saw could lapse it starts trying to take the lease (the
servers' expiry and the watch's delivery do not wait for each other)."""
WATCH_RETRY_S = 1.0
"""How soon a watch that failed to start (or stopped) starts again."""

_NATS_FAILURES = (nats.errors.Error, asyncio.TimeoutError, OSError)

LeaseCallback = Callable[[bool, int | None], None]
"""Called with (held, term) each time the lease is gained or lost."""


@dataclass(frozen=True)
class LeaseRecord:
    """The lease as the key-value store holds it."""

    holder: str
    """The member that holds it."""
    term: int
    """Its term: the key's revision when the holder took it."""
    revision: int
    """The key's revision now (it grows with every renewal)."""


class Lease:
    """This member's side of the lease: take it, renew it, give it up, and know when it is held."""

    def __init__(
        self,
        kv: KeyValue,
        holder: str,
        ttl: float = DEFAULT_TTL_S,
        key: str = DEFAULT_KEY,
        margin: float | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, not {ttl}")
        self.kv = kv
        self.holder = holder
        """This member's name, written in the key while it holds the lease."""
        self.ttl = ttl
        self.key = key
        self.margin = ttl / 5 if margin is None else margin
        """Seconds before the servers could expire the lease at which this member stops holding it."""
        if not 0 < self.margin < ttl:
            raise ValueError(f"lease margin must be between 0 and the ttl ({ttl}), not {self.margin}")
        self.timeout = timeout
        self.term: int | None = None
        """The term of the lease while this member holds it (and after, until it takes it again)."""
        self.revision: int | None = None
        """The revision of this member's last write of the key, while it may still renew it."""
        self.deadline = 0.0
        """The local deadline (time.monotonic) until which the lease is held."""
        self.seen_write: float | None = None
        """When (time.monotonic) the key was last written, as the watch saw it; None while the key
        is gone, or nothing is watched."""
        self.seen_holder: str | None = None
        """The holder the last write the watch saw names (None if the key is gone)."""
        self.seen_revision: int | None = None
        """The revision of the last write the watch saw (None if the key is gone)."""
        self.seen_received: float | None = None
        """When (time.monotonic) the watch delivered that write: after the servers stored it, so
        after its writer sent it."""

    @classmethod
    async def open(
        cls,
        nc: NATS,
        holder: str,
        ttl: float = DEFAULT_TTL_S,
        bucket: str = DEFAULT_BUCKET,
        key: str = DEFAULT_KEY,
        replicas: int = DEFAULT_REPLICAS,
        margin: float | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
    ) -> Lease:
        """This member's lease in `bucket`, created (entries living `ttl` seconds, `replicas`
        replicas, file storage) if it does not exist; ConfigMismatch if it has another ttl."""
        js = nc.jetstream(timeout=timeout)
        try:
            try:
                kv = await js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                kv = await js.create_key_value(
                    bucket=bucket, ttl=ttl, history=1, replicas=replicas, storage=StorageType.FILE
                )
            status = await kv.status()
        except _NATS_FAILURES as err:
            raise ClusterUnavailable(f"cannot open the lease bucket {bucket}: {err}") from err
        if status.ttl is None or abs(status.ttl - ttl) > 1e-3:
            raise ConfigMismatch(
                f"lease bucket {bucket} keeps entries {status.ttl}s, this member wants {ttl}s"
            )
        return cls(kv, holder, ttl, key, margin, timeout)

    def held(self) -> bool:
        """True while this member holds the lease: until its local deadline, whatever the
        servers say (a paused member finds it False as soon as it runs again)."""
        return self.revision is not None and time.monotonic() < self.deadline

    def may_be_free(self) -> bool:
        """Whether a take could succeed now by what `watch` has seen: the key is gone, or its last
        write is at most `TAKE_EARLY_S` from lapsing (True when nothing is watched)."""
        seen = self.seen_write
        return seen is None or time.monotonic() >= seen + self.ttl - TAKE_EARLY_S

    async def watch(self) -> None:
        """Follow the key's writes as the servers push them, until cancelled (`may_be_free`). A
        watch that fails starts again after `WATCH_RETRY_S`; one that falls silent lets what it
        saw age, so tries resume by themselves."""
        while True:
            watcher = None
            try:
                watcher = await asyncio.wait_for(self.kv.watch(self.key), self.timeout)
                async for entry in watcher:
                    if entry is not None:  # None: the initial state was delivered
                        self._saw(entry)
            except _NATS_FAILURES as err:
                log.warning("lease_watch_retry", holder=self.holder, error=f"{type(err).__name__}: {err}")
            finally:
                self._forget()
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(watcher.stop(), self.timeout)  # type: ignore[no-untyped-call]
            await asyncio.sleep(WATCH_RETRY_S)

    def _saw(self, entry: KeyValue.Entry) -> None:
        """Note one write of the key, dated by the servers' timestamp (never later than now, never
        older than the ttl: another machine's clock only moves the first try)."""
        received = time.monotonic()
        if entry.operation in (KV_DEL, KV_PURGE):
            self._forget()
            return
        self.seen_revision, self.seen_received = entry.revision, received
        age = 0.0
        created: object = entry.created  # a datetime, whatever the client's annotation says
        if isinstance(created, datetime.datetime):
            age = min(self.ttl, max(0.0, time.time() - created.timestamp()))
        self.seen_write = received - age
        try:
            self.seen_holder = str(orjson.loads(entry.value or b"{}")["holder"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.seen_holder = None

    def _forget(self) -> None:
        self.seen_write = self.seen_holder = self.seen_received = self.seen_revision = None

    def lapsed_revision(self) -> int | None:
        """The revision of the last write the watch saw, once a `ttl` has passed since it was
        delivered with no later write seen (None before, or if nothing is watched): its writer's
        deadline passed before then (it sent that write before the servers stored it, and holds
        only `ttl - margin` past sending), so a member may write over it with a compare-and-set
        on that revision, without waiting for the servers to expire it."""
        received = self.seen_received
        if received is None or time.monotonic() < received + self.ttl:
            return None
        return self.seen_revision

    def next_try_in(self, every: float) -> float:
        """How long a member that does not lead waits before its next try: `every`, or less when
        the last write the watch saw lapses sooner (`lapsed_revision`), so that the take over it
        is tried at once."""
        received = self.seen_received
        if received is None:
            return every
        due = received + self.ttl - time.monotonic()
        return due + 0.001 if 0 < due < every else every

    def _value(self, term: int | None) -> bytes:
        return orjson.dumps(
            {"holder": self.holder} if term is None else {"holder": self.holder, "term": term}
        )

    async def try_acquire(self) -> bool:
        """Take the lease if no one holds it (renew it if this member does); True if held now.

        The servers refuse the create while the key exists: while another member holds it, and
        for up to `ttl` after this member's own term ended (it waits for a new term like anyone).
        A write the watch saw lapse (`lapsed_revision`) is written over with a compare-and-set on
        its revision instead, refused if anyone wrote the key since.
        """
        if self.revision is not None:
            if self.held():
                return await self.renew()
            self._lose("deadline passed")
        sent = time.monotonic()
        lapsed = self.lapsed_revision()
        try:
            revision = None
            if lapsed is not None:
                try:
                    revision = await asyncio.wait_for(
                        self.kv.update(self.key, self._value(None), last=lapsed), self.timeout
                    )
                except nats.js.errors.KeyWrongLastSequenceError:
                    lapsed = None  # written since, or already expired by the servers: create
            if revision is None:
                revision = await asyncio.wait_for(self.kv.create(self.key, self._value(None)), self.timeout)
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            # refused: the key exists, or another member's create of it is in flight (the client
            # then finds no key when it looks for a delete marker to write over)
            return False
        except _NATS_FAILURES as err:
            raise ClusterUnavailable(f"cannot take the lease: {type(err).__name__}: {err}") from err
        self.term = self.revision = int(revision)
        self.deadline = sent + self.ttl - self.margin
        log.info("leadership_gained", holder=self.holder, term=self.term, ttl_s=self.ttl, over_lapsed=lapsed)
        return self.held()

    async def renew(self, kv: KeyValue | None = None) -> bool:
        """Extend the lease by a compare-and-set on this member's last revision; True if held
        now. False once it is lost: the deadline passed, or the key changed (another member
        took it after it expired); raises ClusterUnavailable if NATS does not answer in time
        (the lease is still held until its deadline). `kv`: the bucket through another
        connection (one of another thread's event loop, `Renewer`)."""
        if self.revision is None:
            return False
        left = self.deadline - time.monotonic()
        if left <= 0:
            self._lose("deadline passed")
            return False
        sent, last = time.monotonic(), self.revision
        try:
            revision = await asyncio.wait_for(
                (kv or self.kv).update(self.key, self._value(self.term), last=last),
                min(self.timeout, left),
            )
        except nats.js.errors.KeyWrongLastSequenceError:
            self._lose("the key changed (expired or taken)")
            return False
        except _NATS_FAILURES as err:
            if not self.held():
                self._lose("deadline passed while renewing")
                return False
            raise ClusterUnavailable(f"cannot renew the lease: {type(err).__name__}: {err}") from err
        if self.revision != last:  # released or lost meanwhile (by the other thread): it stays so
            return False
        self.revision = int(revision)
        self.deadline = sent + self.ttl - self.margin
        return self.held()

    def _lose(self, reason: str) -> None:
        """This member stops holding the lease (it is never renewed again in this term)."""
        if self.revision is None:
            return
        self.revision = None
        self.deadline = 0.0
        log.warning("leadership_lost", holder=self.holder, term=self.term, reason=reason)

    async def release(self) -> None:
        """Give the lease up now (another member may take it at once): stop holding it, then
        delete the key if it is still this member's write."""
        revision = self.revision
        if revision is None:
            return
        self.revision = None
        self.deadline = 0.0
        log.info("leadership_released", holder=self.holder, term=self.term)
        try:
            await asyncio.wait_for(self.kv.delete(self.key, last=revision), self.timeout)
        except nats.js.errors.KeyWrongLastSequenceError:
            pass  # no longer this member's write: nothing to give up
        except _NATS_FAILURES as err:
            raise ClusterUnavailable(f"cannot release the lease (it expires by itself): {err}") from err

    async def current(self) -> LeaseRecord | None:
        """Who holds the lease, as the key's stream leader says (None if no one)."""
        try:
            entry = await self.kv.get(self.key)
        except nats.js.errors.KeyNotFoundError:
            return None
        except _NATS_FAILURES as err:
            raise ClusterUnavailable(f"cannot read the lease: {err}") from err
        assert entry.revision is not None and entry.value is not None
        value = orjson.loads(entry.value)
        return LeaseRecord(str(value["holder"]), int(value.get("term", entry.revision)), entry.revision)

    async def run(self, on_change: LeaseCallback | None = None, interval: float | None = None) -> None:
        """Keep trying to take the lease and keep renewing it, every `interval` seconds (a third
        of the ttl by default), until cancelled; `on_change(held, term)` runs when this member
        gains or loses it (a loss is seen at the local deadline at the latest). The lease is
        released when the loop is cancelled."""
        every = self.ttl / 3 if interval is None else interval
        was_held = False
        try:
            while True:
                try:
                    await self.try_acquire()
                except ClusterUnavailable as err:
                    log.warning("lease_unavailable", holder=self.holder, error=str(err))
                now_held = self.held()
                if now_held != was_held:
                    was_held = now_held
                    if on_change is not None:
                        on_change(now_held, self.term)
                wait = every if not now_held else min(every, max(0.0, self.deadline - time.monotonic()))
                await asyncio.sleep(wait)
        finally:
            if was_held and on_change is not None:
                on_change(False, self.term)
            await asyncio.shield(self._release_quietly())

    async def _release_quietly(self) -> None:
        try:
            await self.release()
        except ClusterUnavailable as err:
            log.warning("lease_release_failed", holder=self.holder, error=str(err))
