"""The lean request path of the hot endpoints answers byte for byte what the FastAPI routes answer
(results, refusals, malformed and oversized bodies, server errors), and the OpenAPI document still
describes those endpoints with their request and response schemas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from exchange_fixtures import ETH, cancel, order, trader_key
from fastapi.testclient import TestClient

from sequencer.api.app import create_app
from sequencer.node import NodeOptions
from sequencer.stf.codec import encode_tx
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.types import Cancel
from tests.sequencer.test_admission import A, exchange_net
from tests.sequencer.test_api_exchange import Net, body, cancel_body
from tests.sequencer.test_chain import CONFIG

LIMIT = 16_384
HOT = ["/v1/orders", "/v1/orders/batch", "/v1/orders/cancel", "/v1/transactions", "/v1/transactions/batch"]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, Net, Net]]:
    """Two identical nodes: one behind the lean path, one behind FastAPI's routes only."""
    lean_net, plain_net = (exchange_net(tmp_path / n, NodeOptions()) for n in ("lean.sqlite", "plain.sqlite"))
    lean = TestClient(create_app(lean_net.node, max_body_bytes=LIMIT), raise_server_exceptions=False)
    plain = TestClient(
        create_app(plain_net.node, max_body_bytes=LIMIT, lean=False), raise_server_exceptions=False
    )
    yield lean, plain, lean_net, plain_net
    lean_net.close()
    plain_net.close()


def same(pair: tuple[TestClient, TestClient, Net, Net], path: str, **request: Any) -> Any:
    """POST to both; the answers must be identical to the byte; returns the lean one."""
    lean, plain, _, _ = pair
    a, b = lean.post(path, **request), plain.post(path, **request)
    assert (a.status_code, a.headers.get("content-type"), a.content) == (
        b.status_code,
        b.headers.get("content-type"),
        b.content,
    )
    return a


def test_lean_path__orders_cancels_transactions__byte_identical_answers(pair: Any) -> None:
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    assert same(pair, "/v1/orders", json=body(ask)).json()["status"] == "resting"
    filled = same(pair, "/v1/orders", json=body(order(1, ETH, SIDE_BUY, 101, 30))).json()
    assert filled["status"] == "filled" and filled["receipt"]
    assert same(pair, "/v1/orders", json=body(ask)).json()["known"]
    batch = [
        order(1, ETH, SIDE_BUY, 100, 10, salt=1),
        order(1, 9, SIDE_BUY, 1, 10),
        order(2, ETH, SIDE_BUY, 99, 10),
    ]
    results = same(pair, "/v1/orders/batch", json={"orders": [body(o) for o in batch]}).json()["results"]
    assert [r["error"]["code"] if r["error"] else r["result"]["status"] for r in results] == [
        "filled",
        "unknown_market",
        "resting",
    ]
    assert same(pair, "/v1/orders/cancel", json=cancel_body(cancel(2, batch[2]))).json()["was_resting"]
    raw = encode_tx(sign_transfer(trader_key(3), A, 1_000, 0, CONFIG))
    assert same(pair, "/v1/transactions", json={"raw": "0x" + raw.hex()}).json()["status"] == "pending"
    raws = [encode_tx(sign_transfer(trader_key(3), A, 1_000, n, CONFIG)).hex() for n in (0, 1)]
    out = same(pair, "/v1/transactions/batch", json={"raws": ["0x" + r for r in raws]}).json()
    again = same(pair, "/v1/transactions", json={"raw": "0x" + raw.hex()}).json()
    assert out["results"][0]["seq"] == again["seq"]  # acknowledged before: its first acknowledgement


JSON = {"content-type": "application/json"}
GOOD = body(order(1, ETH, SIDE_BUY, 100, 10))


@pytest.mark.parametrize(
    ("path", "request_", "status", "code"),
    [
        ("/v1/orders", {"json": body(order(1, 9, SIDE_BUY, 1, 10))}, 404, "unknown_market"),
        (
            "/v1/orders",
            {"json": {**body(order(1, ETH, SIDE_BUY, 100, 10)), "price": "cheap"}},
            400,
            "malformed",
        ),
        ("/v1/orders", {"json": {**body(order(1, ETH, SIDE_BUY, 100, 10)), "extra": 1}}, 400, "malformed"),
        (
            "/v1/orders",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "malformed",
        ),
        ("/v1/orders", {"content": b"", "headers": {"content-type": "application/json"}}, 400, "malformed"),
        ("/v1/orders", {"content": b'{"a": 1}', "headers": {"content-type": "text/plain"}}, 400, "malformed"),
        ("/v1/orders/batch", {"json": {"orders": []}}, 400, "malformed"),
        (
            "/v1/orders/batch",
            {"json": {"orders": [body(order(1, ETH, SIDE_BUY, 100, 10))] * 60}},
            413,
            "too_large",
        ),
        ("/v1/orders/cancel", {"json": {"order": {}, "signature": "0x"}}, 400, "malformed"),
        ("/v1/transactions", {"json": {"raw": "0x02" + "00" * 10}}, 400, "malformed"),
        ("/v1/transactions", {"json": {"raw": "0x" + "ab" * 9000}}, 413, "too_large"),
        ("/v1/transactions/batch", {"json": {"raws": ["0x0"]}}, 400, "malformed"),
    ],
)
def test_lean_path__refusals__same_status_and_error_body(
    pair: Any, path: str, request_: dict[str, Any], status: int, code: str
) -> None:
    r = same(pair, path, **request_)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_lean_path__forged_cancel__same_400_bad_signature(pair: Any) -> None:
    bid = order(1, ETH, SIDE_BUY, 99, 10)
    forged = Cancel(bid.order, cancel(2, order(2, ETH, SIDE_BUY, 99, 10)).sig)
    r = same(pair, "/v1/orders/cancel", json=cancel_body(forged))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_signature")


def test_body_limit__streamed_body_over_the_limit__413_without_content_length(pair: Any) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 1024

    lean, plain, _, _ = pair
    for path in (*HOT, "/v1/transfers"):
        a = lean.post(path, content=chunks(), headers=JSON)
        b = plain.post(path, content=chunks(), headers=JSON)
        assert (a.status_code, a.content) == (b.status_code, b.content)
        assert (a.status_code, a.json()["error"]["code"]) == (413, "too_large")


def test_lean_path__handler_fails__plain_500_as_starlette_sends_it(
    pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, lean_net, plain_net = pair

    async def broken(orders: object) -> object:
        raise RuntimeError("bug")

    for net in (lean_net, plain_net):
        monkeypatch.setattr(net.node, "admit_orders", broken)
    r = same(pair, "/v1/orders", json=body(order(1, ETH, SIDE_BUY, 100, 10)))
    assert (r.status_code, r.text) == (500, "Internal Server Error")


def test_openapi__hot_endpoints_listed_with_request_and_response_schemas(pair: Any) -> None:
    lean, plain, _, _ = pair
    spec = lean.get("/openapi.json").json()
    assert spec == plain.get("/openapi.json").json()
    expected = {
        "/v1/orders": ("OrderRequest", "OrderResult"),
        "/v1/orders/batch": ("OrderBatchRequest", "OrderBatchResult"),
        "/v1/orders/cancel": ("CancelRequest", "CancelResult"),
        "/v1/transactions": ("RawTxRequest", "Accepted"),
        "/v1/transactions/batch": ("RawBatchRequest", "BatchAccepted"),
    }
    assert set(expected) == set(HOT)
    for path, (request_model, response_model) in expected.items():
        post = spec["paths"][path]["post"]
        request_schema = post["requestBody"]["content"]["application/json"]["schema"]
        response_schema = post["responses"]["200"]["content"]["application/json"]["schema"]
        assert request_schema == {"$ref": f"#/components/schemas/{request_model}"}
        assert response_schema == {"$ref": f"#/components/schemas/{response_model}"}
        assert (
            request_model in spec["components"]["schemas"] and response_model in spec["components"]["schemas"]
        )
