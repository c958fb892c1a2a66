"""The replicated log: a JetStream stream with three replicas, one subject, file storage.

An append is acknowledged once a quorum of the replicas holds it (JetStream's Raft), and it is
fenced: it carries `Nats-Expected-Last-Subject-Sequence`, the last position the writer saw, so
the server refuses it (`Fenced`) if anything was appended since; a deposed leader's write is
refused, never forked. It also carries a message id made of its position and a digest of its
bytes, so an append retried after a timeout is written once (the server answers the retry with
the first one's position).

Positions are the stream's sequence numbers: 1, 2, 3... with no gaps (the stream has one subject,
and denies deletes and purges). Readers follow the log with an ordered consumer
(`LogReader`), which checks that positions come one after another and starts again at the next
one when anything was missed. `last_seq` asks the stream's Raft leader, so a new leader never
starts from an older end than the log has.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from types import TracebackType
from typing import NamedTuple

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)

from contracts.logs import get_logger
from sequencer.cluster.errors import ClusterUnavailable, ConfigMismatch, EntryTooLarge, Fenced, LogGap

log = get_logger("cluster")

DEFAULT_STREAM = "ROLLUP_LOG"
DEFAULT_REPLICAS = 3
REQUEST_TIMEOUT_S = 2.0
LEADER_WAIT_S = 10.0
"""How long opening the log waits for its stream to have a leader (a new stream elects one)."""
READER_HEARTBEAT_S = 1.0
"""The server's idle heartbeat to a reader: two missed and the reader starts a new consumer."""
NO_RESPONDERS_PAUSE_S = 0.05
"""Pause before publishing again an append that no server took."""
HEADER_ROOM_BYTES = 512
"""Room left under the server's max payload for an append's headers."""
WRONG_LAST_SEQUENCE = 10071
"""JetStream's err_code for a refused `Nats-Expected-Last-Subject-Sequence` ("wrong last
sequence: N", N the actual last position)."""
WRONG_LAST_SEQUENCE_IN_FLIGHT = 10164
"""The same refusal when another append to the subject is in flight (no position given)."""
_ACTUAL_RE = re.compile(r"wrong last sequence: (\d+)")

_NATS_FAILURES = (nats.errors.Error, asyncio.TimeoutError, OSError)


class Record(NamedTuple):
    """One entry of the log and its position."""

    seq: int
    """The entry's position (the stream sequence, from 1)."""
    data: bytes
    """The entry's bytes (docs/protocol.md, "The sequencer set's log")."""


class ReplicatedLog:
    """The sequencer set's log on a JetStream stream; `open` creates the stream if needed."""

    def __init__(self, nc: NATS, stream: str = DEFAULT_STREAM, timeout: float = REQUEST_TIMEOUT_S) -> None:
        self.nc = nc
        self.stream = stream
        self.subject = f"{stream}.entries"
        """The stream's one subject: every entry, of every kind, is appended here."""
        self.timeout = timeout
        """Seconds to wait for the server's answer to one request."""
        self.js: JetStreamContext = nc.jetstream(timeout=timeout)

    @classmethod
    async def open(
        cls,
        nc: NATS,
        stream: str = DEFAULT_STREAM,
        replicas: int = DEFAULT_REPLICAS,
        timeout: float = REQUEST_TIMEOUT_S,
    ) -> ReplicatedLog:
        """The log on `stream`, created (file storage, `replicas` replicas) if it does not exist;
        ConfigMismatch if it exists with other subjects, replicas or storage."""
        self = cls(nc, stream, timeout)
        wanted = StreamConfig(
            name=stream,
            subjects=[self.subject],
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.NEW,
            storage=StorageType.FILE,
            num_replicas=replicas,
            deny_delete=True,
            deny_purge=True,
        )
        try:
            try:
                info = await self.js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                info = await self.js.add_stream(wanted)
        except _NATS_FAILURES as err:
            raise ClusterUnavailable(f"cannot open the log stream {stream}: {err}") from err
        got = info.config
        if (got.subjects, got.num_replicas, got.storage) != (wanted.subjects, replicas, StorageType.FILE):
            raise ConfigMismatch(
                f"stream {stream} exists with subjects {got.subjects}, {got.num_replicas} replicas,"
                f" {got.storage} storage; wanted {wanted.subjects}, {replicas}, file"
            )
        await self._led(info, LEADER_WAIT_S)
        return self

    async def _led(self, info: StreamInfo, within: float) -> None:
        """Wait until the stream's replicas have elected a leader (a stream just made elects its
        first one a moment later): ClusterUnavailable if none is elected `within` seconds."""
        deadline = asyncio.get_running_loop().time() + within
        while info.cluster is not None and not info.cluster.leader:
            if asyncio.get_running_loop().time() > deadline:
                raise ClusterUnavailable(f"the log stream {self.stream} has no leader after {within}s")
            await asyncio.sleep(0.05)
            try:
                info = await self.js.stream_info(self.stream)
            except _NATS_FAILURES:
                continue

    async def append(self, payload: bytes, expected_last: int) -> int:
        """Append `payload` if the log ends at `expected_last`; returns its position
        (`expected_last + 1`) once a quorum of replicas holds it.

        Raises Fenced if the log does not end there (nothing is written), EntryTooLarge if the
        server cannot take the payload, ClusterUnavailable if NATS does not answer (the entry may
        be written: retrying the same append is safe, it is deduplicated).
        """
        if expected_last < 0:
            raise ValueError(f"expected_last must be 0 or a position, not {expected_last}")
        limit = self.nc.max_payload - HEADER_ROOM_BYTES
        if len(payload) > limit:
            raise EntryTooLarge(len(payload), limit)
        seq = expected_last + 1
        headers = {
            "Nats-Expected-Last-Subject-Sequence": str(expected_last),
            "Nats-Msg-Id": f"{seq}-{hashlib.sha256(payload).hexdigest()[:32]}",
        }
        try:
            ack = await self._publish(payload, headers)
        except nats.js.errors.NoStreamResponseError as err:
            raise ClusterUnavailable(f"append at {seq}: no server of the stream took it") from err
        except nats.js.errors.APIError as err:
            if err.err_code in (WRONG_LAST_SEQUENCE, WRONG_LAST_SEQUENCE_IN_FLIGHT):
                match = _ACTUAL_RE.search(err.description or "")
                raise Fenced(expected_last, int(match.group(1)) if match else None) from err
            raise ClusterUnavailable(f"append at {seq} refused: {err}") from err
        except nats.errors.MaxPayloadError as err:
            raise EntryTooLarge(len(payload), self.nc.max_payload) from err
        except _NATS_FAILURES as err:
            raise ClusterUnavailable(f"append at {seq} not acknowledged: {type(err).__name__}") from err
        return int(ack.seq)

    async def _publish(self, payload: bytes, headers: dict[str, str]) -> PubAck:
        """Publish to the stream, again (for up to the request timeout) while no server takes the
        message: no responders means nothing was written (the stream's interest in its subject
        has not reached this server yet, as just after the stream was made)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                return await self.js.publish(
                    self.subject, payload, timeout=self.timeout, stream=self.stream, headers=dict(headers)
                )
            except nats.js.errors.NoStreamResponseError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(NO_RESPONDERS_PAUSE_S)

    async def last_seq(self) -> int:
        """The log's last position, as its Raft leader holds it (0 while empty); raises
        ClusterUnavailable when the stream has no leader, rather than answer from a replica
        that may be behind."""
        try:
            info = await self.js.stream_info(self.stream)
        except _NATS_FAILURES as err:
            raise ClusterUnavailable(f"cannot read the end of the log: {type(err).__name__}: {err}") from err
        if info.config.num_replicas and info.config.num_replicas > 1:
            if info.cluster is None or not info.cluster.leader:
                raise ClusterUnavailable(f"stream {self.stream} has no leader")
        return int(info.state.last_seq)

    def reader(self, after: int) -> LogReader:
        """A reader of the entries after position `after`, in order (use it with `async with`)."""
        return LogReader(self, after)

    async def read(self, after: int, upto: int | None = None, timeout: float = 30.0) -> list[Record]:
        """The entries after `after` up to `upto` (default: the log's end now, read from the
        leader), in order; raises ClusterUnavailable if they do not all arrive within `timeout`."""
        end = await self.last_seq() if upto is None else upto
        out: list[Record] = []
        if end <= after:
            return out
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self.reader(after) as reader:
            while reader.position < end:
                record = await reader.next(max(0.0, deadline - loop.time()))
                if record is None:
                    raise ClusterUnavailable(
                        f"log entries {reader.position + 1}..{end} did not arrive in {timeout}s"
                    )
                out.append(record)
        return out


class LogReader:
    """The log's entries after a position, each once, in order, as they are appended.

    An ordered consumer (one replica, in memory, on a server of the stream) delivers them. When
    its server goes, the client starts a new one after two missed heartbeats; a position that is
    not the next one (a message lost in between) starts a new one at the next position; entries
    delivered again are skipped. If the log no longer holds the next position, LogGap.
    """

    def __init__(self, log: ReplicatedLog, after: int) -> None:
        if after < 0:
            raise ValueError(f"a reader starts after a position (0 or more), not {after}")
        self.log = log
        self.position = after
        """The last position read (the reader's log position)."""
        self._sub: JetStreamContext.PushSubscription | None = None

    async def __aenter__(self) -> LogReader:
        await self._subscribe()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> LogReader:
        return self

    async def __anext__(self) -> Record:
        record = await self.next(None)
        assert record is not None  # without a timeout, next() waits for an entry
        return record

    async def _subscribe(self) -> None:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.position + 1
        )
        try:
            self._sub = await self.log.js.subscribe(
                self.log.subject,
                stream=self.log.stream,
                config=config,
                ordered_consumer=True,
                idle_heartbeat=READER_HEARTBEAT_S,
            )
        except _NATS_FAILURES as err:
            raise ClusterUnavailable(f"cannot read the log after {self.position}: {err}") from err

    async def close(self) -> None:
        """Stop the consumer (the reader can be entered again, from its position)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except _NATS_FAILURES as err:
                log.warning("log_reader_close_failed", stream=self.log.stream, error=str(err))

    async def next(self, timeout: float | None) -> Record | None:
        """The entry after `position`, waiting up to `timeout` seconds for it to be appended
        (None: for ever); None if it did not come in time."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._sub is None:
                await self._subscribe()
                assert self._sub is not None
            left = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                msg = await self._sub.next_msg(timeout=left)
            except nats.errors.TimeoutError:
                return None
            except nats.errors.ConnectionClosedError as err:
                raise ClusterUnavailable("the NATS connection is closed") from err
            seq = int(msg.metadata.sequence.stream)
            if seq <= self.position:
                continue  # delivered again after a new consumer started
            if seq == self.position + 1:
                self.position = seq
                return Record(seq, msg.data)
            await self._restart(seq)

    async def _restart(self, got: int) -> None:
        """A position was skipped: read again from the next one, unless the log lost it."""
        try:
            info = await self.log.js.stream_info(self.log.stream)
        except _NATS_FAILURES as err:
            raise ClusterUnavailable(f"cannot check the log after a skip to {got}: {err}") from err
        if info.state.first_seq > self.position + 1:
            raise LogGap(self.position, info.state.first_seq)
        log.warning("log_reader_restarted", stream=self.log.stream, position=self.position, got=got)
        await self.close()
        await self._subscribe()
