"""A deployed rollup on eth-tester plus the Python state machine, for the contract tests.

Expected values always come from `sequencer.stf` (and witnesses from `prover.witness`); nothing
here restates a rule of the state machine.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vyper
from eth_tester import EthereumTester, PyEVMBackend
from vyper.compiler.input_bundle import FilesystemInputBundle
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.providers.eth_tester.defaults import API_ENDPOINTS, static_return

from contracts.bindings import (
    BridgeClient,
    RollupClient,
    RulesClient,
    Sender,
    TokenClient,
    TxResult,
    VerifierClient,
    deploy_contract,
)
from contracts.build import CONTRACTS_DIR, compile_all
from devnet.deploy import Deployment, DeployParams, deploy_all
from prover.proofs import tx_fraud_proof
from prover.witness import build_tx_witnesses
from sequencer.stf.codec import encode_tx
from sequencer.stf.eip712 import address_of, sign_transfer, sign_withdraw
from sequencer.stf.hashing import keccak
from sequencer.stf.smt import Witness
from sequencer.stf.state import State, copy_state
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import BatchHeader, ChainConfig, Deposit, L1Context

CHALLENGE_WINDOW_SECONDS = 20
MIN_BOND_WEI = 10**18
CHALLENGER_REWARD_BPS = 5_000
FORCE_INCLUSION_SECONDS = 60
MAX_L2_TIME_LAG_SECONDS = 600
FRAUD_GAS_LIMIT = 1_000_000

REPO_ROOT = Path(__file__).resolve().parents[2]
GAS_REPORT = REPO_ROOT / ".cache" / "contracts" / "gas_report.json"
TEST_VYPER_DIR = Path(__file__).resolve().parent / "vyper"


def user_key(i: int) -> bytes:
    """A deterministic L2 private key."""
    return keccak(b"contracts-test-user" + i.to_bytes(4, "big"))


def user_address(i: int) -> bytes:
    return address_of(user_key(i))


def record_gas(name: str, gas: int) -> None:
    """Add a measured figure to `.cache/contracts/gas_report.json` (read by the bench)."""
    GAS_REPORT.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = json.loads(GAS_REPORT.read_text()) if GAS_REPORT.exists() else {}
    data[name] = gas
    GAS_REPORT.write_text(json.dumps(data, indent=2, sort_keys=True))


@dataclass
class AppendedBatch:
    """A batch as appended, with the honest state before it (for proofs)."""

    header: BatchHeader
    txs: list[bytes]
    roots: list[bytes]
    pre_state: State
    ctx: L1Context
    """The batch's L1 context (queue hashes, `queue_end`, `l2_time`)."""
    result: TxResult


@dataclass
class Harness:
    """eth-tester + deployed contracts + an honest Python L2 state."""

    w3: Web3
    deployment: Deployment
    deployer: Sender
    rollup: RollupClient
    bridge: BridgeClient
    token: TokenClient
    verifier: VerifierClient
    transfer_rules: RulesClient
    oracle_rules: RulesClient
    trade_rules: RulesClient
    risk_rules: RulesClient
    config: ChainConfig
    state: State = field(default_factory=State)
    """The honest state at the tip (advanced by `append` unless told not to)."""

    @classmethod
    def create(cls, params: DeployParams | None = None) -> Harness:
        w3 = Web3(EthereumTesterProvider())
        deployer = Sender.unlocked(w3.eth.accounts[0])
        d = deploy_all(
            w3,
            deployer,
            params
            or DeployParams(
                challenge_window_seconds=CHALLENGE_WINDOW_SECONDS,
                min_bond_wei=MIN_BOND_WEI,
                challenger_reward_bps=CHALLENGER_REWARD_BPS,
                force_inclusion_seconds=FORCE_INCLUSION_SECONDS,
                max_l2_time_lag_seconds=MAX_L2_TIME_LAG_SECONDS,
            ),
        )
        return cls(
            w3=w3,
            deployment=d,
            deployer=deployer,
            rollup=RollupClient(w3, d.rollup),
            bridge=BridgeClient(w3, d.bridge),
            token=TokenClient(w3, d.token),
            verifier=VerifierClient(w3, d.verifier),
            transfer_rules=RulesClient(w3, d.transfer_rules, "TransferRules"),
            oracle_rules=RulesClient(w3, d.oracle_rules, "OracleRules"),
            trade_rules=RulesClient(w3, d.trade_rules, "TradeRules"),
            risk_rules=RulesClient(w3, d.risk_rules, "RiskRules"),
            config=ChainConfig(d.chain_id, bytes.fromhex(d.rollup[2:])),
        )

    # ---- L1 accounts and time ----

    def account(self, i: int) -> Sender:
        """eth-tester's unlocked account `i` (1..9; 0 is the deployer)."""
        return Sender.unlocked(self.w3.eth.accounts[i])

    def balance(self, sender: Sender | str) -> int:
        return self.w3.eth.get_balance(sender.address if isinstance(sender, Sender) else sender)

    def now(self) -> int:
        """Timestamp the next mined block will have (at least)."""
        return int(self.w3.eth.get_block("pending")["timestamp"])

    def latest_timestamp(self) -> int:
        """Timestamp of the latest block: every later block is later, so an `l2_time` of it or
        less is never ahead of the append's block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def default_l2_time(self) -> int:
        """The clock an honest sequencer would declare now: the tip's, or the L1 head's if later."""
        return max(self.rollup.tip().l2_time, self.latest_timestamp())

    def travel_to(self, timestamp: int) -> None:
        """Mine blocks until the latest one is at `timestamp` or later (what views see); the
        next transaction's block is later still."""
        tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        if self.w3.eth.get_block("latest")["timestamp"] < timestamp:
            tester.time_travel(max(timestamp, self.now()))
        while self.w3.eth.get_block("latest")["timestamp"] < timestamp:
            tester.mine_blocks(1)

    def fee(self, result: TxResult) -> int:
        """Wei paid for gas by a transaction."""
        return int(result.receipt["gasUsed"]) * int(result.receipt["effectiveGasPrice"])

    # ---- deposits ----

    def deposit(self, to: bytes, amount: int, *, depositor: int = 5) -> TxResult:
        """Mint, approve and deposit `amount` for L2 account `to` from L1 account `depositor`."""
        who = self.account(depositor)
        self.token.mint(self.deployer, who.address, amount)
        self.token.approve(who, self.bridge.address, amount)
        return self.bridge.deposit(who, to, amount)

    def ctx(self, queue_end: int, l2_time: int = 0) -> L1Context:
        """The L1 context of a batch: queue hashes as the Bridge stores them, and its clock."""
        count = self.bridge.queue_length()
        return L1Context(queue_end, {i: self.bridge.queue_hash(i) for i in range(count)}, l2_time)

    # ---- L2 transactions ----

    def deposit_tx(self, queue_index: int, to: bytes, amount: int) -> bytes:
        return encode_tx(Deposit(queue_index, to, amount))

    def transfer_tx(self, user: int, to: bytes, amount: int, nonce: int) -> bytes:
        return encode_tx(sign_transfer(user_key(user), to, amount, nonce, self.config))

    def withdraw_tx(self, user: int, to: bytes, amount: int, nonce: int) -> bytes:
        return encode_tx(sign_withdraw(user_key(user), to, amount, nonce, self.config))

    # ---- batches ----

    def bond(self, sequencer: Sender, amount: int = MIN_BOND_WEI) -> TxResult:
        return self.rollup.register(sequencer, amount)

    def honest_roots(
        self, txs: list[bytes], queue_end: int, state: State | None = None, l2_time: int = 0
    ) -> list[bytes]:
        """Per-transaction post roots by the Python state machine, on a copy of `state`."""
        work = copy_state(state if state is not None else self.state)
        ctx = self.ctx(queue_end, l2_time)
        return [apply_tx(work, raw, ctx, self.config).post_root for raw in txs]

    def append(
        self,
        sequencer: Sender,
        txs: list[bytes],
        *,
        queue_end: int | None = None,
        l2_time: int | None = None,
        roots: list[bytes] | None = None,
        advance: bool = True,
    ) -> AppendedBatch:
        """Append `txs` on the tip; `roots` default to the honest ones, `l2_time` to
        `default_l2_time()`.

        The honest state advances by the transactions when `advance` (pass False for a batch
        that will be proven wrong).
        """
        tip = self.rollup.tip()
        if queue_end is None:
            queue_end = tip.queue_end
        if l2_time is None:
            l2_time = self.default_l2_time()
        ctx = self.ctx(queue_end, l2_time)
        pre = copy_state(self.state)
        if roots is None:
            roots = self.honest_roots(txs, queue_end, l2_time=l2_time)
        result = self.rollup.append_batch(
            sequencer,
            txs,
            roots,
            prev_root=tip.post_root,
            queue_start=tip.queue_end,
            queue_end=queue_end,
            l2_time=l2_time,
        )
        (event,) = self.rollup.batch_appended_from_receipt(result.receipt)
        if advance:
            for raw in txs:
                apply_tx(self.state, raw, ctx, self.config)
        return AppendedBatch(event.header, list(txs), list(roots), pre, ctx, result)

    def tx_fraud_args(self, batch: AppendedBatch, i: int) -> dict[str, Any]:
        """Arguments of `prove_tx_fraud` for transaction `i`, built by the prover itself."""
        proof = tx_fraud_proof(
            self.config, batch.header, batch.txs, batch.roots, batch.pre_state, batch.ctx, i
        )
        return dataclasses.asdict(proof) | {"header": proof.header, "witnesses": proof.witnesses}

    def post_state(self, batch: AppendedBatch) -> State:
        """The honest state after `batch`."""
        state = copy_state(batch.pre_state)
        for raw in batch.txs:
            apply_tx(state, raw, batch.ctx, self.config)
        return state


def witness_of(state: State, key: bytes) -> Witness:
    return state.tree.witness(key)


# ---- a verifier on its own, for the differential tests --------------------------------------


def tester_web3(chain_id: int | None = None) -> Web3:
    """A fresh eth-tester chain; with `chain_id`, the EVM's CHAINID and `eth_chainId` answer it.

    eth-tester hard-codes its chain id on a class built inside a function: swap in a subclass with
    ours, as the embedded L1 does (`devnet.l1.chain`)."""
    if chain_id is None:
        return Web3(EthereumTesterProvider())
    backend = PyEVMBackend()
    backend.chain.__class__ = type("TesterChain", (type(backend.chain),), {"chain_id": chain_id})
    endpoints = {**API_ENDPOINTS, "eth": {**API_ENDPOINTS["eth"], "chainId": static_return(chain_id)}}
    return Web3(EthereumTesterProvider(EthereumTester(backend), api_endpoints=endpoints))


def deploy_test_contract(w3: Web3, deployer: Sender, name: str, *args: Any) -> Contract:
    """Compile `tests/contracts/vyper/<name>.vy` (against `contracts/`) and deploy it."""
    path = TEST_VYPER_DIR / f"{name}.vy"
    out = vyper.compile_code(
        path.read_text(),
        contract_path=path.name,
        resolved_path=path,
        input_bundle=FilesystemInputBundle([CONTRACTS_DIR, TEST_VYPER_DIR]),
        output_formats=["abi", "bytecode"],
    )
    factory = w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])
    tx = factory.constructor(*args).transact({"from": deployer.address})
    address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return w3.eth.contract(address=address, abi=out["abi"])


@dataclass
class StubVerifier:
    """The FraudVerifier and its rules contracts deployed on their own, for a given `ChainConfig`.

    The chain answers `config.chain_id` and the rules sign for `config.rollup` (no Rollup is
    deployed there: it is only the EIP-712 `verifyingContract`), so transactions signed for the
    state machine's vectors verify as they are. The L1 queue is a stub (`QueueStub.vy`) whose
    entries each case sets from its `L1Context`."""

    w3: Web3
    deployer: Sender
    config: ChainConfig
    verifier: VerifierClient
    transfer_rules: RulesClient
    oracle_rules: RulesClient
    trade_rules: RulesClient
    risk_rules: RulesClient
    queue: Contract
    queue_hashes: dict[int, bytes] = field(default_factory=dict)
    """The stub's entries as last set."""

    @classmethod
    def create(cls, config: ChainConfig) -> StubVerifier:
        w3 = tester_web3(config.chain_id)
        deployer = Sender.unlocked(w3.eth.accounts[0])
        artifacts = compile_all()
        queue = deploy_test_contract(w3, deployer, "QueueStub")
        rollup = Web3.to_checksum_address(config.rollup)
        transfer, _ = deploy_contract(w3, deployer, artifacts["TransferRules"], rollup, queue.address)
        oracle, _ = deploy_contract(w3, deployer, artifacts["OracleRules"], rollup)
        trade, _ = deploy_contract(w3, deployer, artifacts["TradeRules"], rollup)
        risk, _ = deploy_contract(w3, deployer, artifacts["RiskRules"], rollup)
        verifier, _ = deploy_contract(w3, deployer, artifacts["FraudVerifier"], transfer, oracle, trade, risk)
        return cls(
            w3=w3,
            deployer=deployer,
            config=config,
            verifier=VerifierClient(w3, verifier),
            transfer_rules=RulesClient(w3, transfer, "TransferRules"),
            oracle_rules=RulesClient(w3, oracle, "OracleRules"),
            trade_rules=RulesClient(w3, trade, "TradeRules"),
            risk_rules=RulesClient(w3, risk, "RiskRules"),
            queue=queue,
        )

    def set_queue(self, hashes: Mapping[int, bytes]) -> None:
        """Make the stub's entries exactly `hashes` (one transaction, only when they change)."""
        if dict(hashes) == self.queue_hashes:
            return
        indexes = set(hashes) | set(self.queue_hashes)
        first, last = min(indexes), max(indexes)
        entries = [hashes.get(i, bytes(32)) for i in range(first, last + 1)]
        tx = self.queue.functions.set_queue(first, entries).transact({"from": self.deployer.address})
        self.w3.eth.wait_for_transaction_receipt(tx)
        self.queue_hashes = dict(hashes)

    def roots(self, state: State, raw: bytes, ctx: L1Context) -> tuple[bytes, bytes]:
        """`(on-chain root, Python root)` of `raw` on `state` (left unchanged) in `ctx`, with the
        prover's witnesses."""
        self.set_queue(ctx.queue_hashes)
        expected = apply_tx(copy_state(state), raw, ctx, self.config).post_root
        witnesses, post_root = build_tx_witnesses(copy_state(state), raw, ctx, self.config)
        assert post_root == expected
        onchain = self.verifier.apply_tx(state.tree.root, raw, witnesses, ctx.queue_end, ctx.l2_time)
        return onchain, expected

    def gas(self, state: State, raw: bytes, ctx: L1Context) -> int:
        """Gas of the `apply_tx` call of `raw` on `state` (as a transaction)."""
        self.set_queue(ctx.queue_hashes)
        witnesses, _ = build_tx_witnesses(copy_state(state), raw, ctx, self.config)
        return self.verifier.apply_tx_gas(state.tree.root, raw, witnesses, ctx.queue_end, ctx.l2_time)
