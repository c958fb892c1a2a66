"""The sequencer API over a real node whose L1 is an in-memory fake: HTTP codes, bodies, effects."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from contracts.l1 import Mined
from sequencer.api.app import create_app
from sequencer.builder import BuiltBatch
from sequencer.node import NodeOptions, SequencerNode
from sequencer.receipts import verify_batch_receipt, verify_receipt
from sequencer.stf.codec import encode_tx
from sequencer.stf.eip712 import address_of, sign_transfer, sign_withdraw
from sequencer.stf.l1types import L1Event
from sequencer.store import Store
from sequencer.stream import MAX_QUEUED as STREAM_MAX_QUEUED
from sequencer.stream import Stream
from tests.sequencer.test_chain import ADDRS, CONFIG, KEYS, L2_TIME, FakeRollup

SEQ_KEY = b"\x09" * 32


class FakeL1:
    """`L1Reader` + `L1Writer` over `FakeRollup` (blocks are event positions)."""

    def __init__(self, rollup: FakeRollup) -> None:
        self.rollup = rollup
        self.address = address_of(SEQ_KEY)
        self.log: list[L1Event] = []
        self.appends = 0

    def head_block(self) -> int:
        return len(self.log)

    def block_hash(self, number: int) -> bytes | None:
        return number.to_bytes(32, "big") if number <= len(self.log) else None

    def events(self, from_block: int, to_block: int) -> list[L1Event]:
        return self.log[max(from_block, 1) - 1 : to_block]

    def ensure_bonded(self, bond_wei: int) -> None:
        return None

    def deposit(self, to: bytes, amount: int) -> None:
        self.log.append(self.rollup.deposit(to, amount))

    def head_timestamp(self) -> int:
        return L2_TIME

    def append_batch(
        self,
        txs: list[bytes],
        roots: list[bytes],
        prev_root: bytes,
        queue_start: int,
        queue_end: int,
        l2_time: int,
    ) -> Mined:
        built = BuiltBatch(
            txs=txs, roots=roots, queue_end=queue_end, l2_time=l2_time, included=[], skipped=[]
        )
        self.log.append(self.rollup.append(built, self.address))
        self.appends += 1
        return Mined(b"\x01" * 32, len(self.log))


def sig_hex(tx: object) -> str:
    r, s, v = tx.r, tx.s, tx.v  # type: ignore[attr-defined]
    return "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + bytes([v]).hex()


def body(tx: object) -> dict[str, object]:
    return {
        "from": "0x" + tx.sender.hex(),  # type: ignore[attr-defined]
        "to": "0x" + tx.to.hex(),  # type: ignore[attr-defined]
        "amount": tx.amount,  # type: ignore[attr-defined]
        "nonce": tx.nonce,  # type: ignore[attr-defined]
        "signature": sig_hex(tx),
    }


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, SequencerNode, FakeL1]]:
    l1 = FakeL1(FakeRollup())
    l1.deposit(ADDRS[0], 1000)
    store = Store(tmp_path / "seq.sqlite")
    node = SequencerNode(
        CONFIG, store, l1, l1, start_block=1, options=NodeOptions(max_pending=3), receipt_key=SEQ_KEY
    )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(node.start())
    assert loop.run_until_complete(node.poster.build_and_post())  # the deposit
    client = TestClient(create_app(node, max_body_bytes=4096))
    node._test_loop = loop  # type: ignore[attr-defined]
    yield client, node, l1
    loop.close()
    store.close()


def test_post_transfer__valid__acknowledged_pending_then_batched(setup) -> None:  # type: ignore[no-untyped-def]
    client, node, l1 = setup
    tx = sign_transfer(KEYS[0], ADDRS[1], 250, 0, CONFIG)
    r = client.post("/v1/transfers", json=body(tx))
    assert r.status_code == 200 and r.json()["status"] == "pending"
    h = r.json()["hash"]
    ack = r.json()
    assert ack["sequencer"] == "0x" + l1.address.hex()
    assert verify_receipt(
        CONFIG, bytes.fromhex(h[2:]), ack["seq"], l1.address, bytes.fromhex(ack["receipt"][2:])
    )
    assert not verify_receipt(
        CONFIG, bytes.fromhex(h[2:]), ack["seq"] + 1, l1.address, bytes.fromhex(ack["receipt"][2:])
    )
    assert client.get(f"/v1/transactions/{h}").json()["status"] == "pending"
    acct = client.get(f"/v1/accounts/0x{ADDRS[0].hex()}").json()
    assert (acct["collateral"], acct["pending_collateral"], acct["pending_nonce"]) == ("1000", "750", 1)
    assert node._test_loop.run_until_complete(node.poster.build_and_post())  # type: ignore[attr-defined]
    status = client.get(f"/v1/transactions/{h}").json()
    assert status["status"] == "batched" and status["batch_index"] == 1
    assert client.get(f"/v1/accounts/0x{ADDRS[1].hex()}").json()["collateral"] == "250"
    batch = client.get("/v1/batches/1").json()
    assert batch["tx_hashes"] == [h] and batch["tx_count"] == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"amount": 251}, 400, "bad_signature"),  # signed for 250
        ({"nonce": 7}, 400, "bad_signature"),
        ({"to": "0x" + ADDRS[0].hex()}, 400, "bad_signature"),
        ({"amount": -1}, 400, "malformed"),
        ({"signature": "0x1234"}, 400, "malformed"),
        ({"from": "0xnothex"}, 400, "malformed"),
        ({"extra": 1}, 400, "malformed"),
    ],
)
def test_post_transfer__bad_fields__refused_with_code_and_nothing_changes(
    setup, change, status, code
) -> None:  # type: ignore[no-untyped-def]
    client, node, _ = setup
    b = {**body(sign_transfer(KEYS[0], ADDRS[1], 250, 0, CONFIG)), **change}
    r = client.post("/v1/transfers", json=b)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert len(node.mempool) == 0 and node.store.counts() == {}


def test_post_transfer__rule_breaks__409_codes(setup) -> None:  # type: ignore[no-untyped-def]
    client, node, _ = setup
    r = client.post("/v1/transfers", json=body(sign_transfer(KEYS[0], ADDRS[1], 10, 3, CONFIG)))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "bad_nonce")
    r = client.post("/v1/transfers", json=body(sign_transfer(KEYS[0], ADDRS[1], 1001, 0, CONFIG)))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "insufficient_balance")
    r = client.post("/v1/transfers", json=body(sign_transfer(KEYS[0], ADDRS[0], 1, 0, CONFIG)))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "self_transfer")
    r = client.post("/v1/withdrawals", json=body(sign_withdraw(KEYS[0], bytes(20), 1, 0, CONFIG)))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_recipient")
    assert node.store.counts() == {}


def test_post__garbage_and_oversized_bodies__400_and_413(setup) -> None:  # type: ignore[no-untyped-def]
    client, node, _ = setup
    r = client.post("/v1/transfers", content=b"{not json", headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")
    r = client.post("/v1/transactions", json={"raw": "0x02" + "00" * 10})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")
    r = client.post("/v1/transactions", json={"raw": "0x" + "ab" * 3000})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    dep = encode_tx(__import__("sequencer.stf.types", fromlist=["Deposit"]).Deposit(0, ADDRS[0], 5))
    r = client.post("/v1/transactions", json={"raw": "0x" + dep.hex()})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")
    assert node.store.counts() == {}
    # the server still answers; health is 503 here only because no driver loop runs in this test
    assert client.get("/health").json()["loops"] == {"follower": False, "builder": False, "keeper": False}


def test_post__same_tx_twice__idempotent_and_mempool_full__503(setup) -> None:  # type: ignore[no-untyped-def]
    client, node, _ = setup
    first = client.post("/v1/transfers", json=body(sign_transfer(KEYS[0], ADDRS[1], 1, 0, CONFIG))).json()
    again = client.post("/v1/transfers", json=body(sign_transfer(KEYS[0], ADDRS[1], 1, 0, CONFIG))).json()
    assert first == again
    for n in (1, 2):
        assert (
            client.post(
                "/v1/transfers", json=body(sign_transfer(KEYS[0], ADDRS[1], 1, n, CONFIG))
            ).status_code
            == 200
        )
    r = client.post("/v1/transfers", json=body(sign_transfer(KEYS[0], ADDRS[1], 1, 3, CONFIG)))
    assert (r.status_code, r.json()["error"]["code"]) == (503, "overloaded")
    assert node.store.counts() == {"pending": 3}


def test_reads__unknown__404(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = setup
    assert client.get("/v1/batches/99").status_code == 404
    assert client.get("/v1/transactions/0x" + "00" * 32).json()["error"]["code"] == "not_found"
    assert client.get("/openapi.json").status_code == 200
    assert "rollup_txs_accepted_total" in client.get("/metrics").text


def test_stream__websocket_subscriber__receives_published_events(setup) -> None:  # type: ignore[no-untyped-def]
    client, node, _ = setup
    with client as c, c.websocket_connect("/v1/stream") as ws:
        on_app_loop = c.portal.call  # the subscriber's queue lives on the app's loop
        assert on_app_loop(lambda: len(node.stream.subscribers)) == 1
        on_app_loop(node.stream.publish, {"type": "batch", "index": 7})
        on_app_loop(node.stream.publish, {"type": "revert", "from_index": 7, "to_index": 7})
        assert ws.receive_json() == {"type": "batch", "index": 7}
        assert ws.receive_json()["type"] == "revert"


def test_stream_publish__subscriber_too_far_behind__dropped_not_buffered() -> None:
    stream = Stream()
    slow, fast = stream.subscribe(), stream.subscribe()
    for i in range(STREAM_MAX_QUEUED):
        stream.publish({"i": i})
        fast.get_nowait()
    stream.publish({"i": "one too many"})
    assert stream.subscribers == {fast}
    assert slow.qsize() == STREAM_MAX_QUEUED + 1 and list(slow._queue)[-1] is None  # told it was dropped


def test_post_batch__mixed_items__each_acknowledged_or_refused_in_one_commit(setup) -> None:  # type: ignore[no-untyped-def]
    client, node, l1 = setup
    good = [encode_tx(sign_transfer(KEYS[0], ADDRS[1], 10, n, CONFIG)) for n in range(3)]
    stale = encode_tx(sign_transfer(KEYS[0], ADDRS[1], 10, 0, CONFIG))
    broke = encode_tx(sign_transfer(KEYS[2], ADDRS[0], 10, 0, CONFIG))  # no collateral
    raws = ["0x" + r.hex() for r in (good[0], good[1], broke, good[2], good[0], b"\x02\x00")]
    commits = []
    original = node.store.add_many
    node.store.add_many = lambda rows, **kw: commits.append(len(rows)) or original(rows, **kw)
    r = client.post("/v1/transactions/batch", json={"raws": raws})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["error"]["code"] if x["error"] else "ok" for x in results] == [
        "ok",
        "ok",
        "insufficient_balance",
        "ok",
        "ok",
        "malformed",
    ]
    assert results[4]["hash"] == results[0]["hash"]  # a repeat gets the first acknowledgement
    assert commits == [3]  # one durable commit for the three new ones
    acked = [(bytes.fromhex(x["hash"][2:]), x["seq"]) for x in results if x["error"] is None]
    signature = bytes.fromhex(r.json()["receipt"][2:])
    assert verify_batch_receipt(CONFIG, acked, l1.address, signature)
    assert not verify_batch_receipt(CONFIG, acked[:-1], l1.address, signature)
    assert node.account_view(ADDRS[0]).pending_nonce == 3
    r = client.post("/v1/transactions/batch", json={"raws": ["0x" + stale.hex()]})
    assert r.json()["results"][0]["hash"] == results[0]["hash"]


def test_post_batch__log_commit_fails__nothing_acknowledged_and_view_unchanged(setup) -> None:  # type: ignore[no-untyped-def]
    _, node, _ = setup
    before = node.account_view(ADDRS[0])

    def disk_full(rows: object, **kw: object) -> list[int]:
        raise OSError("disk full")

    node.store.add_many = disk_full
    with pytest.raises(OSError):
        node.intake.submit_many(
            [encode_tx(sign_transfer(KEYS[0], ADDRS[1], 10, n, CONFIG)) for n in range(2)]
        )
    assert node.account_view(ADDRS[0]) == before and len(node.mempool) == 0


def test_post__resubmitting_a_dropped_tx__409_dropped_and_no_new_receipt(setup) -> None:  # type: ignore[no-untyped-def]
    client, node, _ = setup
    tx = sign_transfer(KEYS[0], ADDRS[1], 10, 0, CONFIG)
    first = client.post("/v1/transfers", json=body(tx)).json()
    node.store.drop(first["seq"], "bad_nonce: after a revert")
    node.mempool.remove_included({bytes.fromhex(first["hash"][2:])})
    r = client.post("/v1/transfers", json=body(tx))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "dropped")
