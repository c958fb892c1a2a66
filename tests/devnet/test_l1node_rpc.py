"""JSON-RPC 2.0 conformance of the embedded L1: error codes, batches, HTTP status, health."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from eth_account import Account

from devnet.l1.chain import dev_accounts
from devnet.procs import L1Handle

ACCOUNTS = dev_accounts()
ALICE = ACCOUNTS[0].address
BOB = ACCOUNTS[1].address


def post(url: str, body: bytes | str) -> tuple[int, Any]:
    raw = body.encode() if isinstance(body, str) else body
    resp = httpx.post(url, content=raw, headers={"content-type": "application/json"}, timeout=10)
    return resp.status_code, (resp.json() if resp.content else None)


def call(url: str, method: str, params: Any = None, req_id: Any = 1) -> tuple[int, Any]:
    payload: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id, "method": method}
    if params is not None:
        payload["params"] = params
    resp = httpx.post(url, json=payload, timeout=10)
    return resp.status_code, resp.json()


def error_code(reply: Any) -> int:
    assert "error" in reply, reply
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    return int(reply["error"]["code"])


def test_post__invalid_json__parse_error(l1node: L1Handle) -> None:
    status, reply = post(l1node.url, "{bad json")
    assert status == 200
    assert error_code(reply) == -32700
    assert reply["id"] is None


@pytest.mark.parametrize("body", ["5", '"hello"', "null", "[]"])
def test_post__not_an_object__invalid_request(l1node: L1Handle, body: str) -> None:
    status, reply = post(l1node.url, body)
    assert status == 200
    assert error_code(reply) == -32600


@pytest.mark.parametrize(
    "payload",
    [
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "method": 7},
        {"jsonrpc": "1.0", "id": 1, "method": "eth_blockNumber"},
        {"id": 1, "method": "eth_blockNumber"},
        {"jsonrpc": "2.0", "id": {"a": 1}, "method": "eth_blockNumber"},
    ],
)
def test_post__malformed_request__invalid_request(l1node: L1Handle, payload: dict[str, Any]) -> None:
    resp = httpx.post(l1node.url, json=payload, timeout=10)
    assert resp.status_code == 200
    assert error_code(resp.json()) == -32600


def test_post__unknown_method__method_not_found(l1node: L1Handle) -> None:
    status, reply = call(l1node.url, "eth_doesNotExist", [])
    assert status == 200
    assert error_code(reply) == -32601
    assert reply["id"] == 1


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("eth_getBalance", ["0x12"]),  # short address
        ("eth_getBalance", ["0xzz" + "00" * 19]),  # not hex
        ("eth_getBalance", [ALICE, "soon"]),  # unknown tag
        ("eth_getBalance", []),  # too few
        ("eth_blockNumber", [1]),  # too many
        ("eth_getBlockByNumber", ["latest", "yes"]),  # not a bool
        ("eth_getBlockByNumber", {"block": "latest"}),  # named params
        ("eth_getTransactionReceipt", ["0x1234"]),  # short hash
        ("eth_sendRawTransaction", ["0x1234"]),  # not a transaction
        ("eth_getLogs", [{"topics": "0x00"}]),  # topics not a list
        ("eth_call", [{"to": ALICE, "data": "0x123"}]),  # odd hex
        ("evm_increaseTime", [-5]),
    ],
)
def test_post__bad_params__invalid_params(l1node: L1Handle, method: str, params: Any) -> None:
    status, reply = call(l1node.url, method, params)
    assert status == 200
    assert error_code(reply) == -32602


def test_send_raw__nonce_too_low__server_error(l1node: L1Handle) -> None:
    acct = Account.from_key(ACCOUNTS[8].private_key)
    _, nonce_reply = call(l1node.url, "eth_getTransactionCount", [acct.address, "pending"])
    nonce = int(nonce_reply["result"], 16)
    tx = {
        "to": BOB,
        "value": 1,
        "gas": 21000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "chainId": 31337,
    }
    signed = Account.sign_transaction({**tx, "nonce": nonce}, acct.key)
    _, ok = call(l1node.url, "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
    assert "result" in ok, ok
    _, again = call(l1node.url, "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
    assert error_code(again) == -32000
    stale = Account.sign_transaction({**tx, "nonce": nonce, "value": 2}, acct.key)
    _, low = call(l1node.url, "eth_sendRawTransaction", ["0x" + stale.raw_transaction.hex()])
    assert error_code(low) == -32000
    assert "nonce too low" in low["error"]["message"]


def test_send_raw__insufficient_funds__server_error(l1node: L1Handle) -> None:
    pauper = Account.create()
    tx = {"to": BOB, "value": 1, "gas": 21000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    signed = Account.sign_transaction({**tx, "nonce": 0, "chainId": 31337}, pauper.key)
    _, reply = call(l1node.url, "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
    assert error_code(reply) == -32000
    assert "insufficient funds" in reply["error"]["message"]


def test_send_raw__wrong_chain_id__server_error(l1node: L1Handle) -> None:
    acct = Account.from_key(ACCOUNTS[8].private_key)
    tx = {"to": BOB, "value": 1, "gas": 21000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    signed = Account.sign_transaction({**tx, "nonce": 0, "chainId": 1}, acct.key)
    _, reply = call(l1node.url, "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
    assert error_code(reply) == -32000
    assert "chain id" in reply["error"]["message"]


def test_send_transaction__unknown_sender__server_error(l1node: L1Handle) -> None:
    _, reply = call(
        l1node.url, "eth_sendTransaction", [{"from": "0x" + "11" * 20, "to": BOB, "value": "0x1"}]
    )
    assert error_code(reply) == -32000


def test_batch__mixed_requests__one_response_each_in_order(l1node: L1Handle) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "two", "method": "eth_nope", "params": []},
        5,
        {"jsonrpc": "2.0", "id": 4, "method": "eth_getBalance", "params": ["0x12"]},
        {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []},  # notification: no reply
        {"jsonrpc": "2.0", "id": 6, "method": "eth_getBalance", "params": [ALICE, "latest"]},
    ]
    resp = httpx.post(l1node.url, json=batch, timeout=10)
    assert resp.status_code == 200
    replies = resp.json()
    assert isinstance(replies, list) and len(replies) == 5
    assert replies[0] == {"jsonrpc": "2.0", "id": 1, "result": hex(31337)}
    assert replies[1]["id"] == "two" and error_code(replies[1]) == -32601
    assert replies[2]["id"] is None and error_code(replies[2]) == -32600
    assert replies[3]["id"] == 4 and error_code(replies[3]) == -32602
    assert replies[4]["id"] == 6 and int(replies[4]["result"], 16) > 0


def test_server__after_bad_requests__still_answers(l1node: L1Handle) -> None:
    for body in ["{", "[1,2,3]", '{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[null]}']:
        status, _ = post(l1node.url, body)
        assert status == 200
    status, reply = call(l1node.url, "eth_blockNumber", [])
    assert status == 200 and reply["result"].startswith("0x")


def test_health_and_metrics__after_requests__report_height_and_counts(l1node: L1Handle) -> None:
    call(l1node.url, "eth_doesNotExist", [])
    _, number = call(l1node.url, "eth_blockNumber", [])
    health = httpx.get(l1node.url + "/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["blockNumber"] == int(number["result"], 16)
    metrics = httpx.get(l1node.url + "/metrics", timeout=10)
    assert metrics.status_code == 200
    text = metrics.text
    assert 'l1_rpc_requests_total{method="eth_blockNumber"}' in text
    assert 'l1_rpc_errors_total{code="-32601"}' in text
    assert "l1_block_height" in text


def test_block_tags__all_tags__resolve(l1node: L1Handle) -> None:
    for tag in ["latest", "earliest", "pending", "safe", "finalized"]:
        _, reply = call(l1node.url, "eth_getBlockByNumber", [tag, False])
        assert reply["result"] is not None, tag
    _, missing = call(l1node.url, "eth_getBlockByNumber", ["0xffffff", False])
    assert missing["result"] is None
