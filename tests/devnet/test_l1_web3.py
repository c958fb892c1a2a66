"""web3.py v8 against both L1s (our py-evm node and anvil): the behaviour our services rely on."""

from __future__ import annotations

import time
from typing import Any

import pytest
import vyper
from eth_account import Account
from web3 import Web3
from web3.exceptions import BlockNotFound, ContractLogicError

from contracts.bindings import Sender, send_transaction
from contracts.deployment import Deployment
from contracts.jsonrpc import JsonRpc, JsonRpcError
from contracts.l1 import Web3L1
from devnet.l1.chain import dev_accounts
from devnet.procs import L1Handle, wait_until

ACCOUNTS = dev_accounts()
ETH = 10**18

PING_SOURCE = """
# pragma version ~=0.4.3
event Ping:
    sender: indexed(address)
    n: indexed(uint256)
    note: String[32]

counter: public(uint256)

@external
def ping(n: uint256, note: String[32]):
    self.counter += n
    log Ping(sender=msg.sender, n=n, note=note)

@external
def fail(n: uint256):
    assert n == 0, "ping: n must be zero"

@view
@external
def now() -> uint256:
    return block.timestamp

@external
def not_before(t: uint256):
    assert block.timestamp >= t, "ping: too early"
"""


@pytest.fixture(scope="module")
def ping_artifact() -> dict[str, Any]:
    out = vyper.compile_code(PING_SOURCE, output_formats=["abi", "bytecode"])
    return {"abi": out["abi"], "bytecode": out["bytecode"]}


@pytest.fixture(scope="module")
def w3(l1: L1Handle) -> Web3:
    web3 = Web3(Web3.HTTPProvider(l1.url, request_kwargs={"timeout": 30}))
    assert web3.is_connected()
    return web3


@pytest.fixture(scope="module")
def ping(w3: Web3, ping_artifact: dict[str, Any]) -> Any:
    factory = w3.eth.contract(abi=ping_artifact["abi"], bytecode=ping_artifact["bytecode"])
    tx_hash = factory.constructor().transact({"from": ACCOUNTS[0].address})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt["status"] == 1
    return w3.eth.contract(address=receipt["contractAddress"], abi=ping_artifact["abi"])


def rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    reply = w3.provider.make_request(method, params)  # type: ignore[attr-defined]
    assert "error" not in reply, reply
    return reply["result"]


def test_chain__identity__matches_anvil_defaults(w3: Web3) -> None:
    assert w3.eth.chain_id == 31337
    assert w3.eth.accounts == [a.address for a in ACCOUNTS]
    assert ACCOUNTS[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert w3.eth.get_block("latest")["gasLimit"] == 30_000_000
    # account 9 is never spent from in these tests
    assert w3.eth.get_balance(ACCOUNTS[9].address) == 10_000 * ETH


def test_send_transaction__dev_account__moves_eth(w3: Web3) -> None:
    to = Account.create().address
    tx_hash = w3.eth.send_transaction({"from": ACCOUNTS[0].address, "to": to, "value": 3 * ETH})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt["status"] == 1
    assert receipt["gasUsed"] == 21000
    assert w3.eth.get_balance(to) == 3 * ETH
    tx = w3.eth.get_transaction(tx_hash)
    assert tx["from"] == ACCOUNTS[0].address and tx["to"] == to and tx["value"] == 3 * ETH
    assert tx["blockNumber"] == receipt["blockNumber"]


@pytest.mark.parametrize("kind", ["eip1559", "legacy"])
def test_send_raw_transaction__locally_signed__moves_eth(w3: Web3, kind: str) -> None:
    sender = Account.from_key(ACCOUNTS[1].private_key)
    to = Account.create().address
    tx: dict[str, Any] = {
        "to": to,
        "value": ETH // 2,
        "gas": 21000,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": 31337,
    }
    if kind == "legacy":
        tx["gasPrice"] = w3.eth.gas_price
    else:
        base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
        tx["maxPriorityFeePerGas"] = w3.eth.max_priority_fee
        tx["maxFeePerGas"] = 2 * base_fee + tx["maxPriorityFeePerGas"]
    signed = sender.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt["status"] == 1
    assert receipt["type"] == (0 if kind == "legacy" else 2)
    assert w3.eth.get_balance(to) == ETH // 2


def test_contract__ping__emits_filterable_logs(w3: Web3, ping: Any) -> None:
    alice, bob = ACCOUNTS[2].address, ACCOUNTS[3].address
    start = w3.eth.block_number + 1
    receipts = []
    for sender, n in [(alice, 1), (bob, 2), (alice, 3)]:
        tx_hash = ping.functions.ping(n, f"note {n}").transact({"from": sender})
        receipts.append(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10))
    end = w3.eth.block_number
    assert ping.functions.counter().call() >= 6

    decoded = ping.events.Ping().process_receipt(receipts[1])
    assert decoded[0]["args"]["sender"] == bob and decoded[0]["args"]["n"] == 2
    assert decoded[0]["args"]["note"] == "note 2"

    topic0 = receipts[0]["logs"][0]["topics"][0]
    sender_topic = "0x" + "00" * 12 + alice[2:].lower()
    n_topic = ["0x" + (n).to_bytes(32, "big").hex() for n in (2, 3)]

    def get_logs(**flt: Any) -> list[Any]:
        return list(w3.eth.get_logs({"fromBlock": start, "toBlock": end, **flt}))

    assert len(get_logs(address=ping.address)) == 3
    assert len(get_logs(address=[ping.address, ACCOUNTS[0].address])) == 3
    assert len(get_logs(address=ACCOUNTS[0].address)) == 0
    assert len(get_logs(topics=[topic0])) == 3
    assert [log["blockNumber"] for log in get_logs(topics=[topic0, sender_topic])] == [
        receipts[0]["blockNumber"],
        receipts[2]["blockNumber"],
    ]
    assert len(get_logs(topics=[None, None, n_topic])) == 2  # OR-list at position 2
    assert len(get_logs(topics=[topic0, sender_topic, n_topic])) == 1
    assert len(get_logs(topics=[None, None, None, None])) == 3  # trailing nulls match anything
    assert len(get_logs(topics=[None, None, None, topic0])) == 0  # the log has only 3 topics
    by_hash = w3.eth.get_logs({"blockHash": receipts[1]["blockHash"]})
    assert len(by_hash) == 1 and by_hash[0]["transactionHash"] == receipts[1]["transactionHash"]
    events = ping.events.Ping().get_logs(from_block=start, to_block=end, argument_filters={"sender": bob})
    assert [e["args"]["n"] for e in events] == [2]


def test_contract__revert__reason_reaches_web3(w3: Web3, ping: Any) -> None:
    with pytest.raises(ContractLogicError, match="ping: n must be zero"):
        ping.functions.fail(1).call()
    with pytest.raises(ContractLogicError, match="ping: n must be zero"):
        ping.functions.fail(1).transact({"from": ACCOUNTS[0].address})
    with pytest.raises(ContractLogicError, match="ping: n must be zero"):
        w3.eth.estimate_gas(
            {"from": ACCOUNTS[0].address, "to": ping.address, "data": ping.encode_abi("fail", [1])}
        )
    ping.functions.fail(0).call()


def test_contract__revert_with_explicit_gas__mined_with_status_zero(w3: Web3, ping: Any) -> None:
    tx_hash = ping.functions.fail(1).transact({"from": ACCOUNTS[0].address, "gas": 100_000})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt["status"] == 0
    assert receipt["logs"] == []


def test_evm_increase_time__one_hour__moves_block_timestamp(w3: Web3, ping: Any) -> None:
    before = w3.eth.get_block("latest")["timestamp"]
    rpc(w3, "evm_increaseTime", [3600])
    rpc(w3, "evm_mine", [])
    after = w3.eth.get_block("latest")["timestamp"]
    assert after >= before + 3600
    # later blocks keep the offset
    tx_hash = w3.eth.send_transaction({"from": ACCOUNTS[0].address, "to": ACCOUNTS[4].address, "value": 1})
    mined = w3.eth.get_block(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)["blockNumber"])
    assert mined["timestamp"] >= after
    assert ping.functions.now().call() >= after


def test_evm_set_next_block_timestamp__exact_value__used_by_next_block(w3: Web3) -> None:
    target = w3.eth.get_block("latest")["timestamp"] + 10_000
    rpc(w3, "evm_setNextBlockTimestamp", [target])
    rpc(w3, "evm_mine", [])
    assert w3.eth.get_block("latest")["timestamp"] == target
    rpc(w3, "evm_mine", [])
    assert w3.eth.get_block("latest")["timestamp"] >= target


def test_send_transaction__clock_past_idle_head__estimated_on_pending_block(w3: Web3, ping: Any) -> None:
    # anvil mines only on transactions and estimates on the latest block by default: a call that
    # needs a time past an idle head must still be estimated, sent and mined (the batch clock does)
    sender = Sender(ACCOUNTS[1].address, bytes.fromhex(ACCOUNTS[1].private_key.removeprefix("0x")))
    head = send_transaction(w3, sender, {"to": ACCOUNTS[4].address, "value": 1}, label="tick")
    head_time = w3.eth.get_block(head.block_number)["timestamp"]
    offset = head_time - time.time()  # the L1 clock's lead over ours (evm_increaseTime above)
    wait_until(lambda: time.time() + offset >= head_time + 3, 10, what="the L1 clock to pass its head")
    assert w3.eth.get_block("latest")["timestamp"] == head_time  # no block since: the head is idle
    data = ping.functions.not_before(head_time + 1)._encode_transaction_data()
    result = send_transaction(w3, sender, {"to": ping.address, "data": data}, label="not_before")
    assert w3.eth.get_block(result.block_number)["timestamp"] >= head_time + 1


def test_block_timestamps__whole_chain__never_decrease(w3: Web3) -> None:
    stamps = [w3.eth.get_block(n)["timestamp"] for n in range(w3.eth.block_number + 1)]
    assert stamps == sorted(stamps)


def test_evm_snapshot_revert__after_transfer__restores_balance(w3: Web3) -> None:
    to = Account.create().address
    height = w3.eth.block_number
    snap = rpc(w3, "evm_snapshot", [])
    tx_hash = w3.eth.send_transaction({"from": ACCOUNTS[5].address, "to": to, "value": ETH})
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert w3.eth.get_balance(to) == ETH
    assert rpc(w3, "evm_revert", [snap]) is True
    assert w3.eth.get_balance(to) == 0
    assert w3.eth.block_number == height
    # the reverted transaction is gone, and the chain goes on
    with pytest.raises(Exception, match="not found"):
        w3.eth.get_transaction_receipt(tx_hash)
    assert rpc(w3, "evm_revert", [snap]) is False  # a snapshot is used up by reverting to it
    tx_hash = w3.eth.send_transaction({"from": ACCOUNTS[5].address, "to": to, "value": 2 * ETH})
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert w3.eth.get_balance(to) == 2 * ETH


def test_block_hash__block_replaced_after_evm_revert__gone_then_a_new_hash(w3: Web3) -> None:
    """What `Web3L1.block_hash` reads to find a reorganisation: a block past the head is not
    found, and a block replaced in another history has another hash."""
    to = Account.create().address
    snap = rpc(w3, "evm_snapshot", [])
    tx_hash = w3.eth.send_transaction({"from": ACCOUNTS[6].address, "to": to, "value": ETH})
    number = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)["blockNumber"]
    replaced = w3.eth.get_block(number)["hash"]
    assert rpc(w3, "evm_revert", [snap]) is True
    if w3.eth.block_number < number:
        with pytest.raises(BlockNotFound):
            w3.eth.get_block(number)
    tx_hash = w3.eth.send_transaction({"from": ACCOUNTS[6].address, "to": to, "value": 3 * ETH})
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert w3.eth.get_block(number)["hash"] != replaced


def test_web3l1_polled_reads__raw_json_rpc__what_web3_reads(w3: Web3, l1: L1Handle) -> None:
    """The node's polled reads (`head_block`, `head_timestamp`, `block_hash`, over `JsonRpc`)
    give what web3 gives: the head and its time, each block's hash, None past the head, and a new
    hash once a block is replaced."""
    zero = "0x" + "00" * 20
    reader = Web3L1(l1.url, Deployment(w3.eth.chain_id, zero, zero, zero, zero, 0))
    assert reader._rpc is not None
    to = Account.create().address
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": ACCOUNTS[7].address, "to": to, "value": ETH}), timeout=10
    )
    head = w3.eth.block_number
    assert reader.head_block() == head
    assert reader.head_timestamp() == w3.eth.get_block("latest")["timestamp"]
    for number in sorted({0, head // 2, head}):
        assert reader.block_hash(number) == bytes(w3.eth.get_block(number)["hash"])
    assert reader.block_hash(head + 1_000) is None
    snap = rpc(w3, "evm_snapshot", [])
    tx_hash = w3.eth.send_transaction({"from": ACCOUNTS[7].address, "to": to, "value": ETH})
    number = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)["blockNumber"]
    replaced = reader.block_hash(number)
    assert rpc(w3, "evm_revert", [snap]) is True
    assert reader.head_block() == w3.eth.block_number
    tx_hash = w3.eth.send_transaction({"from": ACCOUNTS[7].address, "to": to, "value": 2 * ETH})
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert reader.block_hash(number) == bytes(w3.eth.get_block(number)["hash"]) != replaced
    reader._rpc.close()


def test_json_rpc__error_answer_dropped_connection_and_no_server(w3: Web3, l1: L1Handle) -> None:
    """An error answer is a JsonRpcError; a connection that broke is replaced for the next call;
    an endpoint that does not listen raises the connection's own error."""
    with JsonRpc(l1.url, timeout=5) as client:
        with pytest.raises(JsonRpcError, match="eth_noSuchMethod"):
            client.call("eth_noSuchMethod", [])
        assert int(client.call("eth_blockNumber", []), 16) == w3.eth.block_number
        conn = client._conn
        assert conn is not None and conn.sock is not None
        conn.sock.close()  # as if the server had closed the kept-alive connection
        assert int(client.call("eth_chainId", []), 16) == w3.eth.chain_id
        assert client._conn is not conn
    with pytest.raises(ValueError, match="not an HTTP"):
        JsonRpc("ws://127.0.0.1:1")
    with pytest.raises(OSError):
        JsonRpc("http://127.0.0.1:1", timeout=2).call("eth_blockNumber", [])


def test_fee_methods__web3_defaults__answer(w3: Web3) -> None:
    assert w3.eth.gas_price > 0
    assert w3.eth.max_priority_fee > 0
    history = w3.eth.fee_history(3, "latest", [50])
    assert len(history["baseFeePerGas"]) == len(history["gasUsedRatio"]) + 1
    assert len(history["reward"]) == len(history["gasUsedRatio"])
    assert w3.eth.syncing is False
    assert w3.is_connected()
