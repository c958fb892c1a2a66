"""The exchange API over a real node whose L1 is in memory: markets listed and a committee set by
governance messages, prices by oracle updates, then orders, cancels and bundles over HTTP (codes,
bodies, receipts), the views, the WebSocket events, durability across a restart on the same log,
and an L1 revert."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
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
from fastapi.testclient import TestClient

from sequencer.api.app import create_app
from sequencer.builder import build_batch
from sequencer.mempool import PendingTx
from sequencer.node import NodeOptions, SequencerNode
from sequencer.receipts import verify_order_receipt, verify_receipt
from sequencer.stf.codec import encode_message, encode_tx, tx_hash
from sequencer.stf.constants import FLAG_IOC, FLAG_POST_ONLY, SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import order_digest, sign_bundle, sign_transfer
from sequencer.stf.types import Bundle, Cancel, Leg, OracleUpdate, SetCommittee, SetMarket, SignedOrder
from sequencer.store import Store
from tests.sequencer.test_api import SEQ_KEY, FakeL1
from tests.sequencer.test_chain import CONFIG, FakeRollup

T0 = 1_800_000_000
"""The node's clock and the L1 head's timestamp."""
A, B, C, D = TRADERS[:4]


class ClockedL1(FakeL1):
    """The in-memory L1 with its head at `T0`."""

    def head_timestamp(self) -> int:
        return T0


def sig_hex(signed: Any) -> str:
    s = signed.sig if hasattr(signed, "sig") else signed
    return "0x" + s.r.to_bytes(32, "big").hex() + s.s.to_bytes(32, "big").hex() + bytes([s.v]).hex()


def fields(signed: SignedOrder) -> dict[str, Any]:
    o = signed.order
    return {
        "trader": "0x" + o.trader.hex(),
        "market": o.market,
        "side": o.side,
        "price": o.price,
        "size": o.size,
        "flags": o.flags,
        "expiry": o.expiry,
        "salt": o.salt,
    }


def body(signed: SignedOrder) -> dict[str, Any]:
    return {**fields(signed), "signature": sig_hex(signed)}


def cancel_body(tx: Cancel) -> dict[str, Any]:
    return {"order": fields(SignedOrder(tx.order, tx.sig)), "signature": sig_hex(tx.sig)}


def digest(signed: SignedOrder) -> str:
    return "0x" + order_digest(signed.order, CONFIG).hex()


class Net:
    """A node on the in-memory L1, its loop, its API client."""

    def __init__(
        self,
        path: Path,
        l1: ClockedL1,
        options: NodeOptions,
        node: Callable[..., SequencerNode] = SequencerNode,
    ) -> None:
        self.path = path
        self.l1 = l1
        self.options = options
        self.make_node = node
        self.start()

    def start(self) -> None:
        self.store = Store(self.path)
        self.node = self.make_node(
            CONFIG, self.store, self.l1, self.l1, start_block=1, options=self.options, receipt_key=SEQ_KEY
        )
        self.node.l2clock.wall = lambda: T0
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.node.start())
        self.client = TestClient(create_app(self.node, max_body_bytes=1 << 20))

    def restart(self) -> None:
        """Stop (as a crash would: nothing is flushed) and start again on the same log."""
        self.loop.close()
        self.store.close()
        self.start()

    def post_batch(self) -> bool:
        return self.loop.run_until_complete(self.node.poster.build_and_post())

    def poll(self) -> int:
        return self.loop.run_until_complete(self.node.follower.poll())

    def close(self) -> None:
        self.loop.close()
        self.store.close()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    l1 = ClockedL1(FakeRollup())
    for message in (SetMarket(ETH, ETH_PARAMS), SetMarket(BTC, BTC_PARAMS), SetCommittee(COMMITTEE)):
        l1.log.append(l1.rollup.message(encode_message(message)))
    for trader in (A, B, C, D):
        l1.deposit(trader, 1_000_000)
    n = Net(tmp_path / "seq.sqlite", l1, NodeOptions(max_pending=50, reserve_pending=5))
    assert n.post_batch()  # markets, committee, deposits
    for market, mark in ((ETH, 100), (BTC, 5000)):
        n.node.intake.submit(OracleUpdate(market, tuple(price(i, market, mark, mark, T0) for i in range(3))))
    assert n.post_batch()
    yield n
    n.close()


def test_markets__listed_by_governance__params_live_state_and_empty_books(net: Net) -> None:
    markets = net.client.get("/v1/markets").json()
    assert [m["id"] for m in markets] == [ETH, BTC]
    eth = markets[ETH]
    assert (eth["tick_size"], eth["lot_size"], eth["imr_bps"], eth["maker_fee_bps"]) == (1, 10, 1000, -10)
    assert (eth["mark_price"], eth["oracle_time"], eth["best_bid"], eth["resting_orders"]) == (
        100,
        T0,
        None,
        0,
    )
    assert net.client.get("/v1/markets/7/book").json()["error"]["code"] == "unknown_market"


def test_orders__rest_then_fill__receipts_views_and_batching(net: Net) -> None:
    c = net.client
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    r = c.post("/v1/orders", json=body(ask))
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("digest", "status", "resting", "fills")} == {
        "digest": digest(ask),
        "status": "resting",
        "resting": 50,
        "fills": [],
    }
    resting_receipt = bytes.fromhex(r.json()["receipt"][2:])  # a resting order is acknowledged too
    assert verify_order_receipt(CONFIG, [bytes.fromhex(digest(ask)[2:])], [], net.l1.address, resting_receipt)
    assert not verify_order_receipt(CONFIG, [], [], net.l1.address, resting_receipt)
    bid = order(1, ETH, SIDE_BUY, 101, 30)
    r = c.post("/v1/orders", json=body(bid))
    out = r.json()
    assert r.status_code == 200 and out["status"] == "filled"
    (fill,) = out["fills"]
    assert (fill["price"], fill["size"], fill["maker"], fill["taker"], fill["status"]) == (
        100,
        30,
        "0x" + A.hex(),
        "0x" + B.hex(),
        "pending",
    )
    items = [(bytes.fromhex(fill["tx_hash"][2:]), fill["seq"])]
    signature = bytes.fromhex(out["receipt"][2:])
    assert verify_order_receipt(CONFIG, [bytes.fromhex(digest(bid)[2:])], items, net.l1.address, signature)
    assert not verify_order_receipt(CONFIG, [bytes.fromhex(digest(bid)[2:])], [], net.l1.address, signature)
    view = c.get(f"/v1/orders/{digest(ask)}").json()
    assert (view["status"], view["filled"], view["filled_confirmed"], view["resting"]) == (
        "partially_filled",
        30,
        0,
        20,
    )
    assert c.get("/v1/markets").json()[ETH]["best_ask"] == {"price": 100, "size": 20}
    assert c.get("/v1/markets/0/book", params={"depth": 5}).json() == {
        "market": 0,
        "bids": [],
        "asks": [{"price": 100, "size": 20}],
    }
    assert net.post_batch()
    assert c.get(f"/v1/transactions/{fill['tx_hash']}").json()["status"] == "batched"
    view = c.get(f"/v1/orders/{digest(bid)}").json()
    assert (view["status"], view["filled_confirmed"], view["fills"][0]["status"]) == ("filled", 30, "batched")
    account = c.get(f"/v1/accounts/0x{B.hex()}").json()
    (position,) = account["positions"]
    assert (position["market"], position["size"], position["open_notional"]) == (ETH, 30, "3000")
    assert position["liquidation_price"] is None  # 1,000,000 of collateral margins 30 units at any mark
    assert int(account["equity"]) == int(account["pending_collateral"])  # mark 100 = entry: no PnL
    assert (account["initial_margin"], account["maintenance_margin"]) == ("300", "150")
    assert account["margin_ratio_bps"] == int(account["equity"]) * 10_000 // 150
    maker = c.get(f"/v1/accounts/0x{A.hex()}").json()
    assert [(o["digest"], o["resting"]) for o in maker["open_orders"]] == [(digest(ask), 20)]
    fills = c.get("/v1/fills", params={"account": "0x" + A.hex()}).json()["fills"]
    assert [f["tx_hash"] for f in fills] == [fill["tx_hash"]]


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda: order(1, 9, SIDE_BUY, 100, 10), 404, "unknown_market"),
        (lambda: order(1, BTC, SIDE_BUY, 5001, 1), 400, "price_off_tick"),
        (lambda: order(1, ETH, SIDE_BUY, 100, 15), 400, "size_off_lot"),
        (lambda: order(1, ETH, SIDE_BUY, 100, 10, expiry=T0), 409, "order_expired"),
        (lambda: order(1, ETH, SIDE_BUY, 100, 10, flags=FLAG_IOC | FLAG_POST_ONLY), 400, "invalid_order"),
        (lambda: order(1, ETH, SIDE_BUY, 100, 150_000), 409, "insufficient_order_margin"),  # crosses D's ask
        (lambda: order(1, ETH, SIDE_BUY, 99, 1_000_010), 409, "open_position_limit"),
        (
            lambda: SignedOrder(order(1, ETH, SIDE_BUY, 100, 10).order, order(2, ETH, SIDE_BUY, 1, 10).sig),
            400,
            "bad_signature",
        ),
    ],
)
def test_post_order__refused__typed_4xx_and_nothing_recorded(
    net: Net, make: Any, status: int, code: str
) -> None:
    assert net.client.post("/v1/orders", json=body(order(3, ETH, SIDE_SELL, 100, 50_000))).status_code == 200
    signed = make()
    r = net.client.post("/v1/orders", json=body(signed))
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert net.client.get(f"/v1/orders/{digest(signed)}").status_code == 404


def test_post_order__malformed_body__400_malformed(net: Net) -> None:
    bad = body(order(1, ETH, SIDE_BUY, 100, 10))
    bad["price"] = "cheap"
    r = net.client.post("/v1/orders", json=bad)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")


def test_post_order__post_only_crossing__409(net: Net) -> None:
    net.client.post("/v1/orders", json=body(order(0, ETH, SIDE_SELL, 100, 10)))
    r = net.client.post("/v1/orders", json=body(order(1, ETH, SIDE_BUY, 100, 10, flags=FLAG_POST_ONLY)))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "post_only_would_cross")


def test_post_orders_batch__one_commit__per_item_results_one_receipt(net: Net) -> None:
    commits: list[int] = []
    original = net.store.add_many
    net.store.add_many = lambda rows, **kw: commits.append(len(rows)) or original(rows, **kw)  # type: ignore[method-assign]
    orders = [order(0, ETH, SIDE_SELL, 100 + i, 10, salt=i) for i in range(4)]
    orders += [order(1, ETH, SIDE_BUY, 102, 30), order(1, 9, SIDE_BUY, 1, 10), orders[0]]
    r = net.client.post("/v1/orders/batch", json={"orders": [body(o) for o in orders]})
    assert r.status_code == 200 and commits == [3]
    results = r.json()["results"]
    summary = [x["result"]["status"] if x["result"] else x["error"]["code"] for x in results]
    assert summary == ["resting"] * 4 + ["filled", "unknown_market", "filled"]
    assert results[-1]["result"]["known"]
    fills = results[4]["result"]["fills"]
    items = [(bytes.fromhex(f["tx_hash"][2:]), f["seq"]) for f in fills]
    placed = [bytes.fromhex(digest(o)[2:]) for o in orders[:5] + orders[-1:]]  # not the refused one
    signature = bytes.fromhex(r.json()["receipt"][2:])
    assert verify_order_receipt(CONFIG, placed, items + items[:1], net.l1.address, signature)
    assert not verify_order_receipt(CONFIG, placed[:-1], items, net.l1.address, signature)
    empty = net.client.post("/v1/orders/batch", json={"orders": []})
    assert (empty.status_code, empty.json()["error"]["code"]) == (400, "malformed")


def test_cancel__resting__out_of_the_book_receipt_then_again_same_ack(net: Net) -> None:
    bid = order(1, ETH, SIDE_BUY, 99, 10)
    net.client.post("/v1/orders", json=body(bid))
    r = net.client.post("/v1/orders/cancel", json=cancel_body(cancel(1, bid)))
    out = r.json()
    assert r.status_code == 200 and (out["order"], out["was_resting"], out["removed"]) == (
        digest(bid),
        True,
        10,
    )
    assert verify_receipt(
        CONFIG, bytes.fromhex(out["hash"][2:]), out["seq"], net.l1.address, bytes.fromhex(out["receipt"][2:])
    )
    assert net.client.get("/v1/markets/0/book").json()["bids"] == []
    assert net.client.get(f"/v1/orders/{digest(bid)}").json()["status"] == "cancelled"
    again = net.client.post("/v1/orders/cancel", json=cancel_body(cancel(1, bid))).json()
    assert (again["hash"], again["seq"]) == (out["hash"], out["seq"])


def test_cancel__unknown_order__admitted_not_resting_then_the_order_is_refused(net: Net) -> None:
    elsewhere = order(2, ETH, SIDE_BUY, 99, 10)
    out = net.client.post("/v1/orders/cancel", json=cancel_body(cancel(2, elsewhere))).json()
    assert (out["was_resting"], out["removed"]) == (False, 0)
    r = net.client.post("/v1/orders", json=body(elsewhere))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "order_cancelled")


def test_cancel__not_the_trader_signature__400(net: Net) -> None:
    bid = order(1, ETH, SIDE_BUY, 99, 10)
    forged = Cancel(bid.order, cancel(2, order(2, ETH, SIDE_BUY, 99, 10)).sig)
    r = net.client.post("/v1/orders/cancel", json=cancel_body(forged))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_signature")


def test_cancel__raw_transaction__the_book_follows(net: Net) -> None:
    bid = order(1, ETH, SIDE_BUY, 99, 10)
    net.client.post("/v1/orders", json=body(bid))
    r = net.client.post("/v1/transactions", json={"raw": "0x" + encode_tx(cancel(1, bid)).hex()})
    assert r.status_code == 200
    assert net.client.get("/v1/markets/0/book").json()["bids"] == []
    assert net.client.get(f"/v1/orders/{digest(bid)}").json()["status"] == "cancelled"


def bundle_body(i: int, legs: list[Leg], salt: int = 0) -> dict[str, Any]:
    bundle = Bundle(TRADERS[i], tuple(legs), 0, salt)
    sig = sign_bundle(trader_key(i), bundle, CONFIG)
    return {
        "trader": "0x" + TRADERS[i].hex(),
        "legs": [
            {"market": leg.market, "side": leg.side, "price": leg.price, "size": leg.size} for leg in legs
        ],
        "expiry": 0,
        "salt": salt,
        "signature": sig_hex(sig),
    }


def test_bundle__filled_whole_or_no_match(net: Net) -> None:
    c = net.client
    c.post("/v1/orders", json=body(order(0, ETH, SIDE_SELL, 100, 50)))
    c.post("/v1/orders", json=body(order(2, BTC, SIDE_BUY, 5000, 5)))
    legs = [Leg(ETH, SIDE_BUY, 100, 30), Leg(BTC, SIDE_SELL, 5000, 2)]
    r = c.post("/v1/bundles", json=bundle_body(1, legs))
    out = r.json()
    assert r.status_code == 200 and [(f["market"], f["size"]) for f in out["fills"]] == [(ETH, 30), (BTC, 2)]
    assert verify_receipt(
        CONFIG, bytes.fromhex(out["hash"][2:]), out["seq"], net.l1.address, bytes.fromhex(out["receipt"][2:])
    )
    assert c.get(f"/v1/orders/{out['digest']}").json()["kind"] == "bundle"
    r = c.post("/v1/bundles", json=bundle_body(1, [Leg(ETH, SIDE_BUY, 100, 30)], salt=1))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "no_match")
    assert net.post_batch()
    assert c.get(f"/v1/transactions/{out['hash']}").json()["status"] == "batched"


def test_stream__order_and_fill__book_and_fill_events_over_the_websocket(net: Net) -> None:
    with net.client as c, c.websocket_connect("/v1/stream") as ws:
        c.post("/v1/orders", json=body(order(0, ETH, SIDE_SELL, 100, 50)))
        out = c.post("/v1/orders", json=body(order(1, ETH, SIDE_BUY, 100, 20))).json()
        first, second, third = ws.receive_json(), ws.receive_json(), ws.receive_json()
        assert (first["type"], first["change"], first["size"]) == ("book", "added", 50)
        assert (second["type"], second["tx_hash"], second["size"]) == ("fill", out["fills"][0]["tx_hash"], 20)
        assert (third["type"], third["change"], third["remaining"]) == ("book", "reduced", 30)


def test_restart__same_log__books_orders_and_pending_fills_survive(net: Net) -> None:
    c = net.client
    c.post("/v1/orders", json=body(order(0, ETH, SIDE_SELL, 100, 50)))
    c.post("/v1/orders", json=body(order(0, ETH, SIDE_SELL, 101, 50, salt=1)))
    fill = c.post("/v1/orders", json=body(order(1, ETH, SIDE_BUY, 100, 30))).json()["fills"][0]
    c.post("/v1/orders", json=body(order(2, BTC, SIDE_BUY, 4990, 3)))
    book_before = [c.get(f"/v1/markets/{m}/book").json() for m in (ETH, BTC)]
    net.restart()
    c = net.client
    assert [c.get(f"/v1/markets/{m}/book").json() for m in (ETH, BTC)] == book_before
    assert c.get(f"/v1/transactions/{fill['tx_hash']}").json()["status"] == "pending"
    assert c.get(f"/v1/orders/{digest(order(0, ETH, SIDE_SELL, 100, 50))}").json()["resting"] == 20
    assert net.post_batch()  # the acknowledged fill reaches L1 after the restart
    assert c.get(f"/v1/transactions/{fill['tx_hash']}").json()["status"] == "batched"


def test_revert__batch_with_fills_reverted__fills_pending_again_and_reincluded(net: Net) -> None:
    c = net.client
    c.post("/v1/orders", json=body(order(0, ETH, SIDE_SELL, 100, 50)))
    fill = c.post("/v1/orders", json=body(order(1, ETH, SIDE_BUY, 100, 30))).json()["fills"][0]
    assert net.post_batch()
    batch = c.get(f"/v1/transactions/{fill['tx_hash']}").json()["batch_index"]
    net.l1.log.append(net.l1.rollup.revert_from(batch))
    net.poll()
    assert c.get(f"/v1/transactions/{fill['tx_hash']}").json()["status"] == "pending"
    assert c.get("/v1/markets/0/book").json()["asks"] == [{"price": 100, "size": 20}]
    assert net.post_batch()
    assert c.get(f"/v1/transactions/{fill['tx_hash']}").json()["status"] == "batched"
    assert c.get(f"/v1/orders/{digest(order(0, ETH, SIDE_SELL, 100, 50))}").json()["filled_confirmed"] == 30


def test_post_order__more_resting_orders_than_the_node_keeps__409_too_many_open_orders(
    tmp_path: Path,
) -> None:
    l1 = ClockedL1(FakeRollup())
    for message in (SetMarket(ETH, ETH_PARAMS), SetCommittee(COMMITTEE)):
        l1.log.append(l1.rollup.message(encode_message(message)))
    l1.deposit(A, 1_000_000)
    n = Net(tmp_path / "s.sqlite", l1, NodeOptions(max_open_orders=2))
    assert n.post_batch()
    n.node.intake.submit(OracleUpdate(ETH, tuple(price(i, ETH, 100, 100, T0) for i in range(3))))
    assert n.post_batch()
    for i in range(2):
        assert n.client.post("/v1/orders", json=body(order(0, ETH, SIDE_BUY, 90 - i, 10))).status_code == 200
    r = n.client.post("/v1/orders", json=body(order(0, ETH, SIDE_BUY, 80, 10)))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "too_many_open_orders")
    n.close()


def test_overload__orders_503_cancels_still_admitted(tmp_path: Path) -> None:
    l1 = ClockedL1(FakeRollup())
    for message in (SetMarket(ETH, ETH_PARAMS), SetCommittee(COMMITTEE)):
        l1.log.append(l1.rollup.message(encode_message(message)))
    for trader in (A, B):
        l1.deposit(trader, 1_000_000)
    n = Net(tmp_path / "s.sqlite", l1, NodeOptions(max_pending=2, reserve_pending=1))
    assert n.post_batch()
    n.node.intake.submit(OracleUpdate(ETH, tuple(price(i, ETH, 100, 100, T0) for i in range(3))))
    assert n.post_batch()
    resting = order(1, ETH, SIDE_BUY, 90, 10)
    assert n.client.post("/v1/orders", json=body(resting)).status_code == 200
    for i in range(2):
        n.client.post("/v1/orders", json=body(order(0, ETH, SIDE_SELL, 100, 10, salt=i)))
        n.client.post("/v1/orders", json=body(order(1, ETH, SIDE_BUY, 100, 10, salt=i)))
    r = n.client.post("/v1/orders", json=body(order(1, ETH, SIDE_BUY, 95, 10)))
    assert (r.status_code, r.json()["error"]["code"]) == (503, "overloaded")
    assert n.client.post("/v1/orders/cancel", json=cancel_body(cancel(1, resting))).status_code == 200
    n.close()


def test_revert__fill_invalid_in_the_new_order__dropped_then_revived_when_it_applies_again(
    tmp_path: Path,
) -> None:
    """A's margin came from another sequencer's batch; a fraud proof reverts it and our batch
    after it. Re-planned first, our fill no longer applies and is dropped; the other sequencer's
    transfer comes back after it; the books are rebuilt, both orders trade again, and the very
    same Fill (same hash: its receipt holds) is pending again and reaches L1."""
    l1 = ClockedL1(FakeRollup())
    for message in (SetMarket(ETH, ETH_PARAMS), SetCommittee(COMMITTEE)):
        l1.log.append(l1.rollup.message(encode_message(message)))
    l1.deposit(A, 100)
    l1.deposit(B, 1_000_000)
    l1.deposit(D, 1_000_000)
    n = Net(tmp_path / "s.sqlite", l1, NodeOptions())
    assert n.post_batch()
    n.node.intake.submit(OracleUpdate(ETH, tuple(price(i, ETH, 100, 100, T0) for i in range(3))))
    assert n.post_batch()
    gift = sign_transfer(trader_key(3), A, 500_000, 0, CONFIG)
    foreign = build_batch(
        n.node.chain.state,
        n.node.chain.queue,
        [PendingTx(0, tx_hash(encode_tx(gift)), encode_tx(gift), gift)],
        CONFIG,
        l2_time=T0,
    )
    assert foreign is not None
    l1.log.append(l1.rollup.append(foreign, sequencer=b"\xee" * 20))
    n.poll()
    foreign_index = len(l1.rollup.batches) - 1
    ask, bid = order(0, ETH, SIDE_SELL, 100, 1000), order(1, ETH, SIDE_BUY, 100, 1000)
    n.client.post("/v1/orders", json=body(ask))
    fill = n.client.post("/v1/orders", json=body(bid)).json()["fills"][0]
    assert n.post_batch()
    l1.log.append(l1.rollup.revert_from(foreign_index))
    n.poll()
    status = n.client.get(f"/v1/transactions/{fill['tx_hash']}").json()
    assert status["status"] == "pending" and status["seq"] > fill["seq"]
    for signed in (ask, bid):
        view = n.client.get(f"/v1/orders/{digest(signed)}").json()
        assert (view["status"], view["filled"]) == ("filled", 1000)
        assert [f["tx_hash"] for f in view["fills"]] == [fill["tx_hash"]]
    assert n.post_batch()
    assert n.client.get(f"/v1/transactions/{fill['tx_hash']}").json()["status"] == "batched"
    assert n.client.get(f"/v1/transactions/0x{tx_hash(encode_tx(gift)).hex()}").json()["status"] == "batched"
    n.close()
