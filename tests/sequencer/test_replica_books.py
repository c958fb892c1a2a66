"""A member that does not lead keeps its view and books in step with the leader's commits, entry
by entry (`Applier` with `Exchange.follow`): after any sequence of orders (limit, IOC, post-only,
reduce-only, expiring), cancels and sweeps on the leader, the follower holds the same books in the
same priority order, the same open-order exposure and the same accounts, without a rebuild; and
what it cannot follow (its view short of what the leader's commit needs) it says so (`dirty`)
and a rebuild makes it equal again."""

from __future__ import annotations

from pathlib import Path

from exchange_fixtures import BTC, ETH, NOW, TRADERS, cancel, order
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stf_vectors import CONFIG

from sequencer.cluster.entries import encode_commit, encode_round
from sequencer.cluster.log import Record
from sequencer.journal import Commit
from sequencer.replication import Applier
from sequencer.stf.codec import encode_order_state
from sequencer.stf.constants import FLAG_IOC, FLAG_POST_ONLY, FLAG_REDUCE_ONLY, SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import order_digest
from sequencer.stf.errors import RollupError
from sequencer.stf.keys import order_key
from sequencer.stf.types import OrderState, SignedOrder
from tests.cluster.test_replication import rebuilt, rows, same_exchange
from tests.sequencer.test_exchange import Harness, funded

A, B, C, D = TRADERS[:4]

place = st.tuples(
    st.just("place"),
    st.integers(0, 3),  # trader
    st.sampled_from((ETH, BTC)),
    st.sampled_from((SIDE_BUY, SIDE_SELL)),
    st.integers(-3, 3),  # price around the mark
    st.integers(1, 9),  # lots
    st.sampled_from((0, 0, 0, FLAG_IOC, FLAG_POST_ONLY, FLAG_REDUCE_ONLY)),
    st.sampled_from((0, 0, NOW + 30, NOW + 90)),  # expiry
)
operation = st.one_of(
    place,
    st.tuples(st.just("cancel"), st.integers(0, 1_000)),
    st.tuples(st.just("sweep"), st.integers(0, 60)),  # the clock moves on, expired orders leave
)


class Pair:
    """A leader harness whose every commit the follower harness applies as the set's log has it."""

    def __init__(self, tmp: Path) -> None:
        self.leader = Harness(tmp / "leader.sqlite", funded(A, B, C, D))
        self.follower = Harness(tmp / "follower.sqlite", funded(A, B, C, D))
        self.follower.mempool.replica = True
        self.commits: list[Commit] = []
        self.leader.mempool.journal = self.commits.append
        self.applier = Applier(
            self.follower.store, self.follower.mempool, lambda _: None, self.follower.exchange.follow
        )
        self.position = 0

    def ship(self) -> None:
        """The commits made since the last call, as one entry of the log, applied by the follower."""
        if not self.commits:
            return
        self.position += 1
        data = encode_round(1, [encode_commit(c) for c in self.commits])
        self.commits.clear()
        self.applier.apply(Record(self.position, data))

    def close(self) -> None:
        self.leader.store.close()
        self.follower.store.close()


MARKS = {ETH: 100, BTC: 5000}


def rows_equal(pair: Pair) -> bool:
    assert rows(pair.follower) == rows(pair.leader)
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=5, max_size=60), group=st.integers(1, 4))
def test_follower_books_follow_the_leader_entry_by_entry(tmp_path_factory, ops, group) -> None:  # type: ignore[no-untyped-def]
    pair = Pair(tmp_path_factory.mktemp("pair"))
    placed: list[tuple[int, SignedOrder]] = []
    try:
        for i, op in enumerate(ops):
            leader = pair.leader
            if op[0] == "place":
                _, who, market, side, offset, lots, flags, expiry = op
                lot = 10 if market == ETH else 1
                signed = order(
                    who,
                    market,
                    side,
                    MARKS[market] + offset * (1 if market == ETH else 5),
                    lots * lot,
                    flags=flags,
                    expiry=expiry,
                    salt=i,
                )
                try:
                    leader.exchange.place(signed)
                    placed.append((who, signed))
                except RollupError:
                    pass
            elif op[0] == "cancel" and placed:
                who, victim = placed[op[1] % len(placed)]
                try:
                    leader.exchange.cancel(cancel(who, victim))
                except RollupError:
                    pass
            elif op[0] == "sweep":
                leader.now += op[1]
                pair.follower.now = leader.now
                leader.exchange.sweep()
            if i % group == 0:  # several commits per entry, as a busy leader appends them
                pair.ship()
        pair.ship()
        assert not pair.applier.dirty
        assert [(p.seq, p.hash) for p in pair.follower.mempool.pending] == [
            (p.seq, p.hash) for p in pair.leader.mempool.pending
        ]
        assert same_exchange(pair.follower, pair.leader, require_orders=False)
    finally:
        pair.close()


def test_a_commit_the_view_cannot_take_marks_the_follower_dirty_and_a_rebuild_makes_it_equal(
    tmp_path: Path,
) -> None:
    pair = Pair(tmp_path)
    try:
        leader = pair.leader
        leader.exchange.place(order(0, ETH, SIDE_SELL, 101, 50, salt=1))
        pair.ship()
        assert not pair.applier.dirty
        # the follower's view has the second maker cancelled (a forced Cancel from the L1 queue it
        # saw before the leader did, say): the leader's fill of it does not apply there
        maker = order(0, ETH, SIDE_SELL, 102, 50, salt=2)
        leader.exchange.place(maker)
        pair.ship()
        digest = order_digest(maker.order, CONFIG)
        pair.follower.mempool.overlay.set(order_key(digest), encode_order_state(OrderState(0, True)))
        leader.exchange.place(order(1, ETH, SIDE_BUY, 102, 100, salt=3))  # fills both makers
        pair.ship()
        assert pair.applier.dirty
        assert rows_equal(pair)  # its durable log has the leader's rows all the same
        leader.exchange.place(order(2, ETH, SIDE_SELL, 103, 30, salt=4))
        pair.ship()  # dirty: applied to the durable log and the pending list only
        rebuilt(pair.follower)  # what the member's refresh does (the view from the chain and the log)
        rebuilt(pair.leader)
        assert same_exchange(pair.follower, pair.leader, require_orders=False)
    finally:
        pair.close()
