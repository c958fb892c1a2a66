"""L1 gas figures, measured on py-evm (the same bytecode gives the same gas on anvil).

Transfers, deposits and withdrawals run through the production code paths: the batch builder
makes the batches, the Rollup computes their trees on-chain, the derivation (`sequencer.stf.chain`)
finds the corrupted root, and `prover.proofs` builds the one-transaction proof whose gas is
reported. Every exchange transaction type is then proven on an exchange built by real batches
(`devnet.exchange_scene`: 16 markets, a 15-member oracle committee, traders holding 8 positions
each, 512 more accounts), with the prover's witnesses: the worst cases are a Fill between two
accounts with 8 positions each, a 4-leg BundleFill against such accounts, and an OracleUpdate
with 11 signatures. On the same exchange, the Rollup is then frozen (its target's queue entries
are never consumed) and accounts exit from its state: the worst case is an account with 8
positions in a 16-market state (`escape_exit_gas`, docs/protocol.md section 12).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from web3 import EthereumTesterProvider, Web3

from contracts.bindings import BridgeClient, RollupClient, Sender, TokenClient
from contracts.l1 import batch_record, deposit_record, revert_record
from devnet.deploy import DeployParams, deploy_all
from devnet.exchange_scene import (
    MAKERS,
    TAKER,
    TARGET_NAMES,
    D,
    ExchangeScene,
    build_exchange_scene,
    trader,
    trader_key,
)
from devnet.faulty import corrupt
from devnet.l1_harness import Harness
from prover.proofs import build_fraud_proof
from sequencer.builder import build_batch
from sequencer.mempool import PendingTx
from sequencer.stf.chain import Chain
from sequencer.stf.codec import encode_tx
from sequencer.stf.eip712 import address_of, sign_transfer, sign_withdraw
from sequencer.stf.escape import exit_proof
from sequencer.stf.hashing import keccak
from sequencer.stf.l1types import L1Batch
from sequencer.stf.state import copy_state
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import ChainConfig, L1Context, Tx


def progress(message: str) -> None:
    """Show progress on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class L1Bench:
    """A deployed rollup on an in-process py-evm, driven through the real builder and prover."""

    def __init__(self) -> None:
        self.w3 = Web3(EthereumTesterProvider())
        accounts = self.w3.eth.accounts
        self.deployer = Sender.unlocked(accounts[0])
        self.sequencers = [Sender.unlocked(a) for a in accounts[1:8]]
        self.challenger = Sender.unlocked(accounts[9])
        self.dep = deploy_all(self.w3, self.deployer, DeployParams(challenge_window_seconds=3600))
        self.rollup = RollupClient(self.w3, self.dep.rollup)
        self.bridge = BridgeClient(self.w3, self.dep.bridge)
        self.token = TokenClient(self.w3, self.dep.token)
        self.config = ChainConfig(chain_id=self.dep.chain_id, rollup=bytes.fromhex(self.dep.rollup[2:]))
        self.chain = Chain(self.config)
        for s in self.sequencers:
            self.rollup.register(s, 10**18)
        self.keys = [bytes([i + 1]) * 32 for i in range(64)]
        self.addrs = [address_of(k) for k in self.keys]
        self.nonces = [0] * len(self.keys)

    def deposit(self, to: bytes, amount: int) -> None:
        """Mint, approve and deposit through the Bridge; fold the Deposited event."""
        self.token.mint(self.deployer, self.deployer.address, amount)
        self.token.approve(self.deployer, self.dep.bridge, amount)
        result = self.bridge.deposit(self.deployer, to, amount)
        for d in self.bridge.deposited_from_receipt(result.receipt):
            self.chain.apply_event(deposit_record(d))

    def append(self, txs: list[Tx], sequencer: Sender, corrupt_at: int = -1) -> tuple[int, L1Batch]:
        """Build (queue entries due first) and append a batch; returns (gas used, the batch as derived)."""
        pending = [PendingTx(0, b"", encode_tx(t), t) for t in txs]
        built = build_batch(
            self.chain.state,
            self.chain.queue,
            pending,
            self.config,
            l2_time=self.l2_time(),
        )
        assert built is not None and len(built.skipped) == 0
        built = corrupt(built, root_at=corrupt_at)
        result = self.rollup.append_batch(
            sequencer,
            built.txs,
            built.roots,
            prev_root=self.chain.tip_root,
            queue_start=self.chain.queue_end,
            queue_end=built.queue_end,
            l2_time=built.l2_time,
        )
        (event,) = self.rollup.batch_appended_from_receipt(result.receipt)
        batch = batch_record(event)
        self.chain.apply_event(batch)
        return result.gas_used, batch

    def append_raw(self, raws: list[bytes], sequencer: Sender, corrupt_at: int) -> None:
        """Append bytes an honest builder never posts (undecodable, badly signed), roots from the stf."""
        work = copy_state(self.chain.state)
        l2_time = self.l2_time()
        ctx = L1Context(queue_end=self.chain.queue_end, queue_hashes={}, l2_time=l2_time)
        roots = [apply_tx(work, raw, ctx, self.config).post_root for raw in raws]
        roots[corrupt_at] = keccak(b"wrong" + roots[corrupt_at])
        result = self.rollup.append_batch(
            sequencer,
            raws,
            roots,
            prev_root=self.chain.tip_root,
            queue_start=self.chain.queue_end,
            queue_end=self.chain.queue_end,
            l2_time=l2_time,
        )
        (event,) = self.rollup.batch_appended_from_receipt(result.receipt)
        self.chain.apply_event(batch_record(event))

    def l2_time(self) -> int:
        """The next batch's clock: the L1 head's timestamp (never ahead of the append's block)."""
        return max(self.chain.tip_l2_time, int(self.w3.eth.get_block("latest")["timestamp"]))

    def transfer(self, i: int, j: int, amount: int) -> Tx:
        """A signed transfer from trader i to trader j with i's next nonce."""
        tx = sign_transfer(self.keys[i], self.addrs[j], amount, self.nonces[i], self.config)
        self.nonces[i] += 1
        return tx

    def prove(self) -> int:
        """Build and send the proof of the chain's pending fraud; returns its gas."""
        assert self.chain.fraud is not None
        proof = build_fraud_proof(self.chain, self.chain.fraud)
        result = self.rollup.submit_proof(self.challenger, proof)
        for r in self.rollup.batches_reverted_from_receipt(result.receipt):
            self.chain.apply_event(revert_record(r))
        assert self.chain.fraud is None
        return result.gas_used


def bench_l1(quick: bool = False) -> dict[str, Any]:
    """`l1_gas_per_tx` (append, amortized) and `fraud_proof_gas` (per transaction type)."""
    progress("l1: deploying on py-evm")
    b = L1Bench()
    for a in b.addrs:
        b.deposit(a, 10**12)
    b.append([], b.sequencers[0])  # the deposits
    sizes = (16, 64) if quick else (16, 64, 256)
    append_gas: dict[str, int] = {}
    for n in sizes:
        txs = [b.transfer(k % 64, (k * 7 + 1) % 64, 1 + k) for k in range(n)]
        gas, _ = b.append(txs, b.sequencers[0])
        append_gas[str(n)] = gas
        progress(f"l1: append of {n} transfers: {gas:,} gas ({gas // n:,} per tx)")

    proofs: dict[str, int] = {}
    seq = iter(b.sequencers[1:])

    def fraud(name: str, txs: list[Tx], at: int, deposit_first: bool = False) -> None:
        if deposit_first:
            b.deposit(b.addrs[0], 5)
        b.append(txs, next(seq), corrupt_at=at)
        assert b.chain.fraud is not None and b.chain.fraud.tx_index == at, (name, b.chain.fraud)
        proofs[name] = b.prove()
        for t in txs:  # the reverted batch's nonces are not used
            if hasattr(t, "sender"):
                b.nonces[b.addrs.index(t.sender)] -= 1
        progress(f"l1: fraud proof for {name}: {proofs[name]:,} gas")

    fraud("deposit", [], 0, deposit_first=True)
    fraud("transfer", [b.transfer(1, 2, 5)], 0)
    fresh = address_of(b"\x77" * 32)  # a recipient never seen: an insert that splits a leaf
    t = sign_transfer(b.keys[3], fresh, 5, b.nonces[3], b.config)
    b.nonces[3] += 1
    fraud("transfer_new_account", [t], 0)
    w = sign_withdraw(b.keys[4], b.addrs[4], 7, b.nonces[4], b.config)
    b.nonces[4] += 1
    fraud("withdraw", [w], 0)
    for name, raw in (
        ("undecodable", b"\x02" + b"\xff" * 40),
        (
            "bad_signature",
            encode_tx(replace(sign_transfer(b.keys[5], b.addrs[6], 5, b.nonces[5], b.config), amount=6)),
        ),
    ):
        b.append_raw([raw], next(seq), 0)
        assert b.chain.fraud is not None
        proofs[name] = b.prove()
        progress(f"l1: fraud proof for {name}: {proofs[name]:,} gas")
    progress("l1: building an exchange by real batches (16 markets, 8 positions per trader)")
    scene = build_exchange_scene(Harness.create())
    proofs.update(bench_exchange_proofs(scene))
    exits = bench_escape_exits(scene)
    return {
        "l1_gas_per_tx": round(append_gas[str(max(sizes))] / max(sizes)),
        "l1_append_gas": append_gas,
        "fraud_proof_gas": proofs,
        "fraud_proof_gas_max": max(proofs.values()),
        "escape_exit_gas": max(exits.values()),
        "escape_exit_gas_detail": exits,
    }


def bench_exchange_proofs(scene: ExchangeScene) -> dict[str, int]:
    """`prove_tx_fraud` gas of every exchange transaction type: a wrong root right after a
    transaction that applies, on the exchange scene (see the module docstring); the scene's tip
    is left as it was."""
    h = scene.h
    out: dict[str, int] = {}
    for name in TARGET_NAMES:
        kind, tx_type = name.split(":")
        if kind != "ok":
            continue
        batch = scene.append_target(scene.new_sequencer(name.encode()), corrupt=name)
        result = h.rollup.prove_tx_fraud(h.account(3), **h.tx_fraud_args(batch, scene.names.index(name)))
        assert h.rollup.fraud_proven_from_receipt(result.receipt), name
        label = f"{tx_type}_with_positions" if tx_type in ("deposit", "transfer", "withdraw") else tx_type
        out[label] = result.gas_used
        progress(f"l1: fraud proof for {label}: {result.gas_used:,} gas")
    return out


EXITS = {"8_positions_short": TAKER, "8_positions_long": MAKERS[0], "bankrupt": D}
"""The scene's accounts whose exits are measured: trader 0 (short in markets 0..7), trader 1 (long
in markets 0..7), and D (long in the risk market, below zero after its fall)."""


def bench_escape_exits(scene: ExchangeScene) -> dict[str, int]:
    """Gas of `register_exit` and `pay_exit` of `EXITS` once the scene's Rollup is frozen (its
    target's queue entries are never consumed: anyone freezes it after the escape delay)."""
    h = scene.h
    params = h.rollup.params()
    waiting = h.bridge.queue_timestamp(h.rollup.tip().queue_end)
    h.travel_to(
        max(
            h.rollup.last_append_timestamp() + params.escape_delay_seconds,
            waiting + params.force_inclusion_seconds,
        )
    )
    frozen_at = h.rollup.frozen_from_receipt(h.rollup.freeze(h.account(9)).receipt)[0].timestamp
    gas: dict[str, int] = {}
    for name, i in EXITS.items():
        account = Sender.from_key(trader_key(i))
        h.w3.eth.send_transaction({"from": h.deployer.address, "to": account.address, "value": 10**18})  # type: ignore[typeddict-item]
        proof = exit_proof(h.state, trader(i))
        result = h.bridge.register_exit(account, trader(i), proof.account_witness, proof.markets_witness)
        (event,) = h.bridge.exit_registered_from_receipt(result.receipt)
        assert event.equity == proof.equity, name
        gas[f"register_{name}"] = result.gas_used
        progress(f"l1: exit of {name} registered (equity {proof.equity:,}): {result.gas_used:,} gas")
    h.travel_to(frozen_at + h.bridge.exit_window_seconds())
    for name, i in EXITS.items():
        result = h.bridge.pay_exit(h.account(9), trader(i))
        gas[f"pay_{name}"] = result.gas_used
        progress(f"l1: exit of {name} paid: {result.gas_used:,} gas")
    return gas
