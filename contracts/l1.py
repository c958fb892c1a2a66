"""The services' L1 adapter over web3 and the contract bindings; works with any JSON-RPC L1.

`Web3L1` is at once the `L1Reader` (events as plain records, in L1 order), the sequencer's
`L1Writer` (bond, append) and the watcher's `FraudSink` (send a proof).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import BlockNotFound

from contracts.bindings import (
    BatchAppendedEvent,
    BatchesRevertedEvent,
    BridgeClient,
    DepositedEvent,
    ForcedTxQueuedEvent,
    FraudProvenEvent,
    FrozenEvent,
    MessageQueuedEvent,
    RollupClient,
    Sender,
)
from contracts.deployment import Deployment
from contracts.jsonrpc import JsonRpc, reaches_directly
from contracts.logs import get_logger
from sequencer.stf.l1types import (
    L1Batch,
    L1Deposit,
    L1Event,
    L1ForcedTx,
    L1Fraud,
    L1Frozen,
    L1Message,
    L1Revert,
)
from sequencer.stf.types import ChainConfig

log = get_logger("l1")

LOG_RANGE_BLOCKS = 2_000
"""Largest block range asked of eth_getLogs at once (public endpoints cap ranges)."""
SERVICE_TIMEOUT_S = 10.0
"""Default of the services' L1 request timeout (`--l1-timeout-s`): a request to an L1 that hangs
gives up after this long and is retried, so no loop waits on it for longer."""


def deposit_record(d: DepositedEvent) -> L1Deposit:
    """A Bridge `Deposited` event as the derivation's record."""
    return L1Deposit(
        d.index, d.to, d.amount, d.queue_hash, d.timestamp, d.meta.block_number, d.meta.log_index
    )


def message_record(m: MessageQueuedEvent) -> L1Message:
    """A Bridge `MessageQueued` event as the derivation's record."""
    return L1Message(m.index, m.payload, m.queue_hash, m.timestamp, m.meta.block_number, m.meta.log_index)


def forced_record(f: ForcedTxQueuedEvent) -> L1ForcedTx:
    """A Bridge `ForcedTxQueued` event as the derivation's record."""
    return L1ForcedTx(f.index, f.signed_tx, f.queue_hash, f.timestamp, f.meta.block_number, f.meta.log_index)


def batch_record(e: BatchAppendedEvent) -> L1Batch:
    """A `BatchAppended` event (with its calldata) as the derivation's record."""
    return L1Batch(
        e.header, e.txs, e.roots, e.meta.block_number, e.meta.log_index, e.meta.tx_hash, e.unreadable
    )


def revert_record(r: BatchesRevertedEvent) -> L1Revert:
    """A `BatchesReverted` event as the derivation's record."""
    return L1Revert(r.from_index, r.to_index, r.meta.block_number, r.meta.log_index)


def fraud_record(f: FraudProvenEvent) -> L1Fraud:
    """A `FraudProven` event as the derivation's record."""
    return L1Fraud(
        f.batch_index, f.tx_index, f.sequencer, f.challenger, f.reward, f.meta.block_number, f.meta.log_index
    )


def frozen_record(f: FrozenEvent) -> L1Frozen:
    """A `Frozen` event as the derivation's record."""
    return L1Frozen(
        f.batch_count, f.post_root, f.queue_end, f.timestamp, f.meta.block_number, f.meta.log_index
    )


RECORDS: dict[str, Callable[[Any], L1Event]] = {
    "Deposited": deposit_record,
    "MessageQueued": message_record,
    "ForcedTxQueued": forced_record,
    "BatchAppended": batch_record,
    "BatchesReverted": revert_record,
    "FraudProven": fraud_record,
    "Frozen": frozen_record,
}
"""The derivation's record of each event it reads, by event name."""


@dataclass(frozen=True)
class Mined:
    """A transaction the L1 mined and did not revert."""

    tx_hash: bytes
    l1_block: int
    """The block that holds it (a reorganisation of the L1 may still remove it)."""


def load_deployment(path: str | Path) -> Deployment:
    """Read the deployment file (contract addresses, chain id, deploy block)."""
    return Deployment.load(path)


class Web3L1:
    """Reads rollup events from, and sends rollup transactions to, one L1 endpoint."""

    _rpc: JsonRpc | None
    """The endpoint's raw JSON-RPC, for the polled reads (None over an in-process web3, or when a
    proxy stands between: web3's path then serves them)."""

    def __init__(
        self,
        url: str,
        deployment: Deployment,
        *,
        private_key: str = "",
        timeout: float = 30.0,
        confirmations: int = 0,
    ) -> None:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        self._setup(w3, deployment, Sender.from_key(private_key) if private_key else None, confirmations)
        self._rpc = JsonRpc(url, timeout) if reaches_directly(url) else None

    @classmethod
    def over(
        cls, w3: Web3, deployment: Deployment, *, sender: Sender | None = None, confirmations: int = 0
    ) -> Web3L1:
        """The adapter over an existing web3 connection (an in-process L1 in tests and tools)."""
        self = cls.__new__(cls)
        self._setup(w3, deployment, sender, confirmations)
        self._rpc = None
        return self

    def _setup(self, w3: Web3, deployment: Deployment, sender: Sender | None, confirmations: int) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.rollup = RollupClient(self.w3, deployment.rollup)
        self.bridge = BridgeClient(self.w3, deployment.bridge)
        self.sender = sender
        self.confirmations = confirmations
        """Blocks a block must be buried under before it is read (0 on a devnet; a live chain wants
        more, see docs/protocol.md section 8)."""
        self.address = bytes.fromhex(self.sender.address[2:]) if self.sender else b"\x00" * 20
        chain_id = self.w3.eth.chain_id
        if chain_id != deployment.chain_id:
            raise ValueError(f"the L1 has chain id {chain_id}, the deployment says {deployment.chain_id}")

    def chain_config(self) -> ChainConfig:
        """The EIP-712 domain of this deployment."""
        return ChainConfig(
            chain_id=self.deployment.chain_id, rollup=bytes.fromhex(self.deployment.rollup[2:])
        )

    def challenge_window_seconds(self) -> int:
        """The Rollup's challenge window."""
        return self.rollup.params().challenge_window_seconds

    def _need_sender(self) -> Sender:
        if self.sender is None:
            raise ValueError("this node has no L1 private key: it can read but not send")
        return self.sender

    # ---- L1Reader ----------------------------------------------------------------------

    def head_block(self) -> int:
        """The latest L1 block with `confirmations` blocks on top of it."""
        if self._rpc is not None:  # the node's poll: see contracts.jsonrpc
            return max(0, int(self._rpc.call("eth_blockNumber", []), 16) - self.confirmations)
        return max(0, int(self.w3.eth.block_number) - self.confirmations)

    def block_hash(self, number: int) -> bytes | None:
        """The hash of block `number` as the L1 has it now; None if it has no such block."""
        if self._rpc is not None:
            block = self._rpc.call("eth_getBlockByNumber", [hex(number), False])
            return None if block is None else bytes.fromhex(block["hash"].removeprefix("0x"))
        try:
            return bytes(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    def events(self, from_block: int, to_block: int) -> list[L1Event]:
        """Every rollup event in the inclusive range, in (block, log index) order."""
        out: list[L1Event] = []
        start = from_block
        while start <= to_block:
            end = min(to_block, start + LOG_RANGE_BLOCKS - 1)
            out.extend(self._events(start, end))
            start = end + 1
        out.sort(key=lambda e: (e.l1_block, e.log_index))
        return out

    def _events(self, a: int, b: int) -> list[L1Event]:
        # one eth_getLogs for both contracts: each request costs the reader far more than its logs
        raw = self.w3.eth.get_logs(
            {
                "fromBlock": a,
                "toBlock": b,
                "address": [self.bridge.contract.address, self.rollup.contract.address],
            }
        )
        typed = self.bridge.typed_logs(raw) + self.rollup.typed_logs(raw)
        return [RECORDS[name](event) for name, event in typed]

    # ---- L1Writer ----------------------------------------------------------------------

    def ensure_bonded(self, bond_wei: int) -> None:
        """Register with `bond_wei` unless already bonded."""
        sender = self._need_sender()
        if not self.rollup.is_bonded(sender.address):
            result = self.rollup.register(sender, bond_wei)
            log.info("bonded", sequencer=sender.address, bond_wei=bond_wei, l1_tx=result.tx_hash)

    def head_timestamp(self) -> int:
        """Timestamp of the latest L1 block (the batch clock may not run ahead of L1)."""
        if self._rpc is not None:
            return int(self._rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def append_batch(
        self,
        txs: list[bytes],
        roots: list[bytes],
        prev_root: bytes,
        queue_start: int,
        queue_end: int,
        l2_time: int,
    ) -> Mined:
        """Append a batch on the tip we built on, with its clock `l2_time` (raises with the revert
        reason)."""
        result = self.rollup.append_batch(
            self._need_sender(),
            txs,
            roots,
            prev_root=prev_root,
            queue_start=queue_start,
            queue_end=queue_end,
            l2_time=l2_time,
        )
        return Mined(result.tx_hash, result.block_number)

    # ---- FraudSink ---------------------------------------------------------------------

    def submit_proof(self, proof: Any) -> Mined:
        """Send a fraud proof (raises with the revert reason)."""
        result = self.rollup.submit_proof(self._need_sender(), proof)
        return Mined(result.tx_hash, result.block_number)
