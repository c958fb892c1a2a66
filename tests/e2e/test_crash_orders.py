"""kill -9 of the sequencer under order traffic loses no acknowledged order and no acknowledged fill."""

from __future__ import annotations

import random
import threading
from typing import Any

import httpx
import pytest

from devnet.orchestrator import SEQ_A, Network, get_json
from devnet.procs import wait_until
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import address_of, sign_order
from sequencer.stf.types import Order
from tests.e2e.helpers import TOKEN_UNIT, Clients

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LOT = 1_000
"""The devnet perpetuals' lot."""


def order_body(key: bytes, order: Order, clients: Clients) -> dict[str, Any]:
    sig = sign_order(key, order, clients.config).sig
    return {
        "trader": "0x" + order.trader.hex(),
        "market": order.market,
        "side": order.side,
        "price": order.price,
        "size": order.size,
        "flags": order.flags,
        "expiry": order.expiry,
        "salt": order.salt,
        "signature": "0x"
        + sig.r.to_bytes(32, "big").hex()
        + sig.s.to_bytes(32, "big").hex()
        + bytes([sig.v]).hex(),
    }


def test_sequencer__kill9_under_order_traffic__every_acknowledged_order_and_fill_survives(
    network: Network, clients: Clients
) -> None:
    seq = network.start_sequencer("sequencer-a", SEQ_A, batch_max_txs=64, batch_interval_ms=200)
    network.start_oracle("oracle", seq, interval_ms=1000)
    keys = clients.fund(4, 1_000 * TOKEN_UNIT)

    def ready() -> bool:
        markets = get_json(f"{seq.url}/v1/markets")
        funded = get_json(f"{seq.url}/v1/status")["next_deposit_index"] >= 7  # 3 messages, 4 deposits
        return funded and len(markets) == 2 and markets[0]["mark_price"] > 0

    wait_until(ready, 60, what="markets, prices and deposits")
    acked_orders: dict[str, str] = {}
    acked_fills: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def trader(i: int) -> None:
        """Post batches of 8 orders around the mark, as fast as they are answered."""
        rng = random.Random(i)
        key = keys[i]
        salt = 0
        with httpx.Client(timeout=5.0) as http:
            while not stop.is_set():
                try:
                    mark = http.get(f"{seq.url}/v1/markets").json()[0]["mark_price"]
                    orders = []
                    for _ in range(8):
                        side = rng.choice((SIDE_BUY, SIDE_SELL))
                        offset = rng.randint(-3, 3)
                        salt += 1
                        order = Order(
                            address_of(key),
                            0,
                            side,
                            mark + offset,
                            rng.randint(1, 5) * LOT,
                            0,
                            0,
                            salt + 1000 * i,
                        )
                        orders.append(order_body(key, order, clients))
                    r = http.post(f"{seq.url}/v1/orders/batch", json={"orders": orders})
                    if r.status_code != 200:
                        continue
                    with lock:
                        for item in r.json()["results"]:
                            if item["result"] is not None:
                                acked_orders[item["result"]["digest"]] = item["result"]["status"]
                                acked_fills.update(f["tx_hash"] for f in item["result"]["fills"])
                except httpx.HTTPError:
                    stop.wait(0.05)  # down (killed or restarting): this batch's outcome is unknown

    threads = [threading.Thread(target=trader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acked_orders) >= 200, 90, what="200 acknowledged orders before the crash")
        seq.process.kill9()
        with lock:
            at_crash = dict(acked_orders)
            fills_at_crash = set(acked_fills)
        network.restart("sequencer-a")
        wait_until(
            lambda: len(acked_orders) >= len(at_crash) + 100, 90, what="100 more orders after the restart"
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    assert fills_at_crash, "the traffic crossed: there were fills before the crash"
    for digest in acked_orders:  # every acknowledged order is known, with its fills
        assert httpx.get(f"{seq.url}/v1/orders/{digest}").status_code == 200
    resting_at_crash = [d for d, status in at_crash.items() if status in ("resting", "partially_filled")]
    assert resting_at_crash, "orders rested at the crash: the books had to be rebuilt"
    for d in resting_at_crash:  # resting at the crash: still resting, or an outcome recorded since
        view = get_json(f"{seq.url}/v1/orders/{d}")
        assert view["status"] in {"resting", "partially_filled", "filled", "rejected", "cancelled"}
        if view["status"] == "cancelled":  # only self-trade prevention cancels here
            assert view["reason"].startswith("self_trade")
        if view["status"] in {"resting", "partially_filled"}:
            assert view["resting"] == view["size"] - view["filled"]

    what = "every acknowledged fill to be in an L1 batch"
    wait_until(lambda: acked_fills <= clients.hashes_on_l1(), 90, interval=0.5, what=what)
    status = get_json(f"{seq.url}/v1/status")
    assert status["halted_on_fraud"] is None
