"""JSON-RPC 2.0 over a `DevChain`: request validation, parameter decoding, result encoding.

`handle_body(chain, body)` takes the raw HTTP body and returns the JSON-ready response (a dict,
a list for batches, or None when every request was a notification). It never raises: every
failure becomes a JSON-RPC error object. Call it from one thread only (the chain is not
thread-safe).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from eth.abc import BlockAPI, SignedTransactionAPI
from eth_utils.crypto import keccak
from rlp import encode as rlp_encode

from devnet.l1.chain import (
    DEFAULT_PRIORITY_FEE_WEI,
    DevChain,
    LogEntry,
    ReceiptView,
    TxRequest,
    base_fee,
    effective_gas_price,
)
from devnet.l1.errors import (
    InternalError,
    InvalidParams,
    InvalidRequest,
    L1Error,
    MethodNotFound,
    ParseError,
)

CLIENT_VERSION = "derivrollup-l1/0.1.0/py-evm"
BLOCK_TAGS = frozenset({"latest", "earliest", "pending", "safe", "finalized"})
_HEX = re.compile(r"^0x[0-9a-fA-F]*$")

Json = Any
Handler = Callable[[DevChain, list[Json]], Json]


@dataclass
class Outcome:
    """What one request did, for metrics and logs."""

    method: str
    """Method name, or "<invalid>" for requests without a usable one."""
    error_code: int | None = None
    error_message: str | None = None


@dataclass
class Response:
    """The JSON-ready body (None: nothing to send) and one outcome per request."""

    body: Json
    outcomes: list[Outcome] = field(default_factory=list)


# ---------------------------------------------------------------------- decoding


def _hex_body(value: Json, what: str) -> str:
    if not isinstance(value, str) or not _HEX.match(value):
        raise InvalidParams(f"{what}: expected a 0x-prefixed hex string, got {value!r}")
    return value[2:]


def quantity(value: Json, what: str = "quantity") -> int:
    """A non-negative integer: 0x-hex (as the spec says) or a JSON number (as anvil accepts)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise InvalidParams(f"{what}: must be >= 0, got {value}")
        return value
    digits = _hex_body(value, what)
    if digits == "":
        raise InvalidParams(f"{what}: empty hex quantity")
    if len(digits) > 64:
        raise InvalidParams(f"{what}: more than 256 bits")
    return int(digits, 16)


def data(value: Json, what: str = "data") -> bytes:
    digits = _hex_body(value, what)
    if len(digits) % 2:
        raise InvalidParams(f"{what}: odd number of hex digits")
    return bytes.fromhex(digits)


def fixed(value: Json, size: int, what: str) -> bytes:
    raw = data(value, what)
    if len(raw) != size:
        raise InvalidParams(f"{what}: expected {size} bytes, got {len(raw)}")
    return raw


def address(value: Json, what: str = "address") -> bytes:
    return fixed(value, 20, what)


def hash32(value: Json, what: str = "hash") -> bytes:
    return fixed(value, 32, what)


def boolean(value: Json, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidParams(f"{what}: expected true or false, got {value!r}")
    return value


def block_number_or_tag(value: Json, what: str = "block") -> str | int:
    if isinstance(value, str) and value in BLOCK_TAGS:
        return value
    return quantity(value, what)


def block_id(value: Json, what: str = "block") -> str | int | bytes:
    """A tag, a number, or an EIP-1898 object {blockNumber} / {blockHash}."""
    if value is None:
        return "latest"
    if isinstance(value, dict):
        if "blockHash" in value:
            return hash32(value["blockHash"], f"{what}.blockHash")
        if "blockNumber" in value:
            return block_number_or_tag(value["blockNumber"], f"{what}.blockNumber")
        raise InvalidParams(f"{what}: expected blockNumber or blockHash")
    if isinstance(value, str) and len(value) == 66 and _HEX.match(value):
        return hash32(value, what)
    return block_number_or_tag(value, what)


def _opt(obj: dict[str, Json], key: str, decode: Callable[[Json, str], Any]) -> Any:
    value = obj.get(key)
    return None if value is None else decode(value, key)


def tx_request(value: Json) -> TxRequest:
    """Transaction object of eth_sendTransaction / eth_call / eth_estimateGas."""
    if not isinstance(value, dict):
        raise InvalidParams(f"transaction: expected an object, got {type(value).__name__}")
    if value.get("input") is not None and value.get("data") is not None and value["input"] != value["data"]:
        raise InvalidParams("transaction: both 'data' and 'input' given, and they differ")
    payload = value.get("input", value.get("data"))
    access_list = None
    if value.get("accessList") is not None:
        items = value["accessList"]
        if not isinstance(items, list):
            raise InvalidParams("accessList: expected a list")
        decoded = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("storageKeys", []), list):
                raise InvalidParams("accessList: expected [{address, storageKeys}]")
            slots = tuple(quantity(k, "storageKey") for k in item.get("storageKeys", []))
            decoded.append((address(item.get("address"), "accessList.address"), slots))
        access_list = tuple(decoded)
    tx_type = _opt(value, "type", quantity)
    if tx_type is not None and tx_type not in (0, 1, 2):
        raise InvalidParams(f"type: unsupported transaction type {tx_type}")
    return TxRequest(
        sender=_opt(value, "from", address),
        to=_opt(value, "to", address),
        gas=_opt(value, "gas", quantity),
        gas_price=_opt(value, "gasPrice", quantity),
        max_fee_per_gas=_opt(value, "maxFeePerGas", quantity),
        max_priority_fee_per_gas=_opt(value, "maxPriorityFeePerGas", quantity),
        value=_opt(value, "value", quantity) or 0,
        data=data(payload, "input") if payload is not None else b"",
        nonce=_opt(value, "nonce", quantity),
        access_list=access_list,
        tx_type=tx_type,
    )


def _topic_filter(value: Json) -> list[list[bytes] | None]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParams("topics: expected a list")
    out: list[list[bytes] | None] = []
    for i, item in enumerate(value):
        if item is None:
            out.append(None)
        elif isinstance(item, list):
            out.append([hash32(t, f"topics[{i}]") for t in item if t is not None] or None)
        else:
            out.append([hash32(item, f"topics[{i}]")])
    return out


def _args(params: list[Json], required: int, optional: int = 0) -> list[Json]:
    if len(params) < required or len(params) > required + optional:
        if optional:
            expected = f"{required} to {required + optional}"
        else:
            expected = str(required)
        raise InvalidParams(f"expected {expected} params, got {len(params)}")
    return params + [None] * (required + optional - len(params))


# ---------------------------------------------------------------------- encoding


def qhex(n: int) -> str:
    return hex(n)


def bhex(raw: bytes) -> str:
    return "0x" + raw.hex()


def encode_tx(block: BlockAPI | None, signed: SignedTransactionAPI, index: int | None) -> dict[str, Json]:
    tx: Any = signed  # legacy and typed transactions have different fields
    tx_type = int(getattr(tx, "type_id", None) or 0)
    out: dict[str, Json] = {
        "type": qhex(tx_type),
        "hash": bhex(tx.hash),
        "nonce": qhex(tx.nonce),
        "blockHash": bhex(block.hash) if block is not None else None,
        "blockNumber": qhex(block.number) if block is not None else None,
        "transactionIndex": qhex(index) if index is not None else None,
        "from": bhex(tx.sender),
        "to": bhex(tx.to) if tx.to else None,
        "value": qhex(tx.value),
        "gas": qhex(tx.gas),
        "input": bhex(tx.data),
    }
    if tx_type >= 2:
        if block is not None:
            out["gasPrice"] = qhex(effective_gas_price(tx, base_fee(block.header)))
        else:
            out["gasPrice"] = qhex(tx.max_fee_per_gas)
        out["maxFeePerGas"] = qhex(tx.max_fee_per_gas)
        out["maxPriorityFeePerGas"] = qhex(tx.max_priority_fee_per_gas)
    else:
        out["gasPrice"] = qhex(tx.gas_price)
    if tx_type >= 1:
        out["chainId"] = qhex(tx.chain_id)
        out["accessList"] = [
            {"address": bhex(addr), "storageKeys": [bhex(s.to_bytes(32, "big")) for s in slots]}
            for addr, slots in (tx.access_list or ())
        ]
        out["v"] = qhex(tx.y_parity)
        out["yParity"] = qhex(tx.y_parity)
    else:
        out["v"] = qhex(tx.v)
        chain_id = (tx.v - 35) // 2 if tx.v >= 35 else None
        if chain_id is not None:
            out["chainId"] = qhex(chain_id)
    out["r"] = qhex(tx.r)
    out["s"] = qhex(tx.s)
    return out


def encode_block(block: BlockAPI, full: bool) -> dict[str, Json]:
    h = block.header
    txs: list[Json]
    if full:
        txs = [encode_tx(block, tx, i) for i, tx in enumerate(block.transactions)]
    else:
        txs = [bhex(tx.hash) for tx in block.transactions]
    out: dict[str, Json] = {
        "number": qhex(h.block_number),
        "hash": bhex(h.hash),
        "parentHash": bhex(h.parent_hash),
        "nonce": bhex(h.nonce),
        "sha3Uncles": bhex(h.uncles_hash),
        "logsBloom": bhex(h.bloom.to_bytes(256, "big")),
        "transactionsRoot": bhex(h.transaction_root),
        "stateRoot": bhex(h.state_root),
        "receiptsRoot": bhex(h.receipt_root),
        "miner": bhex(h.coinbase),
        "difficulty": qhex(h.difficulty),
        "totalDifficulty": qhex(h.difficulty),
        "extraData": bhex(h.extra_data),
        "size": qhex(len(rlp_encode(block))),
        "gasLimit": qhex(h.gas_limit),
        "gasUsed": qhex(h.gas_used),
        "timestamp": qhex(h.timestamp),
        "mixHash": bhex(h.mix_hash),
        "baseFeePerGas": qhex(base_fee(h)),
        "transactions": txs,
        "uncles": [],
    }
    for attr, key in (
        ("withdrawals_root", "withdrawalsRoot"),
        ("parent_beacon_block_root", "parentBeaconBlockRoot"),
        ("requests_hash", "requestsHash"),
    ):
        value = getattr(h, attr, None)
        if value is not None:
            out[key] = bhex(value)
    for attr, key in (("blob_gas_used", "blobGasUsed"), ("excess_blob_gas", "excessBlobGas")):
        value = getattr(h, attr, None)
        if value is not None:
            out[key] = qhex(value)
    if getattr(h, "withdrawals_root", None) is not None:
        out["withdrawals"] = []
    return out


def encode_log(log: LogEntry) -> dict[str, Json]:
    return {
        "address": bhex(log.address),
        "topics": [bhex(t) for t in log.topics],
        "data": bhex(log.data),
        "blockNumber": qhex(log.block_number),
        "blockHash": bhex(log.block_hash),
        "transactionHash": bhex(log.tx_hash),
        "transactionIndex": qhex(log.tx_index),
        "logIndex": qhex(log.log_index),
        "removed": False,
    }


def encode_receipt(view: ReceiptView) -> dict[str, Json]:
    tx, block = view.tx, view.block
    contract = None
    if not tx.to:
        contract = bhex(keccak(rlp_encode([tx.sender, tx.nonce]))[12:])
    fee = base_fee(block.header)
    return {
        "type": qhex(int(getattr(tx, "type_id", None) or 0)),
        "transactionHash": bhex(tx.hash),
        "transactionIndex": qhex(view.index),
        "blockHash": bhex(block.hash),
        "blockNumber": qhex(block.number),
        "from": bhex(tx.sender),
        "to": bhex(tx.to) if tx.to else None,
        "contractAddress": contract,
        "cumulativeGasUsed": qhex(view.receipt.gas_used),
        "gasUsed": qhex(view.gas_used),
        "effectiveGasPrice": qhex(effective_gas_price(tx, fee)),
        "logs": [encode_log(log) for log in view.logs],
        "logsBloom": bhex(view.receipt.bloom.to_bytes(256, "big")),
        "status": qhex(1 if view.receipt.state_root == b"\x01" else 0),
    }


# ---------------------------------------------------------------------- methods


def _get_block_by_number(chain: DevChain, params: list[Json]) -> Json:
    tag, full = _args(params, 1, 1)
    which = block_number_or_tag(tag, "block")
    full = boolean(full, "full transactions") if full is not None else False
    block = chain.block_by_number(which)
    return encode_block(block, full) if block is not None else None


def _get_block_by_hash(chain: DevChain, params: list[Json]) -> Json:
    raw, full = _args(params, 1, 1)
    full = boolean(full, "full transactions") if full is not None else False
    block = chain.block_by_hash(hash32(raw, "block hash"))
    return encode_block(block, full) if block is not None else None


def _get_tx(chain: DevChain, params: list[Json]) -> Json:
    (raw,) = _args(params, 1)
    found = chain.find_transaction(hash32(raw, "transaction hash"))
    if found is None:
        return None
    block, tx, index = found
    return encode_tx(block, tx, index)


def _get_receipt(chain: DevChain, params: list[Json]) -> Json:
    (raw,) = _args(params, 1)
    view = chain.receipt(hash32(raw, "transaction hash"))
    return encode_receipt(view) if view is not None else None


def _get_logs(chain: DevChain, params: list[Json]) -> Json:
    (flt,) = _args(params, 1)
    if not isinstance(flt, dict):
        raise InvalidParams("filter: expected an object")
    raw_addr = flt.get("address")
    if raw_addr is None:
        addresses: list[bytes] = []
    elif isinstance(raw_addr, list):
        addresses = [address(a, "address") for a in raw_addr]
    else:
        addresses = [address(raw_addr, "address")]
    topics = _topic_filter(flt.get("topics"))
    if flt.get("blockHash") is not None:
        if flt.get("fromBlock") is not None or flt.get("toBlock") is not None:
            raise InvalidParams("filter: blockHash excludes fromBlock/toBlock")
        logs = chain.logs(
            addresses=addresses, topics=topics, block_hash=hash32(flt["blockHash"], "blockHash")
        )
    else:
        from_block = block_number_or_tag(flt.get("fromBlock") or "latest", "fromBlock")
        to_block = block_number_or_tag(flt.get("toBlock") or "latest", "toBlock")
        logs = chain.logs(from_block, to_block, addresses, topics)
    return [encode_log(log) for log in logs]


def _fee_history(chain: DevChain, params: list[Json]) -> Json:
    count, newest, percentiles = _args(params, 2, 1)
    pct: list[float] = []
    if percentiles is not None:
        if not isinstance(percentiles, list) or not all(
            isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p <= 100 for p in percentiles
        ):
            raise InvalidParams("reward percentiles: expected a list of numbers in [0, 100]")
        pct = [float(p) for p in percentiles]
    history = chain.fee_history(
        quantity(count, "block count"), block_number_or_tag(newest, "newest block"), pct
    )
    out: dict[str, Json] = {
        "oldestBlock": qhex(history["oldest"]),
        "baseFeePerGas": [qhex(f) for f in history["base_fees"]],
        "gasUsedRatio": history["ratios"],
    }
    if pct:
        out["reward"] = [[qhex(r) for r in rewards] for rewards in history["rewards"]]
    return out


def _state_args(params: list[Json], extra: int) -> tuple[list[Json], str | int | bytes]:
    args = _args(params, 1 + extra, 1)
    return args[: 1 + extra], block_id(args[1 + extra])


def _balance(chain: DevChain, params: list[Json]) -> Json:
    (addr,), at = _state_args(params, 0)
    return qhex(chain.balance(address(addr), at))


def _code(chain: DevChain, params: list[Json]) -> Json:
    (addr,), at = _state_args(params, 0)
    return bhex(chain.code(address(addr), at))


def _storage(chain: DevChain, params: list[Json]) -> Json:
    (addr, slot), at = _state_args(params, 1)
    value = chain.storage(address(addr), quantity(slot, "slot"), at)
    return bhex(value.to_bytes(32, "big"))


def _nonce(chain: DevChain, params: list[Json]) -> Json:
    (addr,), at = _state_args(params, 0)
    return qhex(chain.nonce(address(addr), at))


def _call(chain: DevChain, params: list[Json]) -> Json:
    tx, at, overrides = _args(params, 1, 2)
    if overrides is not None:
        raise InvalidParams("state overrides are not supported")
    return bhex(chain.call(tx_request(tx), block_id(at)))


def _estimate_gas(chain: DevChain, params: list[Json]) -> Json:
    tx, at = _args(params, 1, 1)
    return qhex(chain.estimate_gas(tx_request(tx), block_id(at)))


def _send_tx(chain: DevChain, params: list[Json]) -> Json:
    (tx,) = _args(params, 1)
    return bhex(chain.send_transaction(tx_request(tx)))


def _send_raw(chain: DevChain, params: list[Json]) -> Json:
    (raw,) = _args(params, 1)
    return bhex(chain.send_raw_transaction(data(raw, "raw transaction")))


def _increase_time(chain: DevChain, params: list[Json]) -> Json:
    (seconds,) = _args(params, 1)
    return chain.increase_time(quantity(seconds, "seconds"))


def _set_next_timestamp(chain: DevChain, params: list[Json]) -> Json:
    (ts,) = _args(params, 1)
    chain.set_next_block_timestamp(quantity(ts, "timestamp"))
    return None


def _mine(chain: DevChain, params: list[Json]) -> Json:
    (arg,) = _args(params, 0, 1)
    timestamp = None
    blocks = 1
    if isinstance(arg, dict):
        timestamp = _opt(arg, "timestamp", quantity)
        blocks = _opt(arg, "blocks", quantity) or 1
    elif arg is not None:
        timestamp = quantity(arg, "timestamp")
    for i in range(blocks):
        chain.mine(timestamp if i == 0 else None)
    return "0x0"


def _snapshot(chain: DevChain, params: list[Json]) -> Json:
    _args(params, 0)
    return qhex(chain.snapshot())


def _revert(chain: DevChain, params: list[Json]) -> Json:
    (sid,) = _args(params, 1)
    return chain.revert(quantity(sid, "snapshot id"))


def _no_params(value: Callable[[DevChain], Json]) -> Handler:
    def handler(chain: DevChain, params: list[Json]) -> Json:
        _args(params, 0)
        return value(chain)

    return handler


METHODS: dict[str, Handler] = {
    "web3_clientVersion": _no_params(lambda c: CLIENT_VERSION),
    "net_version": _no_params(lambda c: str(c.chain_id)),
    "net_listening": _no_params(lambda c: True),
    "net_peerCount": _no_params(lambda c: "0x0"),
    "eth_chainId": _no_params(lambda c: qhex(c.chain_id)),
    "eth_blockNumber": _no_params(lambda c: qhex(c.block_number)),
    "eth_syncing": _no_params(lambda c: False),
    "eth_mining": _no_params(lambda c: True),
    "eth_accounts": _no_params(lambda c: [bhex(a) for a in c.accounts]),
    "eth_coinbase": _no_params(lambda c: bhex(c.accounts[0])),
    "eth_gasPrice": _no_params(lambda c: qhex(c.next_base_fee() + DEFAULT_PRIORITY_FEE_WEI)),
    "eth_maxPriorityFeePerGas": _no_params(lambda c: qhex(DEFAULT_PRIORITY_FEE_WEI)),
    "eth_feeHistory": _fee_history,
    "eth_getBalance": _balance,
    "eth_getCode": _code,
    "eth_getStorageAt": _storage,
    "eth_getTransactionCount": _nonce,
    "eth_getBlockByNumber": _get_block_by_number,
    "eth_getBlockByHash": _get_block_by_hash,
    "eth_getTransactionByHash": _get_tx,
    "eth_getTransactionReceipt": _get_receipt,
    "eth_sendTransaction": _send_tx,
    "eth_sendRawTransaction": _send_raw,
    "eth_call": _call,
    "eth_estimateGas": _estimate_gas,
    "eth_getLogs": _get_logs,
    "evm_increaseTime": _increase_time,
    "evm_setNextBlockTimestamp": _set_next_timestamp,
    "evm_mine": _mine,
    "evm_snapshot": _snapshot,
    "evm_revert": _revert,
}


# ---------------------------------------------------------------------- dispatch


def _error(req_id: Json, err: L1Error) -> dict[str, Json]:
    body: dict[str, Json] = {"code": err.code, "message": err.message}
    if err.data is not None:
        body["data"] = err.data
    return {"jsonrpc": "2.0", "id": req_id, "error": body}


def _valid_id(value: Json) -> bool:
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int | float) and not isinstance(value, bool))
    )


def handle_request(
    chain: DevChain, req: Json, on_internal: Callable[[str, BaseException], None]
) -> tuple[Json, Outcome]:
    """One request object -> (response object or None for a notification, outcome)."""
    if not isinstance(req, dict):
        err = InvalidRequest("invalid request: expected a JSON object")
        return _error(None, err), Outcome("<invalid>", err.code, err.message)
    req_id = req.get("id")
    if not _valid_id(req_id):
        err = InvalidRequest("invalid request: id must be a string, a number or null")
        return _error(None, err), Outcome("<invalid>", err.code, err.message)
    method = req.get("method")
    try:
        if req.get("jsonrpc") != "2.0":
            raise InvalidRequest('invalid request: "jsonrpc" must be "2.0"')
        if not isinstance(method, str) or not method:
            raise InvalidRequest('invalid request: "method" must be a non-empty string')
        handler = METHODS.get(method)
        if handler is None:
            raise MethodNotFound(f"the method {method} does not exist/is not available")
        params = req.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            raise InvalidParams("params: expected an array (named params are not supported)")
        result = handler(chain, params)
    except L1Error as err:
        name = method if isinstance(method, str) and method in METHODS else "<invalid>"
        return _error(req_id, err), Outcome(name, err.code, err.message)
    except Exception as exc:  # a bug here must not kill the server or leak a 500
        on_internal(str(method), exc)
        internal = InternalError(f"internal error: {type(exc).__name__}: {exc}")
        return _error(req_id, internal), Outcome(str(method), internal.code, internal.message)
    if "id" not in req:
        return None, Outcome(method)
    return {"jsonrpc": "2.0", "id": req_id, "result": result}, Outcome(method)


def parse_body(body: bytes) -> Json:
    """Decode the HTTP body; ParseError if it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise ParseError(f"parse error: {err}") from None


def handle_payload(
    chain: DevChain, payload: Json, on_internal: Callable[[str, BaseException], None] = lambda m, e: None
) -> Response:
    """A decoded JSON payload (request or batch) -> the response to send."""
    if isinstance(payload, list):
        if not payload:
            err = InvalidRequest("invalid request: empty batch")
            return Response(_error(None, err), [Outcome("<invalid>", err.code, err.message)])
        responses: list[Json] = []
        outcomes: list[Outcome] = []
        for item in payload:
            resp, outcome = handle_request(chain, item, on_internal)
            outcomes.append(outcome)
            if resp is not None:
                responses.append(resp)
        return Response(responses or None, outcomes)
    resp, outcome = handle_request(chain, payload, on_internal)
    return Response(resp, [outcome])


def parse_error_response(err: ParseError) -> Response:
    return Response(_error(None, err), [Outcome("<invalid>", err.code, err.message)])
