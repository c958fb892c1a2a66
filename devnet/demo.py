"""`rollup demo`: the whole life of the exchange rollup, for real, ending with one line of JSON.

An L1 starts, the contracts deploy, the governor lists two perpetual markets and an oracle
committee; a set of three honest sequencers (one log on a JetStream cluster, one leader by lease)
takes deposits, the committee's feed prices the markets, and
traders trade: a market maker quotes both books, a taker trades in both markets and fills a
two-leg bundle, a trader goes long at 9x leverage. The price of ETH falls 8%, the leveraged
account drops below its maintenance margin, and a liquidation bot (anyone may run one) takes its
position over at the mark. The set's leader is killed with SIGKILL while orders are in flight;
another member takes the lease and goes on, and not one acknowledged order or fill is lost. A
faulty sequencer then posts a batch whose fill has a wrong state root
and builds on it; two watchers race to prove it with one L1 transaction each; the bad batch and the
one after it are reverted, the faulty sequencer is slashed and the winning watcher rewarded; the
set re-includes the reverted transactions and goes on. A withdrawal is paid on L1
after the challenge window, and a second claim is refused. Every figure in the JSON is read back
from L1 events, L1 data replayed through the state machine, or the services — none is assumed.
`--scenario escape` tells another story: every sequencer stops and the traders exit on L1
(`devnet.demo_escape`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from web3 import Web3

from contracts.bindings import BridgeClient, RollupClient, Sender, TokenClient, TransactionReverted
from contracts.l1 import Web3L1
from devnet.deploy import DeployParams
from devnet.failover import failover_under_load
from devnet.faucet import fund_traders
from devnet.markets import MARKETS, governance_payloads
from devnet.orchestrator import FIRST_TRADER, SEQ_B, WATCHER_1, WATCHER_2, Network, get_json
from devnet.procs import wait_until
from prover.withdrawals import build_withdrawal_claim
from sequencer.builder import batch_tx_hashes
from sequencer.client import BUY, SELL, TraderClient
from sequencer.stf.chain import Chain
from sequencer.stf.codec import decode_tx
from sequencer.stf.constants import TX_TYPE_NAMES
from sequencer.stf.errors import RollupError
from sequencer.stf.l1types import L1Batch, L1Fraud
from sequencer.stf.state import State
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import BundleFill, ChainConfig, Fill, Leg

TOKEN_UNIT = 10**6
"""The devnet collateral has 6 decimals."""
ETH_UNIT = 10**6
"""A size unit is 10^-6 of the asset (docs/protocol.md section 7)."""
ETH, BTC = MARKETS[0].market_id, MARKETS[1].market_id
MAKER, TAKER, LEVERAGED, LIQUIDATOR = 0, 1, 2, 3
"""The demo's traders (dev accounts from FIRST_TRADER on)."""


def step(message: str) -> None:
    """Narrate progress on stderr (stdout's last line is the JSON)."""
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def derive_chain(l1: Web3L1, start_block: int) -> Chain:
    """The chain as L1 data alone defines it (what any user can compute for a withdrawal claim)."""
    chain = Chain(l1.chain_config())
    for event in l1.events(start_block, l1.head_block()):
        chain.apply_event(event)
    return chain


def applied_by_type(chain: Chain) -> collections.Counter[str]:
    """Replay the live batches from genesis and count the transactions that took effect, by type
    (a bundle counts as one `bundle_fill`; its legs are counted in `fill_legs`)."""
    state = State()
    counts: collections.Counter[str] = collections.Counter()
    for batch in chain.batches:
        ctx = chain.context(batch)
        for raw in batch.txs:
            outcome = apply_tx(state, raw, ctx, chain.config)
            if not outcome.applied:
                continue
            tx = decode_tx(raw)
            counts[TX_TYPE_NAMES[raw[0]]] += 1
            counts["fill_legs"] += (
                1 if isinstance(tx, Fill) else len(tx.makers) if isinstance(tx, BundleFill) else 0
            )
    return counts


def fraud_tx_types(l1: Web3L1, start_block: int) -> list[str]:
    """The type of each transaction a fraud proof convicted, from the appended batch it named
    (the latest append of that index before the proof)."""
    appended: dict[int, L1Batch] = {}
    types = []
    for event in l1.events(start_block, l1.head_block()):
        if isinstance(event, L1Batch):
            appended[event.header.index] = event
        elif isinstance(event, L1Fraud):
            if event.tx_index >= len(appended[event.batch_index].txs):
                types.append("queue")  # a queue fraud names no transaction
            else:
                types.append(
                    TX_TYPE_NAMES.get(appended[event.batch_index].txs[event.tx_index][0], "undecodable")
                )
    return types


def post_price(prices: Path, market: int, mark: int, index: int) -> None:
    """Append a price to the committee feed's input (it signs the newest line per market)."""
    with prices.open("a") as f:
        f.write(json.dumps({"market": market, "mark": mark, "index": index}) + "\n")


def run_demo(workdir: Path, *, l1: str = "embedded", window: int = 10) -> dict[str, Any]:
    """Run the scenario on a fresh network; returns the summary."""
    params = DeployParams(challenge_window_seconds=window, force_inclusion_seconds=120)
    net = Network.start(workdir, l1=l1, params=params)
    with net, contextlib.ExitStack() as clients:
        dep = net.deployment
        step(f"L1 at {net.l1_url}, contracts deployed (rollup {dep.rollup}), challenge window {window}s")
        step(f"the governor queued {', '.join(m.name for m in MARKETS)} and a 3-of-5 oracle committee")
        net.start_nats()
        members = net.start_set(3)
        urls = [m.url for m in members]

        def status() -> dict[str, Any]:
            return get_json(f"{net.leader().url}/v1/status")

        # watchers poll every 2 s here so that the faulty sequencer's second batch lands on top of
        # its bad one before the proof does, as it would with a slower challenger
        net.start_watcher("watcher-1", WATCHER_1, poll_ms=2000)
        net.start_watcher("watcher-2", WATCHER_2, poll_ms=2000)
        prices = workdir / "prices.jsonl"
        post_price(prices, ETH, 3_000, 2_999)
        post_price(prices, BTC, 60_000, 59_990)
        step(
            f"a set of three honest sequencers on a 3-node JetStream cluster ({net.leader().name} leads);"
            " two watchers follow L1 only"
        )

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

        # 1. deposits through the L1 bridge, consumed after the governance messages
        amounts = [5_000_000, 1_000_000, 30_000, 2_000_000]
        for key, amount in zip(traders, amounts, strict=True):
            fund_traders(w3, dep, net.accounts[0].private_key, [key.private_key], amount * TOKEN_UNIT)
        wait_until(
            lambda: status()["next_deposit_index"] == len(governance_payloads()) + len(traders),
            60,
            interval=0.1,
            what="the set to batch the markets, the committee and the deposits",
        )
        step("the deposits (5M, 1M, 30k, 2M dUSD) and the listings are in a batch")

        # 2. the committee prices the markets; a liquidation bot watches the risk
        net.start_oracle("oracle", members, source=f"file:{prices}", interval_ms=1000)
        net.start_liquidator("liquidator", members, FIRST_TRADER + LIQUIDATOR)
        on_a = [clients.enter_context(TraderClient(urls, k, config)) for k in keys]
        step("the oracle feed signs prices with 3 committee keys; a liquidation bot is running")

        # 3. trading: quotes in both books, trades, a bundle, a cancel, a leveraged long
        maker, taker, leveraged = on_a[MAKER], on_a[TAKER], on_a[LEVERAGED]
        quotes = [maker.sign_order(ETH, SELL, 3_000 + i, 50 * ETH_UNIT, salt=i) for i in range(3)]
        quotes += [maker.sign_order(ETH, BUY, 2_999 - i, 50 * ETH_UNIT, salt=10 + i) for i in range(3)]
        quotes += [maker.sign_order(BTC, SELL, 60_010 + 10 * i, 2 * ETH_UNIT, salt=20 + i) for i in range(2)]
        quotes += [maker.sign_order(BTC, BUY, 59_990 - 10 * i, 2 * ETH_UNIT, salt=30 + i) for i in range(2)]
        placed = maker.place_many(quotes)
        assert all(not isinstance(p, RollupError) for p in placed), placed
        step(f"the market maker rests {len(quotes)} quotes in both books (one request, one commit)")
        trades = [
            taker.place_order(ETH, BUY, 3_000, 10 * ETH_UNIT),
            taker.place_order(BTC, SELL, 59_990, ETH_UNIT),
        ]
        bundle = taker.place_bundle([Leg(ETH, SELL, 2_999, ETH_UNIT), Leg(BTC, BUY, 60_010, ETH_UNIT // 20)])
        maker.cancel(quotes[2])
        long = leveraged.place_order(ETH, BUY, 3_001, 9 * ETH_UNIT * 10)
        step(
            f"taker filled {sum(len(t.fills) for t in trades)} orders and a 2-leg bundle"
            f" ({len(bundle['fills'])} fills); a quote was cancelled; the leveraged trader bought"
            f" 90 ETH at 9x in {len(long.fills)} fills"
        )

        # 4. the price falls; the bot liquidates the leveraged account at the mark
        post_price(prices, ETH, 2_760, 2_758)
        wait_until(
            lambda: (
                leveraged.account()["positions"]
                and int(leveraged.account()["positions"][0]["size"]) < 90 * ETH_UNIT
            ),
            60,
            interval=0.2,
            what="the liquidation bot to liquidate the leveraged account",
        )
        after = leveraged.account()
        step(
            "ETH marked down 8% to 2,760: the 9x long fell below maintenance and was liquidated to"
            f" {int(after['positions'][0]['size']) / ETH_UNIT:g} ETH (margin ratio"
            f" {after['margin_ratio_bps']} bps)"
        )
        wait_until(lambda: status()["pending"] == 0, 60, interval=0.2, what="a quiet mempool")

        # 5. the set's leader is killed while orders are in flight; another member takes over
        report = failover_under_load(
            net,
            maker,
            taker,
            market=BTC,
            price=61_000,
            size=ETH_UNIT // 100,
            hashes_on_l1=lambda: {
                "0x" + h.hex()
                for e in rollup.batch_appended_events(dep.deploy_block)
                for h in batch_tx_hashes(e.txs)
            },
        )
        step(
            f"{report.killed} (the leader) killed with SIGKILL under orders; {report.leader} took the"
            f" lease and acknowledged again after {report.failover_ms:.0f} ms; of {report.acked_orders}"
            f" acknowledged orders and {report.acked_fills} fills, {report.acked_orders_lost} lost"
        )
        wait_until(lambda: status()["pending"] == 0, 60, interval=0.2, what="a quiet mempool")

        # 6. a faulty sequencer corrupts the root of a fill, and builds on it
        seq_b = net.start_sequencer(
            "sequencer-b", SEQ_B, fault_tx_type="fill", batch_max_txs=1, batch_interval_ms=3000
        )
        on_b = [clients.enter_context(TraderClient(seq_b.url, k, config)) for k in keys]
        on_b[MAKER].place_order(ETH, SELL, 3_050, ETH_UNIT)
        on_b[TAKER].place_order(ETH, BUY, 3_050, ETH_UNIT)
        on_b[TAKER].transfer(addrs[MAKER], 10 * TOKEN_UNIT)
        step(f"faulty sequencer at {seq_b.url} matched a fill; it corrupts the fill's root in its batch")
        frauds = wait_until(
            lambda: rollup.fraud_proven_events(dep.deploy_block), 90, interval=0.2, what="a fraud proof on L1"
        )
        fraud = frauds[0]
        step(f"fraud proven in batch {fraud.batch_index}, tx {fraud.tx_index}; reward {fraud.reward} wei")
        net.services["sequencer-b"].process.stop()

        # 7. the set goes on, re-including the reverted transactions
        b_addr = bytes.fromhex(net.accounts[SEQ_B].address[2:])
        on_l1 = [
            "0x" + h.hex()
            for e in rollup.batch_appended_events(dep.deploy_block)
            if e.header.sequencer == b_addr
            for h in batch_tx_hashes(e.txs)
        ]
        for h in on_l1:
            taker.wait_batched(h, timeout=60)
        step(f"the set re-included the {len(on_l1)} reverted transactions and goes on")

        # 8. a withdrawal, paid on L1 once its batch is final
        amount = 1_234 * TOKEN_UNIT
        recipient = traders[TAKER].address
        before = token.balance_of(recipient)
        ack, nonce = taker.withdraw(addrs[TAKER], amount)
        taker.wait_batched(ack.hash)
        chain = derive_chain(reader, dep.deploy_block)
        claim = build_withdrawal_claim(chain, addrs[TAKER], nonce)
        step(f"withdrawal in batch {claim.header.index}; waiting {window}s for it to be final")
        wait_until(
            lambda: rollup.is_final(claim.header), window + 60, interval=0.5, what="the batch to be final"
        )
        claimant = Sender.from_key(traders[TAKER].private_key)
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

        # 9. everyone agrees on the state root, and the L1 data tells the story
        net.services["oracle"].process.stop()  # a quiet chain, so that every node reaches one root
        net.services["liquidator"].process.stop()

        def roots_agree() -> dict[str, str] | None:
            live = [m for m in members if m.process.alive]
            seq_status = [get_json(f"{m.url}/v1/status") for m in live]
            watchers = [get_json(f"{net.services[n].url}/v1/status") for n in ("watcher-1", "watcher-2")]
            l1_root = "0x" + rollup.tip().post_root.hex()
            roots = {m.name: s["state_root"] for m, s in zip(live, seq_status, strict=True)}
            roots["l1"] = l1_root
            roots.update({f"watcher{i + 1}": w["state_root"] for i, w in enumerate(watchers)})
            if all(s["pending"] == 0 for s in seq_status) and len(set(roots.values())) == 1:
                return roots
            return None

        roots = wait_until(roots_agree, 60, interval=0.2, what="every node to agree on the state root")
        chain = derive_chain(reader, dep.deploy_block)
        assert chain.fraud is None
        applied = applied_by_type(chain)
        appended = rollup.batch_appended_events(dep.deploy_block)
        reverted = rollup.batches_reverted_events(dep.deploy_block)
        slashed = rollup.sequencer_slashed_events(dep.deploy_block)
        all_frauds = rollup.fraud_proven_events(dep.deploy_block)
        deposits = bridge.deposited_events(dep.deploy_block)
        watcher_status = [get_json(f"{net.services[n].url}/v1/status") for n in ("watcher-1", "watcher-2")]
        withdrawals = len(bridge.contract.events.WithdrawalClaimed().get_logs(from_block=dep.deploy_block))
        return {
            "l1": l1,
            "markets": len(get_json(f"{net.leader().url}/v1/markets")),
            "fills": applied["fill_legs"],
            "liquidations": applied["liquidate"],
            "batches_posted": len(appended),
            "frauds_proven": len(all_frauds),
            "fraud_tx_types": fraud_tx_types(reader, dep.deploy_block),
            "batches_reverted": sum(r.to_index - r.from_index + 1 for r in reverted),
            "sequencers_slashed": len(slashed),
            "challenger_reward_wei": sum(f.reward for f in all_frauds),
            "withdrawals_finalized": withdrawals,
            "withdrawn_amount": paid,
            "second_claim_refused": second_claim_refused,
            "deposits": len(deposits),
            "transactions_applied": {k: v for k, v in sorted(applied.items()) if k != "fill_legs"},
            "final_state_root_agrees": True,
            "final_state_root": roots["l1"],
            "watcher_proofs_won": [len(w["proofs_sent"]) for w in watcher_status],
            "watcher_proofs_lost": [w["proofs_lost"] for w in watcher_status],
            "sequencer_set": len(members),
            "leader_changes": report.leader_changes,
            "failover_ms": report.failover_ms,
            "acked_orders_lost": report.acked_orders_lost,
        }


def main(argv: list[str] | None = None) -> None:
    """Run the demo; the last stdout line is the JSON summary."""
    parser = argparse.ArgumentParser(prog="rollup demo", description="Run the end-to-end story.")
    parser.add_argument("--l1", default="embedded", help="embedded | anvil | an L1 JSON-RPC URL")
    parser.add_argument("--window", type=int, default=10, help="challenge window in seconds")
    parser.add_argument(
        "--scenario",
        choices=("story", "escape"),
        default="story",
        help="story: trade, liquidate, prove fraud, withdraw; escape: the sequencers stop, traders exit",
    )
    parser.add_argument("--workdir", default="")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="rollup-demo-"))
    started = time.monotonic()
    if args.scenario == "escape":
        from devnet.demo_escape import run_escape_demo

        summary = run_escape_demo(workdir, l1=args.l1)
    else:
        summary = run_demo(workdir, l1=args.l1, window=args.window)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["workdir"] = str(workdir)
    print(orjson.dumps(summary).decode(), flush=True)
