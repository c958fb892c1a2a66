"""Resting orders stay backed by margin after they rest: a signed transfer or withdrawal that would
leave them uncovered is refused (`insufficient_order_margin`) and changes nothing; a forced one
from the L1 queue, a new mark or a funding step is followed by cancels of the account's orders
that add exposure, newest first, until it is covered (reason `margin`). Over a real mempool and
SQLite log (no L1); the forced path through a node's follower on the in-memory L1 is at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from exchange_fixtures import BTC, ETH, TRADERS, acct, cancel, leaves, order, trader_key
from stf_vectors import CONFIG, state_of

from sequencer.exchange import AdmitTxs, OrderStatus
from sequencer.node import NodeOptions
from sequencer.stf.codec import decode_tx, encode_tx, forced_hash, read_acct
from sequencer.stf.constants import FLAG_REDUCE_ONLY, SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import sign_transfer, sign_withdraw
from sequencer.stf.errors import OpenOrdersUncovered, RollupError
from sequencer.stf.keys import account_key
from sequencer.stf.margin import equity, order_margin, settle
from sequencer.stf.state import get_account, get_next_deposit_index
from sequencer.stf.types import ForcedTx, L1Context, SignedOrder, Transfer, Tx, Withdraw
from tests.sequencer.test_api import body as tx_body
from tests.sequencer.test_api_exchange import Net, body
from tests.sequencer.test_api_exchange import digest as api_digest
from tests.sequencer.test_exchange import RICH, Harness, digest, priced
from tests.sequencer.test_keeper_node import make_net

A, B, C = TRADERS[:3]


def withdraw(h: Harness, i: int, amount: int) -> Withdraw:
    """Trader `i` withdraws `amount` to its own L1 address, with its next nonce in the view."""
    return sign_withdraw(trader_key(i), TRADERS[i], amount, nonce(h, TRADERS[i]), CONFIG)


def transfer(h: Harness, i: int, to: bytes, amount: int) -> Transfer:
    return sign_transfer(trader_key(i), to, amount, nonce(h, TRADERS[i]), CONFIG)


def nonce(h: Harness, trader: bytes) -> int:
    return read_acct(h.mempool.view.tree.get(account_key(trader))).nonce


def admit(h: Harness, *items: Tx | bytes) -> list[tuple[bytes, int] | RollupError]:
    """Admit transactions as the API does (`POST /v1/transactions/batch`: one AdmitTxs)."""
    (answer,) = h.exchange.admit([AdmitTxs(list(items))])
    assert isinstance(answer, list)
    return answer  # type: ignore[return-value]


def force(h: Harness, inner: Tx) -> ForcedTx:
    """`inner` forced through the L1 queue, as the follower meets it: the entry joins the view,
    then the books follow it (`Exchange.follow_queue`)."""
    index = get_next_deposit_index(h.mempool.view)
    raw = encode_tx(inner)
    forced = ForcedTx(index, raw)
    h.mempool.apply_deposits([forced], L1Context(index + 1, {index: forced_hash(index, raw)}, h.now))
    h.exchange.follow_queue([forced])
    return forced


def status(h: Harness, signed: SignedOrder) -> tuple[str, str | None]:
    details = h.exchange.order_details(digest(signed))
    assert details is not None
    return details.status.value, details.reason


def statuses(h: Harness, placed: list[SignedOrder]) -> list[str]:
    return [status(h, signed)[0] for signed in placed]


WITHOUT_99_98 = ["resting", "cancelled", "cancelled", "resting", "resting"]
"""A's orders (`rest_a`) once its bids at 98 and 99 are cancelled."""


def covered(h: Harness, trader: bytes) -> bool:
    """Whether `trader`'s equity covers the margin of its positions and its resting orders."""
    markets = h.exchange.markets()
    a = read_acct(h.mempool.view.tree.get(account_key(trader)))
    settle(a, markets)
    return equity(a, markets) >= order_margin(a, markets, h.exchange.exposure.of(trader, markets))


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    # A: 2,000 of collateral, long 100 at 100 (its initial margin 1,000); the others rich
    harness = Harness(
        tmp_path / "s.sqlite",
        state_of(leaves({A: acct(2_000, 0, (ETH, 100, 10_000)), B: acct(RICH), C: acct(RICH)})),
    )
    yield harness
    harness.store.close()


def rest_a(h: Harness) -> list[SignedOrder]:
    """A's orders, oldest first: bids of 30 at 100, 99 and 98 (its order margin 1,900 with its
    long 100), then an ask of 50 at 105 and a reduce-only ask, which only reduce it."""
    placed = [
        order(0, ETH, SIDE_BUY, 100, 30, salt=1),
        order(0, ETH, SIDE_BUY, 99, 30, salt=2),
        order(0, ETH, SIDE_BUY, 98, 30, salt=3),
        order(0, ETH, SIDE_SELL, 105, 50, salt=4),
        order(0, ETH, SIDE_SELL, 106, 20, salt=5, flags=FLAG_REDUCE_ONLY),
    ]
    for signed in placed:
        assert h.exchange.place(signed).status == OrderStatus.RESTING
    assert covered(h, A)
    return placed


# ---- refused at admission ----------------------------------------------------------------


def test_withdraw__would_uncover_resting_orders__refused_and_nothing_changes(h: Harness) -> None:
    rest_a(h)
    before = h.mempool.view.tree.get(account_key(A))
    (refused,) = admit(h, withdraw(h, 0, 101))  # equity 1,899 < 1,900
    assert isinstance(refused, OpenOrdersUncovered) and refused.code == "insufficient_order_margin"
    assert "cancel open orders first" in str(refused) and (refused.required, refused.equity) == (1_900, 1_899)
    assert h.mempool.view.tree.get(account_key(A)) == before and len(h.mempool) == 0
    assert h.store.counts() == {} and len(h.exchange.open_orders(A)) == 5
    (accepted,) = admit(h, withdraw(h, 0, 100))  # leaves exactly the margin
    assert (
        isinstance(accepted, tuple) and read_acct(h.mempool.view.tree.get(account_key(A))).collateral == 1_900
    )


def test_transfer__would_uncover__refused__after_a_cancel_in_the_same_batch__admitted(h: Harness) -> None:
    placed = rest_a(h)
    (refused,) = admit(h, transfer(h, 0, B, 500))
    assert isinstance(refused, OpenOrdersUncovered) and refused.code == "insufficient_order_margin"
    # the same transfer behind cancels of the 30 at 98 (margin 1,600) and the 30 at 99 (1,300):
    # each transaction sees the books the ones before it left
    results = admit(h, cancel(0, placed[2]), cancel(0, placed[1]), transfer(h, 0, B, 500))
    assert all(isinstance(r, tuple) for r in results), results
    assert read_acct(h.mempool.view.tree.get(account_key(B))).collateral == RICH + 500
    assert [o.order_id for o in h.exchange.open_orders(A)] == [digest(placed[i]) for i in (0, 3, 4)]
    assert covered(h, A)


# ---- cancelled when it cannot be refused ----------------------------------------------------


def test_forced_withdraw__uncovers__newest_orders_adding_exposure_cancelled_until_covered(
    h: Harness,
) -> None:
    placed = rest_a(h)
    h.messages()
    force(h, withdraw(h, 0, 500))  # equity 1,500: without the 98 (1,600) and the 99 (1,300)
    assert read_acct(h.mempool.view.tree.get(account_key(A))).collateral == 1_500
    for i in (1, 2):
        state, reason = status(h, placed[i])
        assert state == "cancelled" and reason is not None and reason.startswith("margin: ")
    assert [status(h, placed[i])[0] for i in (0, 3, 4)] == ["resting"] * 3  # the asks only reduce
    removed = [(m["order"], m["reason"]) for m in h.messages() if m.get("change") == "removed"]
    assert removed == [("0x" + digest(placed[i]).hex(), "margin") for i in (2, 1)]  # newest first
    assert covered(h, A)
    h.reopen()  # the log has it: nothing comes back
    assert [o.order_id for o in h.exchange.open_orders(A)] == [digest(placed[i]) for i in (0, 3, 4)]


def test_forced_transfer__still_covered__nothing_cancelled(h: Harness) -> None:
    rest_a(h)
    force(h, transfer(h, 0, B, 100))
    assert len(h.exchange.open_orders(A)) == 5 and covered(h, A)


def test_forced_withdraw__to_its_initial_margin__every_order_adding_exposure_cancelled(h: Harness) -> None:
    placed = rest_a(h)
    force(h, withdraw(h, 0, 1_000))  # equity 1,000 = the long's margin: no bid can stay
    assert [o.order_id for o in h.exchange.open_orders(A)] == [digest(placed[i]) for i in (3, 4)]
    assert covered(h, A)


def test_oracle_update__a_bid_above_the_new_mark__cancelled_at_the_update_others_kept(h: Harness) -> None:
    placed = rest_a(h)
    h.exchange.place(order(1, ETH, SIDE_BUY, 97, 1_000))  # B: rich, stays
    # ETH to 95: A's equity 1,500; its margin 1,805 plus the bids' losses against 95 (360)
    (accepted,) = admit(h, priced(95))
    assert isinstance(accepted, tuple)
    # the bid at 98 (newest) goes: 1,520 + 270 > 1,500; then the 99: 1,235 + 150 <= 1,500
    assert statuses(h, placed) == WITHOUT_99_98
    assert covered(h, A) and len(h.exchange.open_orders(B)) == 1


def test_oracle_update__position_in_one_market__orders_in_another_cancelled(tmp_path: Path) -> None:
    # C holds ETH only as a position (long 10 at 100) and rests a BTC bid: margin 100 + 1,000
    h = Harness(tmp_path / "s.sqlite", state_of(leaves({C: acct(1_200, 0, (ETH, 10, 1_000)), B: acct(RICH)})))
    bid = order(2, BTC, SIDE_BUY, 5000, 1)
    h.exchange.place(bid)
    h.exchange.place(order(1, BTC, SIDE_BUY, 4995, 1))
    assert isinstance(admit(h, priced(90))[0], tuple)  # C: equity 1,100, margin 90 + 1,000: kept
    assert status(h, bid)[0] == "resting"
    h.now += 1
    assert isinstance(admit(h, priced(86, at=h.now))[0], tuple)  # equity 1,060 < 86 + 1,000
    assert status(h, bid)[0] == "cancelled" and covered(h, C)
    assert len(h.exchange.open_orders(B)) == 1
    h.store.close()


def test_sweep__a_price_admitted_outside_the_exchange__orders_cancelled_at_the_next_sweep(
    h: Harness,
) -> None:
    placed = rest_a(h)
    h.mempool.submit(priced(95))  # as the keeper's own transactions are (`Intake.submit`)
    assert len(h.exchange.open_orders(A)) == 5
    h.exchange.sweep()
    assert [status(h, placed[i])[0] for i in (1, 2)] == ["cancelled", "cancelled"]
    assert covered(h, A)


def test_rebuild__the_state_moved_under_resting_orders__uncovered_ones_cancelled(h: Harness) -> None:
    placed = rest_a(h)
    h.state = state_of(leaves({A: acct(1_500, 0, (ETH, 100, 10_000)), B: acct(RICH), C: acct(RICH)}))
    h.mempool.rebase(h.state, [], L1Context(0, {}), [])  # say an L1 revert
    h.exchange.rebuild()
    assert statuses(h, placed) == WITHOUT_99_98
    assert covered(h, A)


# ---- through a node: the API, and the L1 queue seen by the follower -------------------------


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = make_net(tmp_path / "seq.sqlite", NodeOptions(max_pending=200))
    yield n
    n.close()


def post_order(n: Net, signed: SignedOrder) -> dict[str, Any]:
    r = n.client.post("/v1/orders", json=body(signed))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def order_view(n: Net, signed: SignedOrder) -> dict[str, Any]:
    out: dict[str, Any] = n.client.get(f"/v1/orders/{api_digest(signed)}").json()
    return out


NET_BIDS = [order(0, ETH, SIDE_BUY, 100, 40_000, salt=1), order(0, ETH, SIDE_BUY, 99, 40_000, salt=2)]
"""A's bids on the node: 800,000 of order margin on its 1,000,000."""


def test_post_withdrawal__would_uncover_resting_orders__409_insufficient_order_margin(net: Net) -> None:
    for signed in NET_BIDS:
        assert post_order(net, signed)["status"] == "resting"
    w = sign_withdraw(trader_key(0), A, 200_001, 0, CONFIG)
    r = net.client.post("/v1/withdrawals", json=tx_body(w))
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_order_margin"
    assert "cancel open orders first" in r.json()["error"]["message"]
    account = net.client.get(f"/v1/accounts/0x{A.hex()}").json()
    assert (int(account["pending_collateral"]), account["pending_nonce"]) == (1_000_000, 0)
    r = net.client.post("/v1/withdrawals", json=tx_body(sign_withdraw(trader_key(0), A, 200_000, 0, CONFIG)))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("with_position", [False, True])
def test_forced_withdraw__seen_by_the_follower__newest_bid_cancelled_for_margin(
    net: Net, with_position: bool
) -> None:
    if with_position:  # A long 10: the forced entry does not commute, the view is rebased
        post_order(net, order(1, ETH, SIDE_SELL, 100, 10))
        assert post_order(net, order(0, ETH, SIDE_BUY, 100, 10, salt=9))["status"] == "filled"
    for signed in NET_BIDS:
        assert post_order(net, signed)["status"] == "resting"
    inner = sign_withdraw(trader_key(0), A, 500_000, 0, CONFIG)  # equity ~500,000 < 800,000
    net.l1.log.append(net.l1.rollup.forced(encode_tx(inner)))
    net.poll()
    newest = order_view(net, NET_BIDS[1])
    assert newest["status"] == "cancelled" and newest["reason"].startswith("margin: ")
    assert order_view(net, NET_BIDS[0])["status"] == "resting"  # 400,000 (and 100) is covered
    assert net.post_batch()
    assert any(isinstance(decode_tx(raw), ForcedTx) for raw in net.node.chain.batches[-1].txs)
    assert net.node.chain.fraud is None
    assert get_account(net.node.chain.state, A).collateral < 500_001
