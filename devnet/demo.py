"""`rollup demo`: the whole life of the rollup, for real, ending with one line of JSON.

An L1 starts, the contracts deploy, an honest sequencer takes deposits and signed transfers and
posts batches; a faulty sequencer posts a batch with a wrong state root (and keeps building on
it); two watchers race to prove it with one L1 transaction each (one wins, the other finds the
batch gone); the bad batch and every later one are reverted, the faulty sequencer is slashed and
the winning watcher rewarded; the honest sequencer re-includes the reverted transactions and goes
on; a withdrawal is paid out on L1 after the challenge window, and a second claim is refused.
Every figure in the JSON is read back from L1 events or the services, none is assumed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from web3 import Web3

from contracts.bindings import BridgeClient, RollupClient, Sender, TokenClient, TransactionReverted
from devnet.deploy import DeployParams
from devnet.faucet import fund_traders
from devnet.markets import governance_payloads
from devnet.orchestrator import FIRST_TRADER, SEQ_A, SEQ_B, WATCHER_1, WATCHER_2, Network, get_json
from devnet.procs import wait_until
from prover.withdrawals import build_withdrawal_claim
from sequencer.builder import batch_tx_hashes
from sequencer.chain import Chain
from sequencer.client import TraderClient
from sequencer.l1 import Web3L1
from sequencer.stf.types import ChainConfig

TOKEN_UNIT = 10**6
"""The devnet collateral has 6 decimals."""


def step(message: str) -> None:
    """Narrate progress on stderr (stdout's last line is the JSON)."""
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def derive_chain(l1: Web3L1, start_block: int) -> Chain:
    """The chain as L1 data alone defines it (what any user can compute for a withdrawal claim)."""
    chain = Chain(l1.chain_config())
    for event in l1.events(start_block, l1.head_block()):
        chain.apply_event(event)
    return chain


def run_demo(workdir: Path, *, l1: str = "embedded", window: int = 10) -> dict[str, Any]:
    """Run the scenario on a fresh network; returns the summary."""
    params = DeployParams(challenge_window_seconds=window, force_inclusion_seconds=120)
    net = Network.start(workdir, l1=l1, params=params)
    with net:
        dep = net.deployment
        step(f"L1 at {net.l1_url}, contracts deployed (rollup {dep.rollup}), challenge window {window}s")
        seq_a = net.start_sequencer("sequencer-a", SEQ_A)
        # watchers poll every 2 s here so that the faulty sequencer's second batch lands on top of
        # its bad one before the proof does, as it would with a slower challenger
        net.start_watcher("watcher-1", WATCHER_1, poll_ms=2000)
        net.start_watcher("watcher-2", WATCHER_2, poll_ms=2000)
        step(f"honest sequencer at {seq_a.url}; two watchers follow L1 only")

        w3 = Web3(Web3.HTTPProvider(net.l1_url, request_kwargs={"timeout": 60}))
        token, bridge, rollup = (
            TokenClient(w3, dep.token),
            BridgeClient(w3, dep.bridge),
            RollupClient(w3, dep.rollup),
        )
        reader = Web3L1(net.l1_url, dep)
        config = ChainConfig(chain_id=dep.chain_id, rollup=bytes.fromhex(dep.rollup[2:]))
        traders = net.accounts[FIRST_TRADER : FIRST_TRADER + 4]
        keys = [bytes.fromhex(t.private_key[2:]) for t in traders]
        addrs = [bytes.fromhex(t.address[2:]) for t in traders]

        # 1. deposits through the L1 bridge
        deposit = 10_000 * TOKEN_UNIT
        fund_traders(w3, dep, net.accounts[0].private_key, [t.private_key for t in traders], deposit)
        wait_until(
            lambda: (
                get_json(f"{seq_a.url}/v1/status")["next_deposit_index"]
                == len(governance_payloads()) + len(traders)
            ),
            60,
            interval=0.1,
            what="the honest sequencer to batch the deposits",
        )
        step(
            f"{len(traders)} traders deposited {deposit // TOKEN_UNIT} dUSD each; the deposits are in a batch"
        )

        # 2. signed transfers through the honest sequencer
        on_a = [TraderClient(seq_a.url, k, config) for k in keys]
        acks = [on_a[i].transfer(addrs[(i + 1) % 4], (i + 1) * 100 * TOKEN_UNIT) for i in range(4)]
        for ack in acks:
            on_a[0].wait_batched(ack.hash)
        step(f"{len(acks)} signed transfers acknowledged and batched by the honest sequencer")

        # 3. a faulty sequencer posts a wrong root, and builds on it
        seq_b = net.start_sequencer("sequencer-b", SEQ_B, fault_tx=1, batch_max_txs=2, batch_interval_ms=5000)
        on_b = [TraderClient(seq_b.url, k, config) for k in keys]
        b_acks = [on_b[i].transfer(addrs[(i + 2) % 4], 50 * TOKEN_UNIT) for i in range(4)]
        step(
            f"faulty sequencer at {seq_b.url} took {len(b_acks)} transfers;"
            " it corrupts tx 1's root in its batch"
        )
        frauds = wait_until(
            lambda: rollup.fraud_proven_events(dep.deploy_block), 90, interval=0.2, what="a fraud proof on L1"
        )
        fraud = frauds[0]
        step(f"fraud proven in batch {fraud.batch_index}, tx {fraud.tx_index}; reward {fraud.reward} wei")
        net.services["sequencer-b"].process.stop()

        # 4. the honest sequencer goes on, re-including the reverted transactions (those that
        # reached L1; what the faulty one acknowledged but never posted is evidence against it)
        b_addr = bytes.fromhex(net.accounts[SEQ_B].address[2:])
        on_l1 = [
            "0x" + h.hex()
            for e in rollup.batch_appended_events(dep.deploy_block)
            if e.header.sequencer == b_addr
            for h in batch_tx_hashes(e.txs)
        ]
        for h in on_l1:
            on_a[0].wait_batched(h, timeout=60)
        more = [on_a[i].transfer(addrs[(i + 3) % 4], 10 * TOKEN_UNIT) for i in range(2)]
        for ack in more:
            on_a[0].wait_batched(ack.hash)
        step(f"the honest sequencer re-included the {len(on_l1)} reverted transactions and goes on")

        # 5. a withdrawal, paid on L1 once its batch is final
        amount = 1_234 * TOKEN_UNIT
        recipient = traders[0].address
        before = token.balance_of(recipient)
        ack, nonce = on_a[0].withdraw(addrs[0], amount)
        on_a[0].wait_batched(ack.hash)
        chain = derive_chain(reader, dep.deploy_block)
        claim = build_withdrawal_claim(chain, addrs[0], nonce)
        step(f"withdrawal in batch {claim.header.index}; waiting {window}s for it to be final")
        wait_until(
            lambda: _final(w3, rollup, claim.header), window + 60, interval=0.5, what="the batch to be final"
        )
        claimant = Sender.from_key(traders[0].private_key)
        bridge.submit_claim(claimant, claim)
        paid = token.balance_of(recipient) - before
        second_claim_refused = False
        try:
            bridge.submit_claim(claimant, claim)
        except TransactionReverted as exc:
            second_claim_refused = exc.reason == "bridge: already claimed"
        step(
            f"withdrawal of {amount // TOKEN_UNIT} dUSD paid on L1 ({paid} units);"
            f" second claim refused: {second_claim_refused}"
        )

        # 6. everyone agrees on the state root
        def roots_agree() -> dict[str, str] | None:
            seq_status = get_json(f"{seq_a.url}/v1/status")
            watchers = [get_json(f"{net.services[n].url}/v1/status") for n in ("watcher-1", "watcher-2")]
            l1_root = "0x" + rollup.tip().post_root.hex()
            roots = {"sequencer": seq_status["state_root"], "l1": l1_root}
            roots.update({f"watcher{i + 1}": w["state_root"] for i, w in enumerate(watchers)})
            if seq_status["pending"] == 0 and len(set(roots.values())) == 1:
                return roots
            return None

        roots = wait_until(roots_agree, 30, interval=0.2, what="every node to agree on the state root")
        appended = rollup.batch_appended_events(dep.deploy_block)
        reverted = rollup.batches_reverted_events(dep.deploy_block)
        slashed = rollup.sequencer_slashed_events(dep.deploy_block)
        all_frauds = rollup.fraud_proven_events(dep.deploy_block)
        claims = bridge.deposited_events(dep.deploy_block)
        watcher_status = [get_json(f"{net.services[n].url}/v1/status") for n in ("watcher-1", "watcher-2")]
        withdrawals = _withdrawal_claims(bridge, dep.deploy_block)
        return {
            "l1": l1,
            "batches_posted": len(appended),
            "frauds_proven": len(all_frauds),
            "batches_reverted": sum(r.to_index - r.from_index + 1 for r in reverted),
            "sequencers_slashed": len(slashed),
            "challenger_reward_wei": sum(f.reward for f in all_frauds),
            "withdrawals_finalized": withdrawals,
            "withdrawn_amount": paid,
            "second_claim_refused": second_claim_refused,
            "deposits": len(claims),
            "final_state_root_agrees": True,
            "final_state_root": roots["l1"],
            "watcher_proofs_won": [len(w["proofs_sent"]) for w in watcher_status],
            "watcher_proofs_lost": [w["proofs_lost"] for w in watcher_status],
        }


def _final(w3: Web3, rollup: RollupClient, header: Any) -> bool:
    """Whether the batch is final as the L1 sees it now."""
    return rollup.is_final(header)


def _withdrawal_claims(bridge: BridgeClient, from_block: int) -> int:
    logs = bridge.contract.events.WithdrawalClaimed().get_logs(from_block=from_block)
    return len(logs)


def main(argv: list[str] | None = None) -> None:
    """Run the demo; the last stdout line is the JSON summary."""
    parser = argparse.ArgumentParser(prog="rollup demo", description="Run the end-to-end story.")
    parser.add_argument("--l1", default="embedded", help="embedded | anvil | an L1 JSON-RPC URL")
    parser.add_argument("--window", type=int, default=10, help="challenge window in seconds")
    parser.add_argument("--workdir", default="")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="rollup-demo-"))
    started = time.monotonic()
    summary = run_demo(workdir, l1=args.l1, window=args.window)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["workdir"] = str(workdir)
    print(orjson.dumps(summary).decode(), flush=True)
