"""The hot endpoints' answers (`sequencer.api.answers`) are built as JSON bytes, not as response
models: they are byte for byte what the response models the routes declare would give (results,
refusals, malformed and oversized bodies, server errors); the endpoints of the lean path
(`sequencer.api.lean`) answer the same bytes whether it or FastAPI's route takes the request; each
endpoint's request is validated by the one model its route declares (the lean path's and the
protocol's too); and the OpenAPI document still describes those endpoints with their request and
response schemas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_type_hints

import orjson
import pytest
from exchange_fixtures import ETH, cancel, order, trader_key
from fastapi.testclient import TestClient
from pydantic import BaseModel

from sequencer.api.app import create_app, direct_routes, lean_routes
from sequencer.api.body import BATCH_BODY_BYTES
from sequencer.api.order_schemas import CancelResult, OrderBatchResult, OrderResult
from sequencer.api.routes import orders as orders_routes
from sequencer.api.routes import transactions as tx_routes
from sequencer.api.schemas import Accepted, BatchAccepted
from sequencer.node import NodeOptions
from sequencer.stf.codec import encode_tx
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.types import Cancel
from tests.sequencer.test_admission import A, exchange_net
from tests.sequencer.test_api_exchange import Net, body, cancel_body
from tests.sequencer.test_chain import CONFIG

LIMIT = 16_384
HOT = {
    "/v1/orders": OrderResult,
    "/v1/orders/batch": OrderBatchResult,
    "/v1/orders/cancel": CancelResult,
    "/v1/transactions": Accepted,
    "/v1/transactions/batch": BatchAccepted,
}
"""The hot endpoints and the response model each declares."""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Net]]:
    net = exchange_net(tmp_path / "node.sqlite", NodeOptions())
    yield TestClient(create_app(net.node, max_body_bytes=LIMIT), raise_server_exceptions=False), net
    net.close()


def answer(served: tuple[TestClient, Net], path: str, **request: Any) -> Any:
    """POST; a 200 must be exactly the declared response model's JSON, a refusal exactly the
    API's error body; returns the response."""
    client, _ = served
    r = client.post(path, **request)
    assert r.headers["content-type"] == "application/json"
    if r.status_code == 200:
        model: type[BaseModel] = HOT[path]
        assert r.content == model.model_validate_json(r.content).model_dump_json().encode()
    else:
        error = r.json()["error"]
        assert r.content == orjson.dumps({"error": {"code": error["code"], "message": error["message"]}})
    return r


def test_answers__orders_cancels_transactions__the_response_models_bytes(served: Any) -> None:
    ask = order(0, ETH, SIDE_SELL, 100, 50)
    assert answer(served, "/v1/orders", json=body(ask)).json()["status"] == "resting"
    filled = answer(served, "/v1/orders", json=body(order(1, ETH, SIDE_BUY, 101, 30))).json()
    assert filled["status"] == "filled" and filled["receipt"] and filled["fills"]
    assert answer(served, "/v1/orders", json=body(ask)).json()["known"]
    batch = [
        order(1, ETH, SIDE_BUY, 100, 10, salt=1),
        order(1, 9, SIDE_BUY, 1, 10),
        order(2, ETH, SIDE_BUY, 99, 10),
    ]
    results = answer(served, "/v1/orders/batch", json={"orders": [body(o) for o in batch]}).json()["results"]
    assert [r["error"]["code"] if r["error"] else r["result"]["status"] for r in results] == [
        "filled",
        "unknown_market",
        "resting",
    ]
    assert answer(served, "/v1/orders/cancel", json=cancel_body(cancel(2, batch[2]))).json()["was_resting"]
    raw = encode_tx(sign_transfer(trader_key(3), A, 1_000, 0, CONFIG))
    assert answer(served, "/v1/transactions", json={"raw": "0x" + raw.hex()}).json()["status"] == "pending"
    raws = [encode_tx(sign_transfer(trader_key(3), A, 1_000, n, CONFIG)).hex() for n in (0, 1)]
    out = answer(served, "/v1/transactions/batch", json={"raws": ["0x" + r for r in raws]}).json()
    again = answer(served, "/v1/transactions", json={"raw": "0x" + raw.hex()}).json()
    assert out["results"][0]["seq"] == again["seq"]  # acknowledged before: its first acknowledgement


JSON = {"content-type": "application/json"}


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
        ("/v1/orders", {"content": b"{not json", "headers": JSON}, 400, "malformed"),
        ("/v1/orders", {"content": b"", "headers": JSON}, 400, "malformed"),
        ("/v1/orders", {"content": b'{"a": 1}', "headers": {"content-type": "text/plain"}}, 400, "malformed"),
        ("/v1/orders/batch", {"json": {"orders": []}}, 400, "malformed"),
        (
            "/v1/orders/batch",
            {
                "content": b'{"orders": [' + b" " * BATCH_BODY_BYTES["/v1/orders/batch"] + b"]}",
                "headers": JSON,
            },
            413,
            "too_large",
        ),
        ("/v1/orders/cancel", {"json": {"order": {}, "signature": "0x"}}, 400, "malformed"),
        ("/v1/transactions", {"json": {"raw": "0x02" + "00" * 10}}, 400, "malformed"),
        ("/v1/transactions", {"json": {"raw": "0x" + "ab" * 9000}}, 413, "too_large"),
        ("/v1/transactions/batch", {"json": {"raws": ["0x0"]}}, 400, "malformed"),
    ],
)
def test_answers__refusals__status_and_the_one_error_body(
    served: Any, path: str, request_: dict[str, Any], status: int, code: str
) -> None:
    r = answer(served, path, **request_)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_answers__forged_cancel__400_bad_signature(served: Any) -> None:
    bid = order(1, ETH, SIDE_BUY, 99, 10)
    forged = Cancel(bid.order, cancel(2, order(2, ETH, SIDE_BUY, 99, 10)).sig)
    r = answer(served, "/v1/orders/cancel", json=cancel_body(forged))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_signature")


def test_body_limit__declared_or_streamed_over_the_limit__the_same_413_everywhere(served: Any) -> None:
    client, _ = served
    for path in (*HOT, "/v1/transfers", "/v1/bundles"):
        limit = BATCH_BODY_BYTES.get(path, LIMIT)  # the batches have their own

        def chunks(limit: int = limit) -> Iterator[bytes]:
            for _ in range(limit // 1024 + 1):
                yield b" " * 1024

        expected = orjson.dumps({"error": {"code": "too_large", "message": f"body over {limit} bytes"}})
        streamed = client.post(path, content=chunks(), headers=JSON)
        declared = client.post(path, content=b" " * (limit + 1), headers=JSON)
        for r in (streamed, declared):
            assert (r.status_code, r.content) == (413, expected)


INTERNAL = b'{"error":{"code":"internal","message":"internal error"}}'
"""The answer to a fault, on every path."""


def test_answers__handler_fails__500_internal_in_the_error_body(
    served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, net = served

    async def broken(orders: object) -> object:
        raise RuntimeError("bug")

    monkeypatch.setattr(net.node, "admit_orders", broken)
    r = served[0].post("/v1/orders", json=body(order(1, ETH, SIDE_BUY, 100, 10)))
    assert (r.status_code, r.content) == (500, INTERNAL)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, Net, Net]]:
    """Two identical nodes."""
    nets = [exchange_net(tmp_path / n, NodeOptions()) for n in ("a.sqlite", "b.sqlite")]
    clients = [
        TestClient(create_app(net.node, max_body_bytes=LIMIT), raise_server_exceptions=False) for net in nets
    ]
    yield clients[0], clients[1], nets[0], nets[1]
    for net in nets:
        net.close()


LEAN = {"content-type": "application/json"}
ROUTE = {"content-type": "application/json; charset=utf-8"}
"""A JSON content type the lean path leaves to FastAPI's route."""


def both(pair: tuple[TestClient, TestClient, Net, Net], path: str, payload: bytes) -> Any:
    """The same request to both nodes, one sent as the lean path takes it and one as it leaves it
    to FastAPI's route; the answers must be the same bytes; returns one."""
    lean_client, route_client, _, _ = pair
    a = lean_client.post(path, content=payload, headers=LEAN)
    b = route_client.post(path, content=payload, headers=ROUTE)
    assert (a.status_code, a.headers["content-type"], a.content) == (
        b.status_code,
        b.headers["content-type"],
        b.content,
    )
    return a


def test_lean_path__results_refusals_malformed__same_bytes_as_fastapis_routes(
    pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed: list[str] = []
    for module, name in (
        (orders_routes, "place_orders"),
        (tx_routes, "submit_raw"),
        (tx_routes, "submit_raw_batch"),
    ):
        answer = getattr(module, name)

        async def called(n: Any, body: Any, answer: Any = answer, name: str = name) -> bytes:
            routed.append(name)  # the answer, as FastAPI's route calls it
            return bytes(await answer(n, body))

        monkeypatch.setattr(module, name, called)
    asks = [order(0, ETH, SIDE_SELL, 100, 10, salt=i) for i in range(3)]
    assert (
        both(pair, "/v1/orders/batch", orjson.dumps({"orders": [body(o) for o in asks]})).status_code == 200
    )
    mixed = [order(1, ETH, SIDE_BUY, 101, 20), order(1, 9, SIDE_BUY, 1, 10), asks[0]]
    results = both(pair, "/v1/orders/batch", orjson.dumps({"orders": [body(o) for o in mixed]})).json()[
        "results"
    ]
    assert [r["error"]["code"] if r["error"] else r["result"]["status"] for r in results] == [
        "filled",
        "unknown_market",
        "filled",  # placed before: where it stands now
    ]
    assert len(results[0]["result"]["fills"]) == 2 and results[2]["result"]["known"]
    raw = "0x" + encode_tx(sign_transfer(trader_key(3), A, 1_000, 0, CONFIG)).hex()
    first = both(pair, "/v1/transactions", orjson.dumps({"raw": raw}))
    assert first.json()["status"] == "pending"
    assert both(pair, "/v1/transactions", orjson.dumps({"raw": raw})).content == first.content  # the same ack
    refused = both(pair, "/v1/transactions", orjson.dumps({"raw": "0x02" + "00" * 10}))
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "malformed")
    for malformed in (b"{not json", b"", b'{"orders": []}', orjson.dumps({"orders": [{"price": "cheap"}]})):
        r = both(pair, "/v1/orders/batch", malformed)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")
    raws = ["0x" + encode_tx(sign_transfer(trader_key(3), A, 1_000, n, CONFIG)).hex() for n in (1, 2)]
    items = both(pair, "/v1/transactions/batch", orjson.dumps({"raws": [raws[0], "0x02", raws[1]]}))
    assert [i["error"]["code"] if i["error"] else "ok" for i in items.json()["results"]] == [
        "ok",
        "malformed",
        "ok",
    ]
    for path, malformed in (
        ("/v1/transactions", b'{"raw": "0x0"}'),
        ("/v1/transactions/batch", b'{"raws": []}'),
    ):
        r = both(pair, path, malformed)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")
    # each valid request was answered once by FastAPI's route (the other node's, by the lean path)
    assert routed == ["place_orders"] * 2 + ["submit_raw"] * 3 + ["submit_raw_batch"]


def test_lean_path__handler_fails__the_same_500_internal(pair: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object) -> object:
        raise RuntimeError("bug")

    for net in pair[2:]:
        monkeypatch.setattr(net.node, "admit_orders", broken)
        monkeypatch.setattr(net.node, "admit_tx", broken)
    r = both(pair, "/v1/orders/batch", orjson.dumps({"orders": [body(order(1, ETH, SIDE_BUY, 100, 10))]}))
    assert (r.status_code, r.content) == (500, INTERNAL)
    raw = "0x" + encode_tx(sign_transfer(trader_key(3), A, 1_000, 0, CONFIG)).hex()
    r = both(pair, "/v1/transactions", orjson.dumps({"raw": raw}))
    assert (r.status_code, r.content) == (500, INTERNAL)


def test_one_validation__lean_path_and_protocol_validate_with_their_routes_request_model(
    served: Any,
) -> None:
    client, net = served
    spec = client.get("/openapi.json").json()
    route_of = {
        "/v1/orders": orders_routes.post_order,
        "/v1/orders/cancel": orders_routes.post_cancel,
        "/v1/orders/batch": orders_routes.post_orders,
        "/v1/transactions": tx_routes.post_raw,
        "/v1/transactions/batch": tx_routes.post_raw_batch,
    }
    taken = {**direct_routes(net.node), **lean_routes(net.node)}
    assert set(taken) == set(route_of)
    for path, route in taken.items():
        assert route.request is get_type_hints(route_of[path])["body"]
        request_schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert request_schema == {"$ref": f"#/components/schemas/{route.request.__name__}"}


def test_openapi__hot_endpoints_listed_with_request_and_response_schemas(served: Any) -> None:
    spec = served[0].get("/openapi.json").json()
    expected = {
        "/v1/orders": ("OrderRequest", "OrderResult"),
        "/v1/orders/batch": ("OrderBatchRequest", "OrderBatchResult"),
        "/v1/orders/cancel": ("CancelRequest", "CancelResult"),
        "/v1/transactions": ("RawTxRequest", "Accepted"),
        "/v1/transactions/batch": ("RawBatchRequest", "BatchAccepted"),
    }
    assert set(expected) == set(HOT)
    for path, (request_model, response_model) in expected.items():
        assert HOT[path].__name__ == response_model
        post = spec["paths"][path]["post"]
        request_schema = post["requestBody"]["content"]["application/json"]["schema"]
        response_schema = post["responses"]["200"]["content"]["application/json"]["schema"]
        assert request_schema == {"$ref": f"#/components/schemas/{request_model}"}
        assert response_schema == {"$ref": f"#/components/schemas/{response_model}"}
        assert (
            request_model in spec["components"]["schemas"] and response_model in spec["components"]["schemas"]
        )
