"""Group commit with priorities: single requests queue here and are admitted in rounds.

Every request that changes state (orders, cancels, bundles, transactions) is put in one of two
queues, URGENT (cancels, liquidations, deleverages, oracle updates, funding steps) or NORMAL
(orders, bundles, fills, transfers, withdrawals), and waits. One round at a time takes every
urgent request, then normal ones in arrival order up to `max_round` items, and hands them to
`process`, which admits them all with ONE durable commit; only then (and, on a set's leader, once
the commit is in the set's log: `hold`) is each waiting request answered with its own result.
At low load a round holds one request and costs a task switch; under load rounds grow and the
commit (and every per-round cost) is shared.

Under overload the urgent class goes first: it never waits behind queued orders (a round always
takes every urgent request before any normal one), and a full normal queue refuses new normal
requests at once (`Overloaded`, 503) while urgent ones are still queued. Within a class the order
is arrival order.

A request may come with work to finish before it can be admitted (`ready`: its orders' signers,
being recovered by the signature worker). A round takes normal requests only while they are
ready, so it never sits waiting for the worker with requests in hand: it admits what is ready at
once, and the first request that is not ready (and every normal one behind it, to keep arrival
order) waits for the next round, which starts as soon as that request is ready. Urgent requests
do not wait behind it.

Rounds run on the event loop that queued the request (all of the node's state lives there);
`process` is synchronous, so a round is atomic with respect to everything else on the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from contracts.logs import get_logger
from sequencer.errors import Overloaded

log = get_logger("admission")

R = TypeVar("R")
"""A request."""
A = TypeVar("A")
"""Its answer."""


@dataclass(slots=True)
class _Waiting(Generic[R, A]):
    """A queued request and how its caller gets the answer: the future it awaits (`submit`), or
    the function the round calls (`submit_nowait`)."""

    request: R
    weight: int
    future: asyncio.Future[A] | None
    ready: asyncio.Future[Any] | None
    """Work the request's round waits for first (e.g. its signatures, recovered elsewhere)."""
    reply: Callable[[A | BaseException], None] | None = None


def _call(waiting: _Waiting[R, A], answer: A | BaseException) -> None:
    """Give a `submit_nowait` request its answer; a failing `reply` is logged, and the other
    requests of the round still get theirs."""
    assert waiting.reply is not None
    try:
        waiting.reply(answer)
    except Exception as exc:
        log.error("admission_reply_failed", error=repr(exc))


class AdmissionQueue(Generic[R, A]):
    """Requests waiting for the next round (see the module docstring)."""

    def __init__(
        self,
        process: Callable[[list[R]], Sequence[A | BaseException]],
        *,
        max_round: int = 64,
        max_queued: int = 20_000,
        observe_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.process = process
        """Admits a round's requests (urgent first, then normal, each class in arrival order)
        with one commit; one answer (or the exception refusing it) per request."""
        self.max_round = max_round
        """Most items (an order batch counts its orders) in one round, urgent ones excepted; a
        larger request is a round of its own. Small rounds keep the wait short: a request waits
        for the round before its own, and a client that sends its next request only once
        answered works while the next round runs."""
        self.max_queued = max_queued
        """Most items waiting per class; beyond it a request is refused with `Overloaded`."""
        self.observe_wait = observe_wait
        """Told how long the queue waited each time its first request was not ready."""
        self.hold: Callable[[], asyncio.Future[Any] | None] | None = None
        """After a round is committed, what its answers wait for (None: nothing): a set's
        leader answers only once the round is in the set's log (`Replicator.barrier`)."""
        self.urgent: deque[_Waiting[R, A]] = deque()
        self.normal: deque[_Waiting[R, A]] = deque()
        self._queued = {True: 0, False: 0}
        self._running: asyncio.Handle | None = None
        """The round scheduled to run (one at a time)."""
        self._in_round = False
        self._armed: asyncio.Future[Any] | None = None
        """The first queued request's `ready` future, when the queue waits for it."""
        self._armed_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rounds = 0
        """Rounds run so far."""
        self.largest_round = 0
        """Most requests one round held."""

    def __len__(self) -> int:
        return len(self.urgent) + len(self.normal)

    async def submit(
        self, request: R, *, urgent: bool = False, weight: int = 1, ready: asyncio.Future[Any] | None = None
    ) -> A:
        """Queue `request` for the next round and wait for its answer (raised if a refusal).
        With `ready`, no round takes it before that future is done (whatever its outcome:
        `process` looks at it); normal requests queued after it wait with it (arrival order),
        urgent ones do not."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[A] = loop.create_future()
        self._enqueue(_Waiting(request, weight, future, ready), urgent, loop)
        return await future

    def submit_nowait(
        self,
        request: R,
        reply: Callable[[A | BaseException], None],
        *,
        urgent: bool = False,
        weight: int = 1,
        ready: asyncio.Future[Any] | None = None,
    ) -> None:
        """Queue `request` as `submit` does, without a task waiting for it: the round that takes
        it calls `reply` with its answer (or the exception refusing it) right there, in the same
        turn of the loop; a task awaiting a future would resume a turn later. Raises
        `Overloaded` at once if the queue is full."""
        self._enqueue(_Waiting(request, weight, None, ready, reply), urgent, asyncio.get_running_loop())

    def _enqueue(self, waiting: _Waiting[R, A], urgent: bool, loop: asyncio.AbstractEventLoop) -> None:
        if self._queued[urgent] + waiting.weight > self.max_queued and self._queued[urgent] > 0:
            raise Overloaded(f"{self._queued[urgent]} {'urgent' if urgent else 'ordinary'} items queued")
        (self.urgent if urgent else self.normal).append(waiting)
        self._queued[urgent] += waiting.weight
        self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make sure a round will run on `loop` (one round at a time)."""
        if self._running is not None and self._loop is loop and not loop.is_closed():
            return
        self._loop = loop
        self._running = loop.call_soon(self._round)

    def _take(self) -> list[_Waiting[R, A]]:
        """The next round: every urgent request, then normal ones in order while they fit in
        `max_round` items (one at least) and are ready: the first whose `ready` future is not
        done stops the round there (it and those after it wait, in arrival order)."""
        taken = list(self.urgent)
        self.urgent.clear()
        self._queued[True] = 0
        budget = self.max_round
        normal = self.normal
        while normal and (normal[0].weight <= budget or not taken):
            ready = normal[0].ready
            if ready is not None and not ready.done():
                break
            waiting = normal.popleft()
            self._queued[False] -= waiting.weight
            budget -= waiting.weight
            taken.append(waiting)
        return taken

    def _answer(self, taken: list[_Waiting[R, A]], answers: Sequence[A | BaseException]) -> None:
        for waiting, answer in zip(taken, answers, strict=True):
            future = waiting.future
            if future is None:
                _call(waiting, answer)
            elif future.done():  # its caller went away; it was admitted all the same
                continue
            elif isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def _fail(self, taken: list[_Waiting[R, A]], exc: BaseException) -> None:
        for waiting in taken:
            if waiting.future is None:
                _call(waiting, exc)
            elif not waiting.future.done():
                waiting.future.set_exception(exc)

    def _run(self, taken: list[_Waiting[R, A]]) -> None:
        self.rounds += 1
        self.largest_round = max(self.largest_round, len(taken))
        try:
            answers = self.process([w.request for w in taken])
        except Exception as exc:  # the commit failed: nothing of the round was admitted
            self._fail(taken, exc)
            return
        hold = None if self.hold is None else self.hold()
        if hold is None:
            self._answer(taken, answers)
            return

        def release(done: asyncio.Future[Any]) -> None:
            error = None if not done.cancelled() else asyncio.CancelledError("replication cancelled")
            error = error or done.exception()
            if error is None:
                self._answer(taken, answers)
            else:
                self._fail(taken, error)

        hold.add_done_callback(release)

    def _next(self) -> None:
        """After a round: another one soon if something can go in it, else wait for the first
        queued request to be ready."""
        loop = self._loop
        if loop is None or loop.is_closed() or self._running is not None:
            return  # (a round was scheduled while this one ran: it is the next one)
        if self._round_can_take():
            self._schedule(loop)  # after the loop's other callbacks (I/O) had a turn
            return
        head = self.normal[0].ready if self.normal else None
        if head is not None and head is not self._armed:
            self._armed, self._armed_at = head, time.perf_counter()
            head.add_done_callback(self._head_ready)

    def _round_can_take(self) -> bool:
        """Whether a round would take something: an urgent request, or a normal one that is ready."""
        head = self.normal[0].ready if self.normal else None
        return bool(self.urgent) or (bool(self.normal) and (head is None or head.done()))

    def _disarm(self) -> None:
        """The armed head is ready: count how long the queue waited for it."""
        self._armed = None
        if self.observe_wait is not None:
            self.observe_wait(time.perf_counter() - self._armed_at)

    def run_ready(self) -> None:
        """Run a round now if one could take something: for the code that makes requests ready
        (the signature worker's answers arrive in an I/O callback), so that the round runs in the
        same turn of the loop instead of one or two turns later (the `ready` future's callbacks,
        then the scheduled round). Does nothing during a round or when nothing can go in one."""
        loop = self._loop
        if self._in_round or loop is None or loop.is_closed() or not self._round_can_take():
            return
        if self._armed is not None and self._armed.done():
            self._disarm()
        self._round()

    def _head_ready(self, ready: asyncio.Future[Any]) -> None:
        if ready is not self._armed:  # a round took it meanwhile (it was not the head any more)
            return
        self._disarm()
        if self._loop is not None and not self._loop.is_closed():
            self._schedule(self._loop)

    def _round(self) -> None:
        if self._running is not None:  # run early by `run_ready`, or this is the scheduled one
            self._running.cancel()
            self._running = None
        self._in_round = True
        try:
            taken = self._take()
            if taken:
                self._run(taken)
        finally:
            self._in_round = False
            self._next()
