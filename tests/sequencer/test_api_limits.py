"""The API's edges: integers as JSON numbers or decimal strings (`sequencer.wire`), every parameter
bounded, every error in the one error body (unknown paths, wrong methods, bodies that are not
UTF-8, faults), an OpenAPI document whose bounds are the integers the server checks, the batch
endpoints' body limits holding their largest valid requests, and the SDK checking every receipt."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from exchange_fixtures import ETH, order, trader_key
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from prover.main import create_watcher_app
from sequencer.api.app import create_app
from sequencer.api.body import BATCH_BODY_BYTES
from sequencer.api.order_schemas import MAX_ORDERS_PER_REQUEST
from sequencer.api.schemas import MAX_TXS_PER_REQUEST
from sequencer.client import TraderClient
from sequencer.node import NodeOptions
from sequencer.stf.constants import MAX_TX_BYTES, SIDE_BUY, SIDE_SELL
from sequencer.stf.errors import RollupError
from sequencer.wire import MAX_SAFE_INTEGER, Uint, decimal_pattern, wire_int
from tests.sequencer.test_admission import exchange_net
from tests.sequencer.test_api_exchange import Net, body, digest
from tests.sequencer.test_chain import CONFIG

U64_MAX = 2**64 - 1


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = exchange_net(tmp_path / "node.sqlite", NodeOptions())
    n.client = TestClient(create_app(n.node, max_body_bytes=16_384), raise_server_exceptions=False)
    yield n
    n.close()


# ---- integers on the wire ----------------------------------------------------------------


@given(st.sampled_from([1, 2, 10, 11, 256, 2**16, 2**63, 2**64, 2**256]), st.integers(-10, 2**260))
def test_decimal_pattern__matches_exactly_the_decimals_in_range(bound: int, n: int) -> None:
    near = bound + n % 2001 - 1000  # half the draws next to the bound
    for value in (n, near):
        assert bool(re.fullmatch(decimal_pattern(bound), str(value))) == (0 <= value < bound)


@pytest.mark.parametrize(
    "text", ["", "00", "01", "+1", "-0", " 1", "1 ", "1.0", "1e3", "1_0", "0x1", "\u0661"]
)  # (an Arabic-Indic one)
def test_decimal_pattern__non_canonical_decimals__never_match(text: str) -> None:
    assert re.fullmatch(decimal_pattern(2**64), text) is None


class _U64(BaseModel):
    x: Annotated[int, Uint(2**64)]


@pytest.mark.parametrize(
    ("raw", "value"),
    [("0", 0), ('"0"', 0), (str(U64_MAX), U64_MAX), (f'"{U64_MAX}"', U64_MAX), ("1e3", 1000), ("7.0", 7)],
)
def test_uint__integer_decimal_string_or_integral_number__accepted(raw: str, value: int) -> None:
    assert _U64.model_validate_json('{"x": ' + raw + "}").x == value


@pytest.mark.parametrize(
    "raw", [str(2**64), f'"{2**64}"', "-1", '"-1"', "true", "null", "1.5", '"1.0"', '" 1"', '"012"', "[]"]
)
def test_uint__out_of_range_or_not_an_integer__refused_with_the_range(raw: str) -> None:
    with pytest.raises(ValidationError, match="must be an integer from 0 to 18446744073709551615"):
        _U64.model_validate_json('{"x": ' + raw + "}")


def test_wire_int__numbers_up_to_2_53_minus_1__strings_above() -> None:
    assert [wire_int(v) for v in (0, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER)] == [0, 2**53 - 1, 1 - 2**53]
    assert (wire_int(2**53), wire_int(-(2**53)), wire_int(U64_MAX)) == (
        "9007199254740992",
        "-9007199254740992",
        str(U64_MAX),
    )


def test_order__big_fields_as_decimal_strings__accepted_and_answered_as_strings(net: Net) -> None:
    signed = order(0, ETH, SIDE_SELL, 100, 10, expiry=U64_MAX, salt=2**53)
    request = {**body(signed), "expiry": str(U64_MAX), "salt": str(2**53), "price": "100"}
    placed = net.client.post("/v1/orders", json=request)
    assert (placed.status_code, placed.json()["status"], placed.json()["resting"]) == (200, "resting", 10)
    view = net.client.get(f"/v1/orders/{digest(signed)}").json()
    assert (view["expiry"], view["salt"], view["price"], view["size"]) == (str(U64_MAX), str(2**53), 100, 10)
    (resting,) = net.client.get(f"/v1/accounts/{body(signed)['trader']}").json()["open_orders"]
    assert (resting["expiry"], resting["price"]) == (str(U64_MAX), 100)
    again = net.client.post("/v1/orders", json=body(signed)).json()  # the same order as JSON integers
    assert again["known"] and again["digest"] == digest(signed)


# ---- errors and bounds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nothing", 404, "not_found"),
        ("DELETE", "/v1/status", 405, "method_not_allowed"),
        ("GET", "/v1/orders/batch", 405, "method_not_allowed"),
        ("GET", "/v1/orders/cancel", 405, "method_not_allowed"),
        ("GET", "/v1/transactions/batch", 405, "method_not_allowed"),
        ("GET", "/v1/orders/0x12", 404, "not_found"),
        ("GET", f"/v1/fills?account=0x{'00' * 20}&before={2**100}", 400, "malformed"),
        ("GET", f"/v1/fills?account=0x{'00' * 20}&before={2**63}", 400, "malformed"),
        ("GET", f"/v1/batches/{2**64}", 400, "malformed"),
        ("GET", "/v1/markets/0/book?depth=1001", 400, "malformed"),
    ],
)
def test_errors__routing_and_bounds__the_one_error_body(
    net: Net, method: str, path: str, status: int, code: str
) -> None:
    r = net.client.request(method, path)
    assert (r.status_code, r.json()) == (
        status,
        {"error": {"code": code, "message": r.json()["error"]["message"]}},
    )
    if status == 405:
        assert r.headers["allow"]


def test_fills__before_at_its_bound__answered(net: Net) -> None:
    r = net.client.get("/v1/fills", params={"account": "0x" + "00" * 20, "before": 2**63 - 1})
    assert (r.status_code, r.json()["fills"]) == (200, [])


@pytest.mark.parametrize("path", ["/v1/orders", "/v1/orders/batch", "/v1/transfers", "/v1/transactions"])
def test_errors__body_not_utf8__400_malformed(net: Net, path: str) -> None:
    r = net.client.post(path, content=b'{"raw": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")


def test_watcher__unknown_path_and_wrong_method__the_one_error_body() -> None:
    client = TestClient(create_watcher_app(None))  # type: ignore[arg-type]  # (no route reached)
    assert client.get("/v1/nothing").json() == {"error": {"code": "not_found", "message": "Not Found"}}
    r = client.post("/v1/status")
    assert (r.status_code, r.json()["error"]["code"], r.headers["allow"]) == (
        405,
        "method_not_allowed",
        "GET",
    )
    assert "e+" not in client.get("/openapi.json").text


# ---- the OpenAPI document ------------------------------------------------------------------


def _floats(node: Any) -> list[float]:
    if isinstance(node, dict):
        return [f for v in node.values() for f in _floats(v)]
    if isinstance(node, list):
        return [f for v in node for f in _floats(v)]
    return [node] if isinstance(node, float) else []


def test_openapi__bounds_are_the_integers_the_server_checks(net: Net) -> None:
    text = net.client.get("/openapi.json").text
    spec = json.loads(text)
    assert _floats(spec) == [] and "e+" not in text
    schemas = spec["components"]["schemas"]
    price = schemas["OrderRequest"]["properties"]["price"]["anyOf"]
    assert price[0] == {"type": "integer", "minimum": 0, "exclusiveMaximum": 2**64}
    assert price[1] == {"type": "string", "pattern": decimal_pattern(2**64)}
    assert schemas["TransferRequest"]["properties"]["amount"]["anyOf"][0]["exclusiveMaximum"] == 2**256
    (before,) = [p for p in spec["paths"]["/v1/fills"]["get"]["parameters"] if p["name"] == "before"]
    assert before["schema"]["anyOf"][0] == {"type": "integer", "minimum": 0, "exclusiveMaximum": 2**63}
    fill_price = schemas["FillView"]["properties"]["price"]["anyOf"]
    assert fill_price[0] == {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER}
    for status in ("400", "404", "405", "413", "500"):
        error = spec["paths"]["/v1/orders"]["post"]["responses"][status]["content"]["application/json"]
        assert error["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


# ---- batch body limits -----------------------------------------------------------------------


def _largest_order() -> dict[str, Any]:
    biggest = str(U64_MAX)
    return {
        "trader": "0x" + "ab" * 20,
        "market": str(2**16 - 1),
        "side": "255",
        "price": biggest,
        "size": biggest,
        "flags": "255",
        "expiry": biggest,
        "salt": biggest,
        "signature": "0x" + "cd" * 65,
    }


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")], ids=["compact", "spaced"])
def test_batch_limits__largest_valid_batches__fit_their_limits(net: Net, separators: tuple[str, str]) -> None:
    largest = {
        "/v1/orders/batch": {"orders": [_largest_order()] * MAX_ORDERS_PER_REQUEST},
        "/v1/transactions/batch": {"raws": ["0x" + "ab" * MAX_TX_BYTES] * MAX_TXS_PER_REQUEST},
    }
    assert set(largest) == set(BATCH_BODY_BYTES)
    for path, request in largest.items():
        payload = json.dumps(request, separators=separators).encode()
        assert len(payload) <= BATCH_BODY_BYTES[path]
        r = net.client.post(path, content=payload, headers={"content-type": "application/json"})
        assert r.status_code == 200  # taken whole; each item refused on its own (signature, bytes)
        assert all(item["error"] is not None for item in r.json()["results"])
        over = net.client.post(path, content=payload + b" " * BATCH_BODY_BYTES[path])
        assert (over.status_code, over.json()["error"]["code"]) == (413, "too_large")


# ---- the SDK checks every receipt ------------------------------------------------------------


def test_sdk__resting_order_receipt_checked__a_wrong_one_refused(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    trader = TraderClient("http://testserver", trader_key(0), CONFIG)
    trader.endpoints.http = net.client
    placed = trader.place(order(0, ETH, SIDE_SELL, 100, 10))
    assert placed.status == "resting"
    (many,) = trader.place_many([order(0, ETH, SIDE_SELL, 101, 10)])
    assert not isinstance(many, RollupError) and many.status == "resting"
    signer = net.node.intake.receipts
    assert signer is not None
    monkeypatch.setattr(
        signer, "sign_orders", lambda orders, items: signer.sign_batch(items)
    )  # another statement
    with pytest.raises(RollupError, match="receipt that does not verify"):
        trader.place(order(1, ETH, SIDE_BUY, 90, 10))
