"""Typed Python wrappers over the rollup's L1 contracts (web3 v8).

Every state-changing method takes a `Sender`: either an account the node holds unlocked (sent
with `eth_sendTransaction`, e.g. eth-tester or `anvil` dev accounts) or a local private key
(signed here and sent with `eth_sendRawTransaction`, for production nodes and anvil alike). A
transaction is first simulated (`eth_estimateGas`), so a revert raises `TransactionReverted`
with the contract's reason ("rollup: no fraud") before anything is sent; a transaction that is
mined but fails anyway (a race) raises the same error with the receipt. Each call waits for its
receipt and returns a `TxResult`.

Records (`BatchHeader`, `Witness`) are the state machine's own types from `sequencer.stf`;
witnesses may also be given already in ABI tuple form (`witness_arg`, the one conversion).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account as _EthAccount
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3
from web3.contract.contract import Contract, ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.logs import DISCARD as _DISCARD

from contracts.build import Artifact, compile_all
from contracts.calldata import AppendBatchCall, CalldataError, decode_append_batch, encode_append_batch
from sequencer.stf.batch import batch_roots
from sequencer.stf.smt import Witness
from sequencer.stf.types import BatchHeader

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ContractError(Exception):
    """Root of the errors raised by the bindings."""


class TransactionReverted(ContractError):
    """A call or transaction reverted; `reason` is the contract's message when there is one."""

    def __init__(
        self,
        function: str,
        reason: str | None,
        *,
        tx_hash: bytes | None = None,
        receipt: Any = None,
    ) -> None:
        super().__init__(f"{function} reverted: {reason if reason is not None else '(no reason)'}")
        self.function = function
        """Name of the contract function (or "deploy <Contract>")."""
        self.reason = reason
        """The revert string, e.g. "rollup: unknown batch" (None if the revert carried none)."""
        self.tx_hash = tx_hash
        """Hash of the mined failed transaction (None when the simulation failed first)."""
        self.receipt = receipt
        """The receipt of the mined failed transaction, if any."""


class TransactionTimeout(ContractError):
    """No receipt arrived in time; the transaction may still be mined later."""

    def __init__(self, function: str, tx_hash: bytes) -> None:
        super().__init__(f"{function}: no receipt for 0x{tx_hash.hex()}")
        self.function = function
        self.tx_hash = tx_hash


_REVERT_PREFIX = "execution reverted"

try:  # web3's EthereumTesterProvider raises eth-tester's own error instead of ContractLogicError
    from eth_tester.exceptions import TransactionFailed as _TesterFailed
except ImportError:  # pragma: no cover - eth-tester is a test/devnet dependency

    class _TesterFailed(Exception):  # type: ignore[no-redef]
        pass


_REVERT_ERRORS: tuple[type[BaseException], ...] = (ContractLogicError, Web3RPCError, _TesterFailed)
"""What a reverted simulation raises, depending on the provider."""


def _revert_reason(exc: BaseException) -> str | None:
    """The revert string of a web3 error ("execution reverted: rollup: x" -> "rollup: x")."""
    message = getattr(exc, "message", None)
    if message is None and exc.args:
        first = exc.args[0]
        message = first.get("message") if isinstance(first, dict) else first
    if not isinstance(message, str):
        return None
    text = message.strip()
    if text.startswith(_REVERT_PREFIX):
        text = text[len(_REVERT_PREFIX) :].lstrip(": ").strip()
    return text or None


# --------------------------------------------------------------------------------------------
# Senders and transactions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sender:
    """Who sends a transaction: an unlocked node account, or a local private key."""

    address: str
    """Checksummed address."""
    private_key: bytes | None = None
    """32-byte secret key to sign locally; None to let the node sign (eth_sendTransaction)."""

    @classmethod
    def unlocked(cls, address: str | bytes) -> Sender:
        """An account the node holds unlocked (eth-tester, anvil dev accounts)."""
        return cls(Web3.to_checksum_address(address))

    @classmethod
    def from_key(cls, private_key: bytes | str) -> Sender:
        """A local key: transactions are signed here and sent raw."""
        key = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else private_key
        return cls(_EthAccount.from_key(key).address, key)

    @property
    def is_local(self) -> bool:
        """True when transactions are signed locally."""
        return self.private_key is not None

    def __repr__(self) -> str:  # never print the key
        kind = "local key" if self.is_local else "unlocked"
        return f"Sender({self.address}, {kind})"


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction."""

    tx_hash: bytes
    block_number: int
    gas_used: int
    receipt: Any
    """The web3 receipt (logs can be decoded with the clients' `*_from_receipt` helpers)."""


# One lock per (node, address): local-key nonces are read from the node, so sends from one key
# in one process must not interleave.
_SEND_LOCKS: dict[tuple[int, str], threading.Lock] = {}
_SEND_LOCKS_GUARD = threading.Lock()


def _lock_for(w3: Web3, address: str) -> threading.Lock:
    with _SEND_LOCKS_GUARD:
        return _SEND_LOCKS.setdefault((id(w3), address), threading.Lock())


def _gas_with_margin(estimate: int) -> int:
    # py-evm and anvil estimate exactly; a small margin covers state changing between estimate
    # and inclusion (e.g. a first SSTORE becoming a non-zero -> non-zero one).
    return estimate + estimate // 5 + 20_000


def _estimate_gas(w3: Web3, params: dict[str, Any]) -> int:
    """Gas of `params` on the block that would include it: the pending one. anvil estimates on
    the latest block by default, whose timestamp is seconds old when idle (it mines only on
    transactions), so a fresh batch clock would be refused as ahead of L1. eth-tester in process
    refuses "pending", and its "latest" is already the pending block."""
    if isinstance(w3.provider, EthereumTesterProvider):
        return int(w3.eth.estimate_gas(params))  # type: ignore[arg-type]
    return int(w3.eth.estimate_gas(params, "pending"))  # type: ignore[arg-type]


def send_transaction(
    w3: Web3,
    sender: Sender,
    tx: dict[str, Any],
    *,
    label: str,
    timeout: float = 120.0,
) -> TxResult:
    """Simulate, send, and wait for `tx` (a dict with `to`/`data`/`value`, no `from`).

    Raises `TransactionReverted` with the revert reason if the simulation or the mined
    transaction fails, `TransactionTimeout` if no receipt comes in `timeout` seconds.
    """
    params: dict[str, Any] = {"from": sender.address, **tx}
    params.setdefault("value", 0)
    with _lock_for(w3, sender.address):
        if "gas" not in params:
            try:
                params["gas"] = _gas_with_margin(_estimate_gas(w3, params))
            except _REVERT_ERRORS as exc:
                raise TransactionReverted(label, _revert_reason(exc)) from exc
        if sender.private_key is None:
            tx_hash = bytes(w3.eth.send_transaction(params))  # type: ignore[arg-type]
        else:
            params["nonce"] = w3.eth.get_transaction_count(sender.address, "pending")  # type: ignore[arg-type]
            params["chainId"] = w3.eth.chain_id
            if "gasPrice" not in params and "maxFeePerGas" not in params:
                base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
                if base_fee is None:
                    params["gasPrice"] = w3.eth.gas_price
                else:
                    tip = w3.eth.max_priority_fee
                    params["maxPriorityFeePerGas"] = tip
                    params["maxFeePerGas"] = 2 * base_fee + tip
            signed = _EthAccount.sign_transaction(params, sender.private_key)
            tx_hash = bytes(w3.eth.send_raw_transaction(signed.raw_transaction))
    try:
        receipt = w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=timeout, poll_latency=0.05)
    except TimeExhausted as exc:
        raise TransactionTimeout(label, tx_hash) from exc
    if receipt["status"] != 1:
        raise TransactionReverted(
            label, _replay_reason(w3, params, receipt["blockNumber"]), tx_hash=tx_hash, receipt=receipt
        )
    return TxResult(tx_hash, receipt["blockNumber"], receipt["gasUsed"], receipt)


def _replay_reason(w3: Web3, params: dict[str, Any], block_number: int) -> str | None:
    """The revert reason of a mined failed transaction, by replaying it as a call on its parent."""
    call = {k: params[k] for k in ("from", "to", "data", "value") if k in params}
    try:
        w3.eth.call(call, max(block_number - 1, 0))  # type: ignore[arg-type]
    except _REVERT_ERRORS as exc:
        return _revert_reason(exc)
    return None


def _call(fn: ContractFunction, label: str) -> Any:
    """`eth_call` a view, turning a revert into `TransactionReverted`."""
    try:
        return fn.call()
    except _REVERT_ERRORS as exc:
        raise TransactionReverted(label, _revert_reason(exc)) from exc


def deploy_contract(
    w3: Web3, sender: Sender, artifact: Artifact, *args: Any, timeout: float = 120.0
) -> tuple[str, TxResult]:
    """Deploy `artifact` with constructor `args`; returns (checksummed address, result)."""
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    data = factory.constructor(*args).data_in_transaction
    result = send_transaction(w3, sender, {"data": data}, label=f"deploy {artifact.name}", timeout=timeout)
    address = result.receipt["contractAddress"]
    if address is None:
        raise ContractError(f"deploy {artifact.name}: no contract address in the receipt")
    return Web3.to_checksum_address(address), result


# --------------------------------------------------------------------------------------------
# ABI conversions
# --------------------------------------------------------------------------------------------

AbiWitness = tuple[bytes, bytes, int, bytes, bytes, int, int, list[bytes]]
"""A witness as the Vyper struct
`Witness{key, value, terminal, other_key, other_value_hash, depth, present, siblings}`."""


def witness_arg(w: Witness | Sequence[Any]) -> AbiWitness:
    """A `sequencer.stf.smt.Witness` (or an ABI tuple already) as the ABI struct tuple."""
    if isinstance(w, Witness):
        return (
            w.key,
            w.value,
            w.terminal,
            w.other_key,
            w.other_value_hash,
            w.depth,
            w.present,
            list(w.siblings),
        )
    key, value, terminal, other_key, other_value_hash, depth, present, siblings = w
    return (
        bytes(key),
        bytes(value),
        int(terminal),
        bytes(other_key),
        bytes(other_value_hash),
        int(depth),
        int(present),
        [bytes(s) for s in siblings],
    )


def header_arg(header: BatchHeader) -> tuple[Any, ...]:
    """A `BatchHeader` as the ABI struct tuple."""
    return header.as_tuple()


def header_from_abi(value: Any) -> BatchHeader:
    """A `BatchHeader` from a decoded ABI struct (tuple or dict) or event args."""
    if isinstance(value, dict) or hasattr(value, "keys"):
        get = value.__getitem__
        fields = [get(n) for n in _HEADER_FIELDS]
    else:
        fields = list(value)
    (index, prev_root, post_root, tx_root, roots_root, tx_count, queue_start, queue_end, l2_time, seq, ts) = (
        fields
    )
    return BatchHeader(
        index=int(index),
        prev_root=bytes(prev_root),
        post_root=bytes(post_root),
        tx_root=bytes(tx_root),
        roots_root=bytes(roots_root),
        tx_count=int(tx_count),
        queue_start=int(queue_start),
        queue_end=int(queue_end),
        l2_time=int(l2_time),
        sequencer=bytes.fromhex(str(seq).removeprefix("0x")),
        timestamp=int(ts),
    )


_HEADER_FIELDS = (
    "index",
    "prev_root",
    "post_root",
    "tx_root",
    "roots_root",
    "tx_count",
    "queue_start",
    "queue_end",
    "l2_time",
    "sequencer",
    "timestamp",
)


def _address_bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _checksum(address: str | bytes) -> str:
    return Web3.to_checksum_address(address)


# --------------------------------------------------------------------------------------------
# Event records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventMeta:
    """Where an event sits on L1."""

    block_number: int
    log_index: int
    tx_hash: bytes


@dataclass(frozen=True)
class BatchAppendedEvent:
    """`Rollup.BatchAppended`, with the batch data decoded from the append transaction's calldata."""

    header: BatchHeader
    txs: tuple[bytes, ...]
    """The encoded transactions (from calldata; empty when `unreadable`)."""
    roots: tuple[bytes, ...]
    """The per-transaction post-state roots (from calldata; empty when `unreadable`)."""
    meta: EventMeta
    unreadable: str = ""
    """Why the append's calldata could not be read as the batch the event commits to; empty when
    it was. The Rollup accepts only calldata with one reading, so a non-empty value means this
    node and the contract disagree: a critical error, never a batch to skip."""


def read_batch_calldata(header: BatchHeader, data: bytes) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """The `(txs, roots)` of the append input `data` whose `BatchAppended` carried `header`.

    Raises `CalldataError` if the input does not decode (`contracts.calldata`) or does not yield
    exactly what the contract committed to: `tx_count`, `tx_root`, `roots_root`, `prev_root`,
    `post_root`, the queue range and `l2_time`.
    """
    call = decode_append_batch(data)
    txs, roots = call.txs, call.roots
    mismatched = [
        name
        for name, ok in (
            ("tx_count", len(txs) == header.tx_count),
            ("post_root", bool(roots) and roots[-1] == header.post_root),
            ("prev_root", call.prev_root == header.prev_root),
            (
                "queue range and l2_time",
                (call.queue_start, call.queue_end, call.l2_time)
                == (header.queue_start, header.queue_end, header.l2_time),
            ),
            ("tx_root and roots_root", batch_roots(txs, roots) == (header.tx_root, header.roots_root)),
        )
        if not ok
    ]
    if mismatched:
        raise CalldataError(f"calldata does not match the event's {', '.join(mismatched)}")
    return txs, roots


@dataclass(frozen=True)
class FraudProvenEvent:
    """`Rollup.FraudProven`; `tx_index` is `QUEUE_FRAUD` (2**256 - 1) for a queue fraud."""

    batch_index: int
    tx_index: int
    sequencer: bytes
    challenger: bytes
    reward: int
    meta: EventMeta


@dataclass(frozen=True)
class BatchesRevertedEvent:
    """`Rollup.BatchesReverted`: batches `from_index ..= to_index` are gone."""

    from_index: int
    to_index: int
    meta: EventMeta


@dataclass(frozen=True)
class SequencerSlashedEvent:
    """`Rollup.SequencerSlashed`: the whole bond taken, `reward` paid, `burned` locked forever."""

    sequencer: bytes
    bond: int
    reward: int
    burned: int
    meta: EventMeta


@dataclass(frozen=True)
class SequencerBondedEvent:
    """`Rollup.SequencerBonded`: `amount` added, total `bond`."""

    sequencer: bytes
    amount: int
    bond: int
    meta: EventMeta


@dataclass(frozen=True)
class BondWithdrawnEvent:
    """`Rollup.BondWithdrawn`."""

    sequencer: bytes
    amount: int
    meta: EventMeta


@dataclass(frozen=True)
class DepositedEvent:
    """`Bridge.Deposited`: queue entry `index` is a deposit."""

    index: int
    sender: bytes
    to: bytes
    amount: int
    queue_hash: bytes
    """`keccak(word(index) || word(to) || word(amount))`."""
    timestamp: int
    meta: EventMeta


@dataclass(frozen=True)
class MessageQueuedEvent:
    """`Bridge.MessageQueued`: queue entry `index` is a governance message."""

    index: int
    payload: bytes
    queue_hash: bytes
    """`keccak(word(index) || word(2**256 - 1) || keccak(payload))`."""
    timestamp: int
    meta: EventMeta


@dataclass(frozen=True)
class ForcedTxQueuedEvent:
    """`Bridge.ForcedTxQueued`: queue entry `index` is a user's forced transaction."""

    index: int
    sender: bytes
    """The L1 account that queued it (anyone; the inner transaction carries the signature)."""
    signed_tx: bytes
    """The inner transaction's bytes, as queued."""
    queue_hash: bytes
    """`keccak(word(index) || word(2**256 - 2) || keccak(signed_tx))`."""
    timestamp: int
    meta: EventMeta


@dataclass(frozen=True)
class GovernorChangedEvent:
    """`Bridge.GovernorChanged` (`previous` is the zero address at deployment)."""

    previous: bytes
    governor: bytes
    meta: EventMeta


@dataclass(frozen=True)
class WithdrawalClaimedEvent:
    """`Bridge.WithdrawalClaimed`."""

    key: bytes
    account: bytes
    nonce: int
    recipient: bytes
    amount: int
    batch_index: int
    meta: EventMeta


@dataclass(frozen=True)
class FrozenEvent:
    """`Rollup.Frozen`: no batch is appended any more; the tip (`batch_count` batches, all final) is
    the state every account exits from (protocol section 12)."""

    batch_count: int
    post_root: bytes
    """The frozen state's root (the tip's `post_root`)."""
    queue_end: int
    """Queue entries from here on were never consumed: deposits among them are refunded."""
    timestamp: int
    """L1 time of the freeze: the exit window runs from it."""
    meta: EventMeta


@dataclass(frozen=True)
class DepositRefundedEvent:
    """`Bridge.DepositRefunded`: deposit `index`, never consumed, paid back to its depositor."""

    index: int
    depositor: bytes
    to: bytes
    amount: int
    meta: EventMeta


@dataclass(frozen=True)
class ExitRegisteredEvent:
    """`Bridge.ExitRegistered`: `account`'s equity in the frozen state, and its claim (the equity if
    positive, else 0)."""

    account: bytes
    recipient: bytes
    equity: int
    claim: int
    meta: EventMeta


@dataclass(frozen=True)
class ExitPaidEvent:
    """`Bridge.ExitPaid`: `amount` (the claim, pro rata of the pool) paid to `recipient`."""

    account: bytes
    recipient: bytes
    claim: int
    amount: int
    meta: EventMeta


@dataclass(frozen=True)
class ExitInfo:
    """An account's exit as the Bridge records it."""

    recipient: bytes
    claim: int
    registered: bool
    paid: bool


@dataclass(frozen=True)
class Tip:
    """The Rollup's tip: what the next batch builds on."""

    batch_count: int
    """The next batch's index."""
    post_root: bytes
    """The next batch's `prev_root`."""
    queue_end: int
    """The next batch's `queue_start`."""
    l2_time: int
    """The least `l2_time` the next batch may declare (0 at genesis)."""


@dataclass(frozen=True)
class SequencerInfo:
    """A sequencer's registration."""

    bond: int
    slashed: bool
    last_batch_timestamp: int


@dataclass(frozen=True)
class RollupParams:
    """The Rollup's deployment parameters (protocol section 1)."""

    challenge_window_seconds: int
    min_bond_wei: int
    challenger_reward_bps: int
    force_inclusion_seconds: int
    max_l2_time_lag_seconds: int
    escape_delay_seconds: int


QUEUE_FRAUD = 2**256 - 1
"""`FraudProven.tx_index` of a queue fraud."""


def _meta(log: Any) -> EventMeta:
    return EventMeta(int(log["blockNumber"]), int(log["logIndex"]), bytes(log["transactionHash"]))


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


class _Client:
    """Common plumbing: the web3 contract object and its artifact."""

    CONTRACT = ""

    def __init__(self, w3: Web3, address: str | bytes, *, artifact: Artifact | None = None) -> None:
        self.w3 = w3
        self.address = _checksum(address)
        self.artifact = artifact or compile_all()[self.CONTRACT]
        self.contract: Contract = w3.eth.contract(address=self.address, abi=self.artifact.abi)  # type: ignore[call-overload]

    def _send(
        self, sender: Sender, fn: ContractFunction, *, value: int = 0, timeout: float = 120.0
    ) -> TxResult:
        data = fn._encode_transaction_data()
        tx = {"to": self.address, "data": data, "value": value}
        return send_transaction(self.w3, sender, tx, label=f"{self.CONTRACT}.{fn.fn_name}", timeout=timeout)

    def _view(self, fn: ContractFunction) -> Any:
        return _call(fn, f"{self.CONTRACT}.{fn.fn_name}")

    def _logs(self, event: str, from_block: int, to_block: int | str) -> list[Any]:
        logs = getattr(self.contract.events, event)().get_logs(from_block=from_block, to_block=to_block)
        return sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))

    def _from_receipt(self, event: str, receipt: Any) -> list[Any]:
        return list(getattr(self.contract.events, event)().process_receipt(receipt, errors=_DISCARD))

    def _typed(self) -> dict[str, Callable[[Any], Any]]:
        """What `typed_logs` makes of each event it reads, by name (none here)."""
        return {}

    def typed_logs(self, raw_logs: Iterable[Any]) -> list[tuple[str, Any]]:
        """This contract's logs among `raw_logs` (one `eth_getLogs` answer, which may hold other
        contracts' logs too), each as its event's name and typed record, as the `*_events` reads
        give them; events this client reads no typed record of are left out."""
        typed = self._typed()
        by_topic = {bytes.fromhex(getattr(self.contract.events, e)().topic[2:]): e for e in typed}
        out: list[tuple[str, Any]] = []
        for raw in raw_logs:
            if raw["address"] != self.address or not raw["topics"]:
                continue
            name = by_topic.get(bytes(raw["topics"][0]))
            if name is not None:
                out.append((name, typed[name](getattr(self.contract.events, name)().process_log(raw))))
        return out


class TokenClient(_Client):
    """The ERC-20 collateral token (devnet `Token.vy`, or any ERC-20 in production)."""

    CONTRACT = "Token"

    def approve(self, sender: Sender, spender: str | bytes, amount: int) -> TxResult:
        return self._send(sender, self.contract.functions.approve(_checksum(spender), amount))

    def transfer(self, sender: Sender, to: str | bytes, amount: int) -> TxResult:
        return self._send(sender, self.contract.functions.transfer(_checksum(to), amount))

    def mint(self, sender: Sender, to: str | bytes, amount: int) -> TxResult:
        """Owner only (devnet token)."""
        return self._send(sender, self.contract.functions.mint(_checksum(to), amount))

    def balance_of(self, account: str | bytes) -> int:
        return int(self._view(self.contract.functions.balanceOf(_checksum(account))))

    def allowance(self, owner: str | bytes, spender: str | bytes) -> int:
        return int(self._view(self.contract.functions.allowance(_checksum(owner), _checksum(spender))))

    def total_supply(self) -> int:
        return int(self._view(self.contract.functions.totalSupply()))

    def decimals(self) -> int:
        return int(self._view(self.contract.functions.decimals()))


class RollupClient(_Client):
    """The Rollup: bonds, batches, fraud proofs, finality."""

    CONTRACT = "Rollup"

    def _typed(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "BatchAppended": self._batch_event,
            "BatchesReverted": self._reverted_event,
            "FraudProven": self._fraud_event,
            "Frozen": self._frozen,
        }

    # ---- sequencers ----

    def register(self, sender: Sender, bond_wei: int) -> TxResult:
        """Bond (or top up) `sender` as a sequencer with `bond_wei`."""
        return self._send(sender, self.contract.functions.register(), value=bond_wei)

    def withdraw_bond(self, sender: Sender) -> TxResult:
        """Take the whole bond back (only once the sender's last batch is final)."""
        return self._send(sender, self.contract.functions.withdraw_bond())

    def sequencer_info(self, sequencer: str | bytes) -> SequencerInfo:
        bond, slashed, last = self._view(self.contract.functions.sequencers(_checksum(sequencer)))
        return SequencerInfo(int(bond), bool(slashed), int(last))

    def is_bonded(self, sequencer: str | bytes) -> bool:
        return bool(self._view(self.contract.functions.is_bonded(_checksum(sequencer))))

    # ---- batches ----

    def append_batch(
        self,
        sender: Sender,
        txs: Sequence[bytes],
        roots: Sequence[bytes],
        *,
        prev_root: bytes,
        queue_start: int,
        queue_end: int,
        l2_time: int,
        timeout: float = 120.0,
    ) -> TxResult:
        """Append a batch built on the tip (`prev_root`, `queue_start`), consuming queue entries to
        `queue_end`, with the clock `l2_time` (protocol section 4)."""
        call = AppendBatchCall(
            prev_root,
            queue_start,
            queue_end,
            l2_time,
            tuple(bytes(t) for t in txs),
            tuple(bytes(r) for r in roots),
        )
        tx = {"to": self.address, "data": "0x" + encode_append_batch(call).hex(), "value": 0}
        return send_transaction(self.w3, sender, tx, label=f"{self.CONTRACT}.append_batch", timeout=timeout)

    def batch_hash(self, index: int) -> bytes:
        """The stored `keccak(abi.encode(header))` (meaningless at or past `batch_count`)."""
        return bytes(self._view(self.contract.functions.batch_hash(index)))

    def batch_count(self) -> int:
        return int(self._view(self.contract.functions.batch_count()))

    def tip(self) -> Tip:
        count, root, queue_end, l2_time = self._view(self.contract.functions.tip())
        return Tip(int(count), bytes(root), int(queue_end), int(l2_time))

    def batch_l2_time(self, index: int) -> int:
        """The stored `l2_time` of batch `index` (meaningless at or past `batch_count`)."""
        return int(self._view(self.contract.functions.batch_l2_time(index)))

    def is_final(self, header: BatchHeader) -> bool:
        return bool(self._view(self.contract.functions.is_final(header_arg(header))))

    def is_live(self, header: BatchHeader) -> bool:
        """Appended and not reverted (final or not)."""
        return bool(self._view(self.contract.functions.is_live(header_arg(header))))

    def hash_header(self, header: BatchHeader) -> bytes:
        return bytes(self._view(self.contract.functions.hash_header(header_arg(header))))

    def params(self) -> RollupParams:
        f = self.contract.functions
        return RollupParams(
            int(self._view(f.CHALLENGE_WINDOW_SECONDS())),
            int(self._view(f.MIN_BOND_WEI())),
            int(self._view(f.CHALLENGER_REWARD_BPS())),
            int(self._view(f.FORCE_INCLUSION_SECONDS())),
            int(self._view(f.MAX_L2_TIME_LAG_SECONDS())),
            int(self._view(f.ESCAPE_DELAY_SECONDS())),
        )

    # ---- the escape hatch ----

    def freeze(self, sender: Sender) -> TxResult:
        """Freeze the Rollup (anyone; once no batch was appended for the escape delay while a queue
        entry is overdue, protocol section 12)."""
        return self._send(sender, self.contract.functions.freeze())

    def frozen_at(self) -> int:
        """L1 time of the freeze; 0 while not frozen."""
        return int(self._view(self.contract.functions.frozen_at()))

    def last_append_timestamp(self) -> int:
        """L1 time of the last append (reverted or not), or of `initialize` before any."""
        return int(self._view(self.contract.functions.last_append_timestamp()))

    def frozen_events(self, from_block: int, to_block: int | str = "latest") -> list[FrozenEvent]:
        return [self._frozen(log) for log in self._logs("Frozen", from_block, to_block)]

    def frozen_from_receipt(self, receipt: Any) -> list[FrozenEvent]:
        return [self._frozen(log) for log in self._from_receipt("Frozen", receipt)]

    @staticmethod
    def _frozen(log: Any) -> FrozenEvent:
        a = log["args"]
        return FrozenEvent(
            int(a["batch_count"]), bytes(a["post_root"]), int(a["queue_end"]), int(a["timestamp"]), _meta(log)
        )

    def total_burned(self) -> int:
        return int(self._view(self.contract.functions.total_burned()))

    def verifier_address(self) -> str:
        return str(self._view(self.contract.functions.verifier()))

    def bridge_address(self) -> str:
        return str(self._view(self.contract.functions.bridge()))

    # ---- fraud proofs ----

    def prove_tx_fraud(
        self,
        sender: Sender,
        header: BatchHeader,
        tx_index: int,
        tx: bytes,
        tx_proof: Sequence[bytes],
        pre_root: bytes,
        pre_proof: Sequence[bytes],
        post_root: bytes,
        post_proof: Sequence[bytes],
        witnesses: Sequence[Witness | Sequence[Any]],
    ) -> TxResult:
        """Prove transaction `tx_index` of `header`'s batch wrong (protocol section 5)."""
        fn = self.contract.functions.prove_tx_fraud(
            header_arg(header),
            tx_index,
            bytes(tx),
            [bytes(p) for p in tx_proof],
            pre_root,
            [bytes(p) for p in pre_proof],
            post_root,
            [bytes(p) for p in post_proof],
            [witness_arg(w) for w in witnesses],
        )
        return self._send(sender, fn)

    def prove_queue_fraud(
        self, sender: Sender, header: BatchHeader, witness: Witness | Sequence[Any]
    ) -> TxResult:
        """Prove the batch ends with `next_deposit_index != queue_end`."""
        return self._send(
            sender, self.contract.functions.prove_queue_fraud(header_arg(header), witness_arg(witness))
        )

    def submit_proof(self, sender: Sender, proof: Any) -> TxResult:
        """Send a `prover.proofs.TxFraudProof` or `QueueFraudProof` (duck-typed by its fields)."""
        if hasattr(proof, "tx_index"):
            return self.prove_tx_fraud(
                sender,
                proof.header,
                proof.tx_index,
                proof.tx,
                proof.tx_proof,
                proof.pre_root,
                proof.pre_proof,
                proof.post_root,
                proof.post_proof,
                proof.witnesses,
            )
        return self.prove_queue_fraud(sender, proof.header, proof.witness)

    # ---- events ----

    def batch_appended_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[BatchAppendedEvent]:
        """Every `BatchAppended` in the block range, with txs and roots read from the append calldata.

        The Rollup takes an append only as a direct call from an EOA, so the batch is the top-level
        transaction's input; it is checked against every commitment of the event
        (`read_batch_calldata`). An event whose calldata fails that is returned marked
        `unreadable`, for the derivation to stop at and report, never skipped.
        """
        out: list[BatchAppendedEvent] = []
        for log in self._logs("BatchAppended", from_block, to_block):
            out.append(self._batch_event(log))
        return out

    def batch_appended_from_receipt(self, receipt: Any) -> list[BatchAppendedEvent]:
        return [self._batch_event(log) for log in self._from_receipt("BatchAppended", receipt)]

    def _batch_event(self, log: Any) -> BatchAppendedEvent:
        header = header_from_abi(log["args"])
        # an unreachable L1 raises here (temporary); the calldata itself never makes this raise
        tx = self.w3.eth.get_transaction(log["transactionHash"])
        try:
            txs, roots = read_batch_calldata(header, bytes(HexBytes(tx["input"])))
        except CalldataError as exc:
            return BatchAppendedEvent(header, (), (), _meta(log), unreadable=str(exc))
        return BatchAppendedEvent(header, txs, roots, _meta(log))

    def fraud_proven_events(self, from_block: int, to_block: int | str = "latest") -> list[FraudProvenEvent]:
        return [self._fraud_event(log) for log in self._logs("FraudProven", from_block, to_block)]

    def fraud_proven_from_receipt(self, receipt: Any) -> list[FraudProvenEvent]:
        return [self._fraud_event(log) for log in self._from_receipt("FraudProven", receipt)]

    @staticmethod
    def _fraud_event(log: Any) -> FraudProvenEvent:
        a = log["args"]
        return FraudProvenEvent(
            int(a["batch_index"]),
            int(a["tx_index"]),
            _address_bytes(a["sequencer"]),
            _address_bytes(a["challenger"]),
            int(a["reward"]),
            _meta(log),
        )

    def batches_reverted_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[BatchesRevertedEvent]:
        return [self._reverted_event(log) for log in self._logs("BatchesReverted", from_block, to_block)]

    def batches_reverted_from_receipt(self, receipt: Any) -> list[BatchesRevertedEvent]:
        return [self._reverted_event(log) for log in self._from_receipt("BatchesReverted", receipt)]

    @staticmethod
    def _reverted_event(log: Any) -> BatchesRevertedEvent:
        a = log["args"]
        return BatchesRevertedEvent(int(a["from_index"]), int(a["to_index"]), _meta(log))

    def sequencer_slashed_from_receipt(self, receipt: Any) -> list[SequencerSlashedEvent]:
        return [self._slashed_event(log) for log in self._from_receipt("SequencerSlashed", receipt)]

    def sequencer_slashed_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[SequencerSlashedEvent]:
        return [self._slashed_event(log) for log in self._logs("SequencerSlashed", from_block, to_block)]

    @staticmethod
    def _slashed_event(log: Any) -> SequencerSlashedEvent:
        a = log["args"]
        return SequencerSlashedEvent(
            _address_bytes(a["sequencer"]), int(a["bond"]), int(a["reward"]), int(a["burned"]), _meta(log)
        )

    def sequencer_bonded_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[SequencerBondedEvent]:
        return [
            SequencerBondedEvent(
                _address_bytes(log["args"]["sequencer"]),
                int(log["args"]["amount"]),
                int(log["args"]["bond"]),
                _meta(log),
            )
            for log in self._logs("SequencerBonded", from_block, to_block)
        ]

    def bond_withdrawn_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[BondWithdrawnEvent]:
        return [
            BondWithdrawnEvent(
                _address_bytes(log["args"]["sequencer"]), int(log["args"]["amount"]), _meta(log)
            )
            for log in self._logs("BondWithdrawn", from_block, to_block)
        ]


class BridgeClient(_Client):
    """The Bridge: the L1 queue (deposits, governance messages, forced transactions) and withdrawal claims."""

    CONTRACT = "Bridge"

    def _typed(self) -> dict[str, Callable[[Any], Any]]:
        return {"Deposited": self._deposited, "MessageQueued": self._message, "ForcedTxQueued": self._forced}

    def deposit(self, sender: Sender, to: str | bytes, amount: int) -> TxResult:
        """Queue a deposit of `amount` for L2 account `to` (approve the Bridge first)."""
        return self._send(sender, self.contract.functions.deposit(_checksum(to), amount))

    def send_message(self, sender: Sender, payload: bytes) -> TxResult:
        """Queue a governance message (governor only; 1 to 1015 bytes)."""
        return self._send(sender, self.contract.functions.send_message(bytes(payload)))

    def force_tx(self, sender: Sender, signed_tx: bytes) -> TxResult:
        """Queue a signed Transfer, Withdraw or Cancel for forced inclusion (anyone; 1 to 1015 bytes)."""
        return self._send(sender, self.contract.functions.force_tx(bytes(signed_tx)))

    def set_governor(self, sender: Sender, new_governor: str | bytes) -> TxResult:
        """Hand the governor role to `new_governor` (governor only)."""
        return self._send(sender, self.contract.functions.set_governor(_checksum(new_governor)))

    def governor(self) -> str:
        return str(self._view(self.contract.functions.governor()))

    def queue_length(self) -> int:
        """Number of entries ever queued (deposits, messages, forced transactions)."""
        return int(self._view(self.contract.functions.queue_length()))

    def queue_hash(self, index: int) -> bytes:
        """The queue hash of entry `index` (zero past the end)."""
        return bytes(self._view(self.contract.functions.queue_hash(index)))

    def queue_timestamp(self, index: int) -> int:
        """L1 timestamp at which entry `index` was queued (zero past the end)."""
        return int(self._view(self.contract.functions.queue_timestamp(index)))

    def total_deposited(self) -> int:
        return int(self._view(self.contract.functions.total_deposited()))

    def is_claimed(self, withdrawal_key: bytes) -> bool:
        return bool(self._view(self.contract.functions.claimed(withdrawal_key)))

    def token_address(self) -> str:
        return str(self._view(self.contract.functions.TOKEN()))

    def claim_withdrawal(
        self,
        sender: Sender,
        header: BatchHeader,
        account: bytes | str,
        nonce: int,
        l1_recipient: bytes | str,
        amount: int,
        witness: Witness | Sequence[Any],
    ) -> TxResult:
        """Pay withdrawal `(account, nonce)` proven under the post root of the final batch `header`."""
        fn = self.contract.functions.claim_withdrawal(
            header_arg(header),
            _checksum(account),
            nonce,
            _checksum(l1_recipient),
            amount,
            witness_arg(witness),
        )
        return self._send(sender, fn)

    def submit_claim(self, sender: Sender, claim: Any) -> TxResult:
        """Send a `prover.withdrawals.WithdrawalClaim` (duck-typed by its fields)."""
        return self.claim_withdrawal(
            sender, claim.header, claim.account, claim.nonce, claim.l1_recipient, claim.amount, claim.witness
        )

    # ---- the escape hatch (protocol section 12) ----

    def exit_window_seconds(self) -> int:
        return int(self._view(self.contract.functions.EXIT_WINDOW_SECONDS()))

    def register_exit(
        self,
        sender: Sender,
        recipient: str | bytes,
        account_witness: Witness | Sequence[Any],
        markets_witness: Witness | Sequence[Any],
    ) -> TxResult:
        """Register `sender`'s exit from the frozen state (it is the account), paid later to
        `recipient`."""
        fn = self.contract.functions.register_exit(
            _checksum(recipient), witness_arg(account_witness), witness_arg(markets_witness)
        )
        return self._send(sender, fn)

    def pay_exit(self, sender: Sender, account: str | bytes) -> TxResult:
        """Pay `account`'s registered exit (anyone; after the exit window)."""
        return self._send(sender, self.contract.functions.pay_exit(_checksum(account)))

    def claim_refund(self, sender: Sender, index: int, to: str | bytes, amount: int) -> TxResult:
        """Refund deposit `index` (never consumed) to its depositor (anyone; once frozen)."""
        return self._send(sender, self.contract.functions.claim_refund(index, _checksum(to), amount))

    def exit_of(self, account: str | bytes) -> ExitInfo:
        recipient, claim, registered, paid = self._view(self.contract.functions.exits(_checksum(account)))
        return ExitInfo(_address_bytes(recipient), int(claim), bool(registered), bool(paid))

    def exit_claims(self) -> int:
        return int(self._view(self.contract.functions.exit_claims()))

    def exit_pool(self) -> tuple[int, bool]:
        """`(pool, fixed)`."""
        f = self.contract.functions
        return int(self._view(f.exit_pool())), bool(self._view(f.exit_pool_fixed()))

    def exits_paid(self) -> int:
        return int(self._view(self.contract.functions.exits_paid()))

    def refunds_outstanding(self) -> int:
        return int(self._view(self.contract.functions.refunds_outstanding()))

    def deposited_before(self, index: int) -> int:
        return int(self._view(self.contract.functions.deposited_before(index)))

    def depositor(self, index: int) -> str:
        return str(self._view(self.contract.functions.depositor(index)))

    def is_refunded(self, index: int) -> bool:
        return bool(self._view(self.contract.functions.refunded(index)))

    def exit_registered_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[ExitRegisteredEvent]:
        return [self._exit_registered(log) for log in self._logs("ExitRegistered", from_block, to_block)]

    def exit_registered_from_receipt(self, receipt: Any) -> list[ExitRegisteredEvent]:
        return [self._exit_registered(log) for log in self._from_receipt("ExitRegistered", receipt)]

    @staticmethod
    def _exit_registered(log: Any) -> ExitRegisteredEvent:
        a = log["args"]
        return ExitRegisteredEvent(
            _address_bytes(a["account"]),
            _address_bytes(a["recipient"]),
            int(a["equity"]),
            int(a["claim"]),
            _meta(log),
        )

    def exit_paid_events(self, from_block: int, to_block: int | str = "latest") -> list[ExitPaidEvent]:
        return [self._exit_paid(log) for log in self._logs("ExitPaid", from_block, to_block)]

    def exit_paid_from_receipt(self, receipt: Any) -> list[ExitPaidEvent]:
        return [self._exit_paid(log) for log in self._from_receipt("ExitPaid", receipt)]

    @staticmethod
    def _exit_paid(log: Any) -> ExitPaidEvent:
        a = log["args"]
        return ExitPaidEvent(
            _address_bytes(a["account"]),
            _address_bytes(a["recipient"]),
            int(a["claim"]),
            int(a["amount"]),
            _meta(log),
        )

    def deposit_refunded_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[DepositRefundedEvent]:
        return [self._refunded(log) for log in self._logs("DepositRefunded", from_block, to_block)]

    def deposit_refunded_from_receipt(self, receipt: Any) -> list[DepositRefundedEvent]:
        return [self._refunded(log) for log in self._from_receipt("DepositRefunded", receipt)]

    @staticmethod
    def _refunded(log: Any) -> DepositRefundedEvent:
        a = log["args"]
        return DepositRefundedEvent(
            int(a["index"]),
            _address_bytes(a["depositor"]),
            _address_bytes(a["to"]),
            int(a["amount"]),
            _meta(log),
        )

    def deposited_events(self, from_block: int, to_block: int | str = "latest") -> list[DepositedEvent]:
        return [self._deposited(log) for log in self._logs("Deposited", from_block, to_block)]

    def deposited_from_receipt(self, receipt: Any) -> list[DepositedEvent]:
        return [self._deposited(log) for log in self._from_receipt("Deposited", receipt)]

    @staticmethod
    def _deposited(log: Any) -> DepositedEvent:
        a = log["args"]
        return DepositedEvent(
            int(a["index"]),
            _address_bytes(a["sender"]),
            _address_bytes(a["to"]),
            int(a["amount"]),
            bytes(a["queue_hash"]),
            int(a["timestamp"]),
            _meta(log),
        )

    def message_queued_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[MessageQueuedEvent]:
        return [self._message(log) for log in self._logs("MessageQueued", from_block, to_block)]

    def message_queued_from_receipt(self, receipt: Any) -> list[MessageQueuedEvent]:
        return [self._message(log) for log in self._from_receipt("MessageQueued", receipt)]

    @staticmethod
    def _message(log: Any) -> MessageQueuedEvent:
        a = log["args"]
        return MessageQueuedEvent(
            int(a["index"]), bytes(a["payload"]), bytes(a["queue_hash"]), int(a["timestamp"]), _meta(log)
        )

    def forced_tx_queued_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[ForcedTxQueuedEvent]:
        return [self._forced(log) for log in self._logs("ForcedTxQueued", from_block, to_block)]

    def forced_tx_queued_from_receipt(self, receipt: Any) -> list[ForcedTxQueuedEvent]:
        return [self._forced(log) for log in self._from_receipt("ForcedTxQueued", receipt)]

    @staticmethod
    def _forced(log: Any) -> ForcedTxQueuedEvent:
        a = log["args"]
        return ForcedTxQueuedEvent(
            int(a["index"]),
            _address_bytes(a["sender"]),
            bytes(a["signed_tx"]),
            bytes(a["queue_hash"]),
            int(a["timestamp"]),
            _meta(log),
        )

    def governor_changed_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[GovernorChangedEvent]:
        return [self._governor(log) for log in self._logs("GovernorChanged", from_block, to_block)]

    def governor_changed_from_receipt(self, receipt: Any) -> list[GovernorChangedEvent]:
        return [self._governor(log) for log in self._from_receipt("GovernorChanged", receipt)]

    @staticmethod
    def _governor(log: Any) -> GovernorChangedEvent:
        a = log["args"]
        return GovernorChangedEvent(_address_bytes(a["previous"]), _address_bytes(a["governor"]), _meta(log))

    def withdrawal_claimed_events(
        self, from_block: int, to_block: int | str = "latest"
    ) -> list[WithdrawalClaimedEvent]:
        return [self._claimed(log) for log in self._logs("WithdrawalClaimed", from_block, to_block)]

    def withdrawal_claimed_from_receipt(self, receipt: Any) -> list[WithdrawalClaimedEvent]:
        return [self._claimed(log) for log in self._from_receipt("WithdrawalClaimed", receipt)]

    @staticmethod
    def _claimed(log: Any) -> WithdrawalClaimedEvent:
        a = log["args"]
        return WithdrawalClaimedEvent(
            bytes(a["key"]),
            _address_bytes(a["account"]),
            int(a["nonce"]),
            _address_bytes(a["recipient"]),
            int(a["amount"]),
            int(a["batch_index"]),
            _meta(log),
        )


class VerifierClient(_Client):
    """The FraudVerifier (views only)."""

    CONTRACT = "FraudVerifier"

    def apply_tx(
        self,
        pre_root: bytes,
        tx: bytes,
        witnesses: Iterable[Witness | Sequence[Any]],
        queue_end: int,
        l2_time: int,
    ) -> bytes:
        """The post-state root of `tx` on `pre_root` (raises `TransactionReverted` on a bad witness)."""
        return bytes(self._view(self._apply_tx(pre_root, tx, witnesses, queue_end, l2_time)))

    def apply_tx_gas(
        self,
        pre_root: bytes,
        tx: bytes,
        witnesses: Iterable[Witness | Sequence[Any]],
        queue_end: int,
        l2_time: int,
    ) -> int:
        """Gas of an `apply_tx` call (as a transaction: includes the 21k base and calldata)."""
        fn = self._apply_tx(pre_root, tx, witnesses, queue_end, l2_time)
        try:
            return int(fn.estimate_gas())
        except _REVERT_ERRORS as exc:
            raise TransactionReverted("FraudVerifier.apply_tx", _revert_reason(exc)) from exc

    def _apply_tx(
        self,
        pre_root: bytes,
        tx: bytes,
        witnesses: Iterable[Witness | Sequence[Any]],
        queue_end: int,
        l2_time: int,
    ) -> ContractFunction:
        return self.contract.functions.apply_tx(
            pre_root, bytes(tx), [witness_arg(w) for w in witnesses], queue_end, l2_time
        )

    def rules_addresses(self) -> tuple[str, str, str, str]:
        """`(TransferRules, OracleRules, TradeRules, RiskRules)`, the contracts `apply_tx` dispatches
        to."""
        f = self.contract.functions
        return (
            str(self._view(f.TRANSFER_RULES())),
            str(self._view(f.ORACLE_RULES())),
            str(self._view(f.TRADE_RULES())),
            str(self._view(f.RISK_RULES())),
        )


class RulesClient(_Client):
    """A rules contract (TransferRules, OracleRules, TradeRules or RiskRules; views only)."""

    def __init__(
        self, w3: Web3, address: str | bytes, contract: str, *, artifact: Artifact | None = None
    ) -> None:
        self.CONTRACT = contract
        super().__init__(w3, address, artifact=artifact)

    def execute(
        self, tx: bytes, values: Sequence[bytes], queue_end: int, l2_time: int
    ) -> tuple[tuple[bytes, ...], bool, tuple[bytes, ...]]:
        """`(touched keys, applies, keccak of each new value)` of `tx` on the keys' `values`
        (section 5)."""
        fn = self.contract.functions.execute(bytes(tx), [bytes(v) for v in values], queue_end, l2_time)
        keys, applies, new_hashes = self._view(fn)
        return tuple(bytes(k) for k in keys), bool(applies), tuple(bytes(h) for h in new_hashes)

    def domain_separator(self) -> bytes:
        return bytes(self._view(self.contract.functions.domain_separator()))

    def rollup_address(self) -> str:
        return str(self._view(self.contract.functions.ROLLUP()))

    def bridge_address(self) -> str:
        """TransferRules only: the Bridge whose queue a Deposit, L1Message or ForcedTx must match."""
        return str(self._view(self.contract.functions.BRIDGE()))
