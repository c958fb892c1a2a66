"""The contract tests' harness: `devnet.l1_harness` (a deployed rollup on eth-tester plus the
Python state machine) and what only the tests need: a verifier deployed on its own with a stub L1
queue for the differential tests, test-only Vyper contracts, and the gas report.

Expected values always come from `sequencer.stf` (and witnesses from `prover.witness`); nothing
here restates a rule of the state machine.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
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

from contracts.bindings import RulesClient, Sender, VerifierClient, deploy_contract
from contracts.build import CONTRACTS_DIR, compile_all
from devnet.l1_harness import (  # noqa: F401  (re-exported for the tests)
    CHALLENGE_WINDOW_SECONDS,
    CHALLENGER_REWARD_BPS,
    FORCE_INCLUSION_SECONDS,
    FRAUD_GAS_LIMIT,
    MAX_L2_TIME_LAG_SECONDS,
    MIN_BOND_WEI,
    AppendedBatch,
    Harness,
    user_address,
    user_key,
    witness_of,
)
from prover.witness import build_tx_witnesses
from sequencer.stf.state import State, copy_state
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import ChainConfig, L1Context

REPO_ROOT = Path(__file__).resolve().parents[2]
GAS_REPORT = REPO_ROOT / ".cache" / "contracts" / "gas_report.json"
TEST_VYPER_DIR = Path(__file__).resolve().parent / "vyper"


def record_gas(name: str, gas: int) -> None:
    """Add a measured figure to `.cache/contracts/gas_report.json`.

    Test processes running side by side (`pytest -n 2`) each add theirs: the file is locked while
    it is read and rewritten, and replaced whole, so that no figure is lost and no half-written
    file is read."""
    GAS_REPORT.parent.mkdir(parents=True, exist_ok=True)
    with open(GAS_REPORT.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = json.loads(GAS_REPORT.read_text()) if GAS_REPORT.exists() else {}
        data[name] = gas
        fd, tmp = tempfile.mkstemp(dir=GAS_REPORT.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
        os.replace(tmp, GAS_REPORT)


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
