"""Group commit with priorities: the admission queue's rounds (urgent first, arrival order within a
class, bounded rounds and queues), and over a node on the in-memory L1, a round of concurrent
requests logged with ONE commit and each answered exactly as it would be on its own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from exchange_fixtures import (
    BTC,
    BTC_PARAMS,
    COMMITTEE,
    ETH,
    ETH_PARAMS,
    TRADERS,
    cancel,
    order,
    price,
    trader_key,
)

from sequencer.admission import AdmissionQueue
from sequencer.errors import Overloaded
from sequencer.exchange import CancelOutcome, OrderOutcome, PlaceOrders
from sequencer.node import NodeOptions
from sequencer.stf.codec import encode_message, encode_tx
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import sign_transfer, sign_withdraw
from sequencer.stf.errors import RollupError
from sequencer.stf.types import Cancel, Fill, ForcedTx, OracleUpdate, SetCommittee, SetMarket
from tests.sequencer.test_api_exchange import T0, ClockedL1, Net
from tests.sequencer.test_chain import CONFIG, FakeRollup

A, B, C, D = TRADERS[:4]

# ---- the queue -------------------------------------------------------------------------


class Recorder:
    """A `process` that records each round and answers each request with itself."""

    def __init__(self) -> None:
        self.rounds: list[list[str]] = []
        self.during: list[Any] = []
        """Callables run inside the next round (to queue requests while it runs)."""

    def __call__(self, requests: list[str]) -> list[str | BaseException]:
        self.rounds.append(list(requests))
        for action in self.during:
            action()
        self.during = []
        return [RuntimeError(r) if r.startswith("bad") else f"done {r}" for r in requests]


def run(coroutine: Any) -> Any:
    return asyncio.new_event_loop().run_until_complete(coroutine)


def test_round__one_request_at_low_load__answered_in_its_own_round() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder)

    async def go() -> list[str]:
        return [await queue.submit("a"), await queue.submit("b")]

    assert run(go()) == ["done a", "done b"]
    assert recorder.rounds == [["a"], ["b"]]


def test_round__concurrent_requests__one_round_each_its_own_answer_or_error() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder)

    async def go() -> list[Any]:
        return await asyncio.gather(*(queue.submit(r) for r in ("a", "bad b", "c")), return_exceptions=True)

    a, b, c = run(go())
    assert (a, c) == ("done a", "done c") and isinstance(b, RuntimeError)
    assert recorder.rounds == [["a", "bad b", "c"]]


def test_round__urgent_queued_last__taken_first_then_normal_in_arrival_order() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder, max_round=2)

    async def go() -> None:
        normal = [asyncio.ensure_future(queue.submit(f"n{i}")) for i in range(5)]
        urgent = asyncio.ensure_future(queue.submit("u1", urgent=True))
        # while the first round runs, another urgent request arrives: it goes before n3, n4
        recorder.during = [lambda: asyncio.ensure_future(queue.submit("u2", urgent=True))]
        await asyncio.gather(*normal, urgent)

    run(go())
    assert recorder.rounds == [["u1", "n0", "n1"], ["u2", "n2", "n3"], ["n4"]]


def test_round__request_larger_than_a_round__a_round_of_its_own() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder, max_round=4)

    async def go() -> None:
        await asyncio.gather(
            queue.submit("small", weight=1), queue.submit("big", weight=200), queue.submit("tiny", weight=1)
        )

    run(go())
    assert recorder.rounds == [["small"], ["big"], ["tiny"]]


def test_submit__queue_full__ordinary_refused_overloaded_urgent_still_queued() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder, max_queued=2)
    burst: list[asyncio.Future[str]] = []

    def arrive() -> None:  # while a round runs, four requests arrive
        burst.extend(asyncio.ensure_future(queue.submit(r, urgent=r == "u")) for r in ("n0", "n1", "n2", "u"))

    async def go() -> list[Any]:
        recorder.during = [arrive]
        await queue.submit("first")
        return await asyncio.gather(*burst, return_exceptions=True)

    n0, n1, n2, u = run(go())
    assert (n0, n1, u) == ("done n0", "done n1", "done u") and isinstance(n2, Overloaded)
    assert recorder.rounds == [["first"], ["u", "n0", "n1"]]


def test_round__process_fails__every_request_of_the_round_gets_the_error() -> None:
    def broken(requests: list[str]) -> list[str]:
        raise OSError("disk full")

    queue: AdmissionQueue[str, str] = AdmissionQueue(broken)

    async def go() -> list[Any]:
        return await asyncio.gather(queue.submit("a"), queue.submit("b"), return_exceptions=True)

    assert [type(e) for e in run(go())] == [OSError, OSError]


def test_round__waits_for_the_requests_ready_future_before_processing() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder)

    async def go() -> str:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        answer = asyncio.ensure_future(queue.submit("a", ready=ready))
        for _ in range(3):
            await asyncio.sleep(0)
        assert recorder.rounds == []
        ready.set_result(None)
        return await answer

    assert run(go()) == "done a"


def test_round__takes_the_ready_prefix__the_rest_waits_in_order_for_its_first_request() -> None:
    recorder = Recorder()
    waited: list[float] = []
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder, observe_wait=waited.append)

    async def go() -> list[str]:
        loop = asyncio.get_running_loop()
        b_ready: asyncio.Future[None] = loop.create_future()
        done: asyncio.Future[None] = loop.create_future()
        done.set_result(None)
        answers = [
            asyncio.ensure_future(queue.submit("a", ready=done)),
            asyncio.ensure_future(queue.submit("b", ready=b_ready)),
            asyncio.ensure_future(queue.submit("c")),  # ready, but after b: it waits with b
        ]
        for _ in range(3):
            await asyncio.sleep(0)
        assert recorder.rounds == [["a"]]  # a did not wait for b's signers
        cancel = asyncio.ensure_future(queue.submit("cancel", urgent=True))
        for _ in range(3):
            await asyncio.sleep(0)
        assert recorder.rounds == [["a"], ["cancel"]]  # an urgent request does not wait behind b
        assert not answers[1].done() and not answers[2].done()
        b_ready.set_result(None)
        return list(await asyncio.gather(*answers, cancel))

    assert run(go()) == ["done a", "done b", "done c", "done cancel"]
    assert recorder.rounds == [["a"], ["cancel"], ["b", "c"]]
    assert len(waited) == 1 and waited[0] >= 0  # the queue waited once, for b


def test_round__head_not_ready_fails__still_taken_and_answered() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder)

    async def go() -> str:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        answer = asyncio.ensure_future(queue.submit("a", ready=ready))
        await asyncio.sleep(0)
        ready.set_exception(RuntimeError("worker gone"))  # `process` copes (recovers inline)
        return await answer

    assert run(go()) == "done a"


def test_run_ready__head_made_ready_in_a_callback__round_runs_at_once_not_a_turn_later() -> None:
    recorder = Recorder()
    waited: list[float] = []
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder, observe_wait=waited.append)

    async def go() -> list[str]:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        answers = [
            asyncio.ensure_future(queue.submit("a", ready=ready)),
            asyncio.ensure_future(queue.submit("b")),
        ]
        for _ in range(3):
            await asyncio.sleep(0)
        assert recorder.rounds == []  # the queue waits for a's ready future
        queue.run_ready()
        assert recorder.rounds == []  # nothing ready: nothing run
        ready.set_result(None)
        queue.run_ready()  # as the signature worker's I/O callback does after resolving it
        assert recorder.rounds == [["a", "b"]]  # in this turn, before any callback of the loop ran
        assert all(answer.done() is False for answer in answers)  # answered through their futures
        return list(await asyncio.gather(*answers))

    assert run(go()) == ["done a", "done b"]
    assert recorder.rounds == [["a", "b"]]  # the round the ready future's callback scheduled found nothing
    assert len(waited) == 1


def test_run_ready__a_round_scheduled_while_it_ran__is_the_next_one_no_round_lost_or_doubled() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder)
    calls: list[int] = []
    real = queue._round

    def counted() -> None:
        calls.append(1)
        real()

    queue._round = counted  # type: ignore[method-assign]

    async def go() -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # a reply that queues another request (as a pipelined HTTP request started by it does)
        queue.submit_nowait("a", lambda _: queue.submit_nowait("b", lambda _: None), ready=ready)
        await asyncio.sleep(0)  # a round found "a" not ready
        ready.set_result(None)
        queue.run_ready()
        queue.submit_nowait("c", lambda _: None)
        for _ in range(3):
            await asyncio.sleep(0)

    run(go())
    assert recorder.rounds == [["a"], ["b", "c"]]
    assert len(calls) == 3  # the one that waited, the one run_ready ran, the one for b and c


def test_run_ready__called_inside_a_round__does_nothing_there_the_next_round_takes_it() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder)
    later: list[asyncio.Future[str]] = []

    def arrive() -> None:
        later.append(asyncio.ensure_future(queue.submit("b")))
        later.append(asyncio.ensure_future(queue.submit("c")))

    async def go() -> list[str]:
        first = asyncio.ensure_future(queue.submit("a"))
        await asyncio.sleep(0)
        recorder.during = [arrive, queue.run_ready]
        return [await first, *[await f for f in later]]

    assert run(go()) == ["done a", "done b", "done c"]
    assert recorder.rounds == [["a"], ["b", "c"]]


def test_submit_nowait__reply_called_by_the_round__with_futures_in_arrival_order() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder)
    replies: list[tuple[str, int]] = []

    async def go() -> list[str]:
        waiting = asyncio.ensure_future(queue.submit("a"))
        await asyncio.sleep(0)  # "a" is queued
        queue.submit_nowait("b", lambda answer: replies.append((str(answer), queue.rounds)))
        queue.submit_nowait("bad c", lambda answer: replies.append((repr(answer), queue.rounds)))
        return [await waiting]

    assert run(go()) == ["done a"]
    assert recorder.rounds == [["a", "b", "bad c"]]
    assert replies == [("done b", 1), ("RuntimeError('bad c')", 1)]  # inside the round


def test_submit_nowait__queue_full__overloaded_at_once__failing_reply_does_not_stop_the_others() -> None:
    recorder = Recorder()
    queue: AdmissionQueue[str, str] = AdmissionQueue(recorder, max_queued=2)
    replies: list[str] = []

    def broken(answer: object) -> None:
        raise ValueError("a bug in the caller's reply")

    async def go() -> None:
        queue.submit_nowait("a", broken)
        queue.submit_nowait("b", replies.append)
        with pytest.raises(Overloaded):
            queue.submit_nowait("c", replies.append)
        for _ in range(3):
            await asyncio.sleep(0)

    run(go())
    assert recorder.rounds == [["a", "b"]] and replies == ["done b"]


# ---- over a node -----------------------------------------------------------------------


def exchange_net(path: Path, options: NodeOptions) -> Net:
    """A node with ETH and BTC listed, a committee, fresh prices and funded traders A-D."""
    l1 = ClockedL1(FakeRollup())
    for message in (SetMarket(ETH, ETH_PARAMS), SetMarket(BTC, BTC_PARAMS), SetCommittee(COMMITTEE)):
        l1.log.append(l1.rollup.message(encode_message(message)))
    for trader in (A, B, C, D):
        l1.deposit(trader, 1_000_000)
    net = Net(path, l1, options)
    assert net.post_batch()
    for market, mark in ((ETH, 100), (BTC, 5000)):
        net.node.intake.submit(
            OracleUpdate(market, tuple(price(i, market, mark, mark, T0) for i in range(3)))
        )
    assert net.post_batch()
    return net


def count_commits(net: Net) -> list[int]:
    commits: list[int] = []
    original = net.store.add_many
    net.store.add_many = lambda rows, **kw: commits.append(len(rows)) or original(rows, **kw)  # type: ignore[method-assign]
    return commits


def test_group_commit__concurrent_requests__one_commit_answers_as_if_one_by_one(tmp_path: Path) -> None:
    together, alone = (exchange_net(tmp_path / name, NodeOptions()) for name in ("a.sqlite", "b.sqlite"))
    resting = order(2, ETH, SIDE_BUY, 90, 10)
    for net in (together, alone):
        net.loop.run_until_complete(net.node.admit_orders([resting]))
    ask, bid = order(0, ETH, SIDE_SELL, 100, 50), order(1, ETH, SIDE_BUY, 101, 30)
    transfer = encode_tx(sign_transfer(trader_key(3), A, 1_000, 0, CONFIG))

    def requests(net: Net) -> list[Any]:
        node = net.node
        return [
            node.admit_orders([ask]),  # rests
            node.admit_orders([bid, order(1, 9, SIDE_BUY, 1, 10)]),  # fills against the ask; unknown market
            node.admit_txs([transfer]),
            node.admit_orders([ask]),  # the same order again: known
            node.admit_cancel(cancel(2, resting)),  # urgent: admitted first
        ]

    commits = count_commits(together)

    async def at_once() -> list[Any]:
        return await asyncio.gather(*requests(together))

    concurrent = together.loop.run_until_complete(at_once())
    assert commits == [3]  # the cancel, the transfer and the fill in ONE commit
    # the same requests one by one, in the order the round took them (the cancel first)
    pending = requests(alone)
    answers = {i: alone.loop.run_until_complete(pending[i]) for i in (4, 0, 1, 2, 3)}
    one_by_one = [answers[i] for i in range(5)]

    def shape(answer: Any) -> Any:
        if isinstance(answer, list):
            return [shape(a) for a in answer]
        if isinstance(answer, RollupError):
            return (type(answer).__name__, answer.code, str(answer))
        return answer

    assert [shape(a) for a in concurrent] == [shape(a) for a in one_by_one]
    placed, crossed, (admitted,), known, cancelled = concurrent
    assert isinstance(placed[0], OrderOutcome) and placed[0].status == "resting"
    assert crossed[0].status == "filled" and crossed[1].code == "unknown_market"
    assert known[0].known and isinstance(cancelled, CancelOutcome) and cancelled.was_resting
    kinds = [type(p.tx) for p in together.node.mempool.pending]
    assert kinds == [Cancel, Fill, type(sign_transfer(trader_key(3), A, 1, 0, CONFIG))]
    assert admitted[1] == together.node.mempool.pending[2].seq
    together.close()
    alone.close()


def test_group_commit__admission_queue_full__orders_503_cancel_queued_last_goes_first(tmp_path: Path) -> None:
    net = exchange_net(tmp_path / "s.sqlite", NodeOptions(admission_max_queued=3))
    resting = order(2, ETH, SIDE_BUY, 90, 10)
    net.loop.run_until_complete(net.node.admit_orders([resting]))
    node = net.node

    async def burst() -> list[Any]:
        # a request waits for its signers: the normal ones queued after it wait behind it
        busy: asyncio.Future[list[bytes | None]] = asyncio.get_running_loop().create_future()
        first = asyncio.ensure_future(
            node.intake.admission.submit((PlaceOrders([]), "Fill", busy), ready=busy)
        )
        await asyncio.sleep(0)
        # with two sells that would fill against the resting bid the queue is full...
        sells = [node.admit_orders([order(0, ETH, SIDE_SELL, 90, 10, salt=i)]) for i in range(2)]
        waiting = [asyncio.ensure_future(s) for s in sells]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):  # ...so another order is refused at once
            await node.admit_orders([order(1, ETH, SIDE_BUY, 95, 10)])
        # the bid's cancel, queued after the sells, is admitted before them
        cancelled = asyncio.ensure_future(node.admit_cancel(cancel(2, resting)))
        await asyncio.sleep(0)
        busy.set_result([])
        await first
        return await asyncio.gather(*waiting, cancelled)

    sell0, sell1, cancelled = net.loop.run_until_complete(burst())
    assert isinstance(cancelled, CancelOutcome) and (cancelled.was_resting, cancelled.removed) == (True, 10)
    assert [(s[0].status, s[0].fills) for s in (sell0, sell1)] == [("resting", ())] * 2
    assert [type(p.tx) for p in node.mempool.pending] == [Cancel]  # no fill: the bid was gone first
    net.close()


def test_mempool_commutes__forced_tx_replans_only_when_it_could_change_something(tmp_path: Path) -> None:
    net = exchange_net(tmp_path / "c.sqlite", NodeOptions())
    node = net.node
    net.loop.run_until_complete(node.admit_orders([order(0, ETH, SIDE_SELL, 100, 10)]))
    net.loop.run_until_complete(node.admit_orders([order(1, ETH, SIDE_BUY, 100, 10)]))  # A and B: positions
    pending = sign_transfer(trader_key(3), A, 5, 0, CONFIG)  # D has a pending transfer
    net.loop.run_until_complete(node.admit_txs([pending]))

    def withdraw(i: int) -> ForcedTx:
        return ForcedTx(99, encode_tx(sign_withdraw(trader_key(i), b"\x01" * 20, 10, 0, CONFIG)))

    mempool = node.mempool
    assert mempool.commutes([withdraw(2)])  # C: no position, named by nothing pending
    assert not mempool.commutes([withdraw(1)])  # B holds a position: its margin reads prices
    assert not mempool.commutes([withdraw(3)])  # D's pending transfer reads and writes its account
    assert not mempool.commutes([withdraw(2), withdraw(3)])
    assert mempool.commutes([ForcedTx(99, b"\x02not a transaction")])  # only advances the queue
    assert mempool.commutes([])
    net.close()
