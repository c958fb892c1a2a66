"""A Cancel forced through the L1 queue, as the sequencer meets it: the order leaves its book as
soon as the follower sees the entry and fills no more; fills of it acknowledged before stay
pending and go into the batch before the entry (docs/protocol.md section 8), across a restart too
(a node on the in-memory L1 with the exchange's markets and prices). Then the SDK and
`rollup trade force-cancel` queue one through the Bridge on eth-tester, trusting L1 alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from exchange_fixtures import ETH, TRADERS, cancel, order, trader_key

from contracts.l1 import Web3L1
from prover.watcher import Watcher
from sequencer.builder import build_batch
from sequencer.client import L1ExitClient
from sequencer.node import NodeOptions
from sequencer.stf.codec import decode_tx, encode_tx, tx_hash
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import order_digest, sign_cancel
from sequencer.stf.errors import BadSignature, OrderCancelled
from sequencer.stf.state import get_order_state
from sequencer.stf.types import Cancel, Deposit, Fill, ForcedTx, Order, OrderState, SignedOrder
from sequencer.trade_cli import main as trade_main
from tests.sequencer.test_api_exchange import CONFIG, T0, Net, body, digest
from tests.sequencer.test_forced_exit import OTHER, USER, USER_KEY, exit_client, post, started
from tests.sequencer.test_keeper_node import make_net

A, B, C = TRADERS[:3]
ASK = order(1, ETH, SIDE_SELL, 100, 200)
"""B's resting ask, which B force-cancels."""


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = make_net(tmp_path / "seq.sqlite", NodeOptions(max_pending=200))
    yield n
    n.close()


def force(n: Net, inner: Cancel) -> ForcedTx:
    """Queue `inner` with the Bridge's `force_tx` (the next queue entry); returns its ForcedTx."""
    entry = n.l1.rollup.forced(encode_tx(inner))
    n.l1.log.append(entry)
    return ForcedTx(entry.index, entry.signed_tx)


def place(n: Net, signed: SignedOrder) -> dict[str, object]:
    r = n.client.post("/v1/orders", json=body(signed))
    assert r.status_code == 200, r.text
    out: dict[str, object] = r.json()
    return out


def rest_and_fill_part(n: Net) -> str:
    """B rests ASK; A takes 100 of it (the fill is pending); returns the fill's hash."""
    assert place(n, ASK)["status"] == "resting"
    (fill,) = place(n, order(0, ETH, SIDE_BUY, 100, 100))["fills"]  # type: ignore[misc]
    assert fill["status"] == "pending"
    return str(fill["tx_hash"])


def batch_txs(n: Net) -> list[object]:
    return [decode_tx(raw) for raw in n.node.chain.batches[-1].txs]


def test_forced_cancel__pending_fill_of_the_order__off_the_book_at_once_fill_batched_before_it(
    net: Net,
) -> None:
    fill_hash = rest_and_fill_part(net)
    forced = force(net, cancel(1, ASK))

    net.poll()  # the follower sees the entry

    view = net.client.get(f"/v1/orders/{digest(ASK)}").json()
    assert (view["status"], view["resting"], view["filled"]) == ("cancelled", 0, 100)
    assert net.client.get("/v1/markets/0/book").json()["asks"] == []
    late = place(net, order(2, ETH, SIDE_BUY, 100, 50))  # crosses where the ask was: nothing fills
    assert (late["status"], late["fills"]) == ("resting", [])
    assert net.client.get(f"/v1/transactions/{fill_hash}").json()["status"] == "pending"

    assert net.post_batch()

    txs = batch_txs(net)
    assert [type(tx) for tx in txs] == [Fill, ForcedTx] and txs[1] == forced
    assert net.client.get(f"/v1/transactions/{fill_hash}").json()["status"] == "batched"
    leaf = get_order_state(net.node.chain.state, order_digest(ASK.order, CONFIG))
    assert leaf == OrderState(100, True)
    assert net.client.get(f"/v1/orders/{digest(ASK)}").json()["filled_confirmed"] == 100


def test_forced_cancel__seen_then_restart__fill_still_before_it_later_entries_after_it(
    net: Net, tmp_path: Path
) -> None:
    fill_hash = rest_and_fill_part(net)
    forced = force(net, cancel(1, ASK))
    net.l1.deposit(C, 5)  # queued after the forced cancel: it goes after it too
    net.poll()

    net.restart()  # the view is rebuilt from the log: the fill is not dropped

    assert net.client.get(f"/v1/transactions/{fill_hash}").json()["status"] == "pending"
    assert net.client.get(f"/v1/orders/{digest(ASK)}").json()["status"] == "cancelled"
    assert net.post_batch()
    txs = batch_txs(net)
    assert [type(tx) for tx in txs] == [Fill, ForcedTx, Deposit] and txs[1] == forced
    assert net.node.chain.fraud is None
    assert get_order_state(net.node.chain.state, order_digest(ASK.order, CONFIG)) == OrderState(100, True)


def test_forced_cancel__no_fill_pending__consumed_first_order_never_fills(net: Net) -> None:
    assert place(net, ASK)["status"] == "resting"
    forced = force(net, cancel(1, ASK))
    net.poll()
    assert place(net, order(0, ETH, SIDE_BUY, 100, 100))["fills"] == []
    assert net.post_batch()
    assert batch_txs(net) == [forced]
    assert get_order_state(net.node.chain.state, order_digest(ASK.order, CONFIG)) == OrderState(0, True)
    assert net.client.get(f"/v1/orders/{digest(ASK)}").json()["status"] == "cancelled"


def test_forced_cancel__signed_by_another_trader__order_stays_and_fills(net: Net) -> None:
    assert place(net, ASK)["status"] == "resting"
    forged = Cancel(ASK.order, sign_cancel(trader_key(0), ASK.order, CONFIG))
    forced = force(net, forged)
    net.poll()
    assert net.client.get(f"/v1/orders/{digest(ASK)}").json()["status"] == "resting"
    (fill,) = place(net, order(0, ETH, SIDE_BUY, 100, 100))["fills"]  # type: ignore[misc]
    assert net.post_batch()
    assert forced in batch_txs(net)
    assert net.client.get(f"/v1/transactions/{fill['tx_hash']}").json()["status"] == "batched"
    assert get_order_state(net.node.chain.state, order_digest(ASK.order, CONFIG)) == OrderState(100, False)


def test_build_batch__the_fills_do_not_fit__cancel_at_its_place_later_fill_dropped_with_its_reason(
    net: Net,
) -> None:
    """Every due entry goes into the batch (the forced-inclusion deadline is never put at risk):
    a fill of the order that the batch cannot hold before the cancel is refused after it."""
    rest_and_fill_part(net)
    (second,) = place(net, order(2, ETH, SIDE_BUY, 100, 50))["fills"]  # type: ignore[misc]
    forced = force(net, cancel(1, ASK))
    net.poll()
    node = net.node
    pending = node.mempool.pending
    built = build_batch(node.chain.state, node.chain.queue, pending, CONFIG, l2_time=T0, max_txs=2)
    assert built is not None
    assert [decode_tx(raw) for raw in built.txs] == [pending[0].tx, forced]  # room for one fill

    net.l1.append_batch(
        built.txs, built.roots, node.chain.tip_root, node.chain.queue_end, built.queue_end, built.l2_time
    )
    net.poll()
    assert net.post_batch() is False  # the second fill no longer applies: dropped, with its reason
    status = net.client.get(f"/v1/transactions/{second['tx_hash']}").json()
    assert status["status"] == "dropped" and status["reason"].startswith("order_cancelled")


# ---- the SDK and the CLI, over the contracts on eth-tester ----


def test_force_cancel__through_l1_alone__batched_verified_second_one_and_others_refused_typed(
    tmp_path: Path,
) -> None:
    with started(tmp_path) as (h, node, run):
        user = exit_client(h)
        ask = Order(USER, 0, SIDE_SELL, 3_000, 1_000, 0, 0, 7)
        forced = user.force_cancel(ask)
        assert (forced.queue_index, forced.nonce) == (1, -1)
        assert decode_tx(forced.signed_tx) == Cancel(ask, sign_cancel(USER_KEY, ask, h.config))

        post(node, run)

        batch = node.chain.batches[-1]
        assert [decode_tx(raw) for raw in batch.txs] == [ForcedTx(1, forced.signed_tx)]
        assert forced.tx_hash == "0x" + tx_hash(batch.txs[0]).hex()
        assert get_order_state(node.chain.state, order_digest(ask, h.config)) == OrderState(0, True)
        l1 = Web3L1.over(h.w3, h.deployment)
        watcher = Watcher(h.config, l1, l1, start_block=h.deployment.deploy_block)
        watcher.step()
        assert watcher.chain.fraud is None and watcher.chain.tip_root == node.chain.tip_root

        queued = h.bridge.queue_length()
        with pytest.raises(OrderCancelled):
            user.force_cancel(ask)  # L1 data shows it cancelled already
        with pytest.raises(BadSignature):
            user.force_cancel(replace(ask, trader=OTHER))  # not this trader's order
        assert h.bridge.queue_length() == queued


def test_trade_cli__force_cancel_by_fields__queued_with_no_sequencer_reachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with started(tmp_path) as (h, node, run):

        def connect(
            cls: type[L1ExitClient], url: str, deployment: str, key: bytes, *, l1_key: bytes | None = None
        ) -> L1ExitClient:
            return cls(Web3L1.over(h.w3, h.deployment, sender=h.account(6)), key)

        monkeypatch.setattr(L1ExitClient, "connect", classmethod(connect))
        nowhere = ["--sequencer", "http://127.0.0.1:1", "--key", "0x" + USER_KEY.hex(), "force-cancel"]
        fields = ["--market", "0", "--side", "buy", "--price", "2990", "--size", "1000", "--salt", "3"]
        trade_main([*nowhere, *fields])
        out = json.loads(capsys.readouterr().out.splitlines()[-1])
        bid = Order(USER, 0, SIDE_BUY, 2_990, 1_000, 0, 0, 3)
        assert out["digest"] == "0x" + order_digest(bid, h.config).hex() and out["queue_index"] == 1

        post(node, run)
        assert get_order_state(node.chain.state, order_digest(bid, h.config)).cancelled
        view = node.batch_view(node.chain.batches[-1].header.index)
        assert view is not None and out["tx_hash"] in view.tx_hashes

        with pytest.raises(SystemExit) as done:  # cancelled already: the state machine's code
            trade_main([*nowhere, *fields])
        assert done.value.code == 1
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["error"]["code"] == "order_cancelled"
        with pytest.raises(SystemExit) as done:
            trade_main([*nowhere, "--market", "0"])
        assert "needs --digest or the order's fields" in str(done.value.code)
