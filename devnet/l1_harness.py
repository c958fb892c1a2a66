"""A deployed rollup on eth-tester plus the Python state machine: the contract tests' harness, and
what the benchmark proves fraud on (`devnet.exchange_scene`).

Expected values always come from `sequencer.stf` (and witnesses from `prover.witness`); nothing
here restates a rule of the state machine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from web3 import EthereumTesterProvider, Web3

from contracts.bindings import (
    BridgeClient,
    RollupClient,
    RulesClient,
    Sender,
    TokenClient,
    TxResult,
    VerifierClient,
)
from contracts.deployment import Deployment
from devnet.deploy import DeployParams, deploy_all
from prover.proofs import tx_fraud_proof
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


def user_key(i: int) -> bytes:
    """A deterministic L2 private key."""
    return keccak(b"contracts-test-user" + i.to_bytes(4, "big"))


def user_address(i: int) -> bytes:
    return address_of(user_key(i))


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
