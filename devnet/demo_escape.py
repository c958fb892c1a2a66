"""`rollup demo --scenario escape`: every sequencer stops, and every trader still gets its money out.

An L1 starts, the contracts deploy with short delays (a challenge window of a few seconds, the
escape delay just above it), the governor lists the markets, a sequencer batches the traders'
deposits and the oracle committee's prices, and the traders open positions: a market maker, a
taker long, a trader long at 9x. The taker withdraws some collateral, and the price falls 5%: the
longs are in loss, the maker in profit, every position still open. Then every sequencer stops.
A late deposit waits in the queue, never batched. Freezing too early is refused; once the escape
delay has passed, anyone freezes the Rollup. Each trader re-derives the frozen state from L1
data alone (no sequencer is asked), claims its withdrawal, proves its account and registers its
exit (its positions closed at the frozen marks); a second exit is refused. The late deposit is
refunded to its depositor. After the exit window each exit is paid its equity (pro rata of what
the Bridge holds for the exits, were any account below zero). The watcher reports the freeze. The
last stdout line is the JSON summary; every figure in it is read from L1.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from web3 import Web3

from contracts.bindings import BridgeClient, TokenClient
from contracts.l1 import Web3L1
from devnet.demo import step
from devnet.deploy import DeployParams
from devnet.faucet import fund_traders
from devnet.markets import COMMITTEE_THRESHOLD, MARKETS, committee_keys, governance_payloads
from devnet.orchestrator import DEPLOYER, FIRST_TRADER, SEQ_A, WATCHER_1, Network, get_json
from devnet.procs import wait_until
from sequencer.client import BUY, SELL, TraderClient
from sequencer.escape_client import EscapeClient, EscapeRefused
from sequencer.stf.eip712 import sign_price
from sequencer.stf.escape import exit_payout
from sequencer.stf.state import get_insurance
from sequencer.stf.types import ChainConfig, OracleUpdate, PriceEntry

TOKEN_UNIT = 10**6
"""The devnet collateral has 6 decimals."""
ETH_UNIT = 10**6
"""A size unit is 10^-6 of the asset."""
ETH = MARKETS[0].market_id
MAKER, TAKER, LEVERAGED, LATE = 0, 1, 2, 3
"""The demo's traders (dev accounts from FIRST_TRADER on); LATE only deposits, after the end."""
DEPOSITS = [2_000_000, 200_000, 30_000]
"""dUSD deposited by the maker, the taker and the leveraged trader."""
WINDOW_S, FORCE_INCLUSION_S, ESCAPE_DELAY_S, EXIT_WINDOW_S = 3, 5, 6, 10
"""The deployment's delays, in seconds: a devnet's; days in production."""


def _price(mark: int, config: ChainConfig) -> OracleUpdate:
    """ETH at `mark`, signed now by a threshold of the devnet's committee (as its feed signs)."""
    now = int(time.time())
    keys = committee_keys()[:COMMITTEE_THRESHOLD]
    return OracleUpdate(
        ETH, tuple(PriceEntry(mark, mark, now, sign_price(k, ETH, mark, mark, now, config)) for k in keys)
    )


def run_escape_demo(workdir: Path, *, l1: str = "embedded") -> dict[str, Any]:
    """Run the escape scenario on a fresh network; returns the summary."""
    params = DeployParams(
        challenge_window_seconds=WINDOW_S,
        force_inclusion_seconds=FORCE_INCLUSION_S,
        escape_delay_seconds=ESCAPE_DELAY_S,
        exit_window_seconds=EXIT_WINDOW_S,
    )
    net = Network.start(workdir, l1=l1, params=params)
    with net, contextlib.ExitStack() as clients:
        dep = net.deployment
        step(
            f"L1 at {net.l1_url}; challenge window {WINDOW_S}s, escape delay {ESCAPE_DELAY_S}s,"
            f" exit window {EXIT_WINDOW_S}s"
        )
        watcher = net.start_watcher("watcher-1", WATCHER_1, wait=False)  # starts while the sequencer does
        seq = net.start_sequencer("sequencer-a", SEQ_A)
        net.wait_healthy("watcher-1")
        w3 = Web3(Web3.HTTPProvider(net.l1_url, request_kwargs={"timeout": 60}))
        token, bridge = TokenClient(w3, dep.token), BridgeClient(w3, dep.bridge)
        config = ChainConfig(chain_id=dep.chain_id, rollup=bytes.fromhex(dep.rollup[2:]))
        accounts = net.accounts[FIRST_TRADER : FIRST_TRADER + 4]
        keys = [bytes.fromhex(a.private_key[2:]) for a in accounts]
        for account, amount in zip(accounts, DEPOSITS, strict=False):
            fund_traders(
                w3, dep, net.accounts[DEPLOYER].private_key, [account.private_key], amount * TOKEN_UNIT
            )
        queued = len(governance_payloads()) + len(DEPOSITS)
        wait_until(
            lambda: get_json(f"{seq.url}/v1/status")["next_deposit_index"] == queued,
            60,
            interval=0.1,
            what="the sequencer to batch the listings and the deposits",
        )
        maker, taker, leveraged = (clients.enter_context(TraderClient(seq.url, k, config)) for k in keys[:3])
        maker.submit(_price(3_000, config))
        step("deposits batched; the oracle committee prices ETH at 3,000")

        # positions: the maker quotes, the taker buys, the leveraged trader buys at 9x
        asks = [maker.sign_order(ETH, SELL, 3_000 + i, 100 * ETH_UNIT, salt=i) for i in range(3)]
        maker.place_many([*asks, maker.sign_order(ETH, BUY, 2_990, 50 * ETH_UNIT, salt=9)])
        taker.place_order(ETH, BUY, 3_000, 20 * ETH_UNIT)
        leveraged.place_order(ETH, BUY, 3_001, 90 * ETH_UNIT)
        ack, _ = taker.withdraw(bytes.fromhex(accounts[TAKER].address[2:]), 1_000 * TOKEN_UNIT)
        wait_until(lambda: int(time.time()) > int(get_json(f"{seq.url}/v1/markets")[ETH]["oracle_time"]), 5)
        maker.submit(_price(2_850, config))
        wait_until(
            lambda: (
                int(get_json(f"{seq.url}/v1/markets")[ETH]["mark_price"]) == 2_850
                and get_json(f"{seq.url}/v1/status")["pending"] == 0
            ),
            60,
            interval=0.2,
            what="the price fall to be batched",
        )
        taker.wait_batched(ack.hash)
        step("the taker is long 20 ETH, the leveraged trader 90 ETH; ETH falls 5% to 2,850")

        # every sequencer stops; a late deposit waits in the queue for good
        net.services["sequencer-a"].process.stop()
        fund_traders(
            w3, dep, net.accounts[DEPLOYER].private_key, [accounts[LATE].private_key], 500 * TOKEN_UNIT
        )
        step("every sequencer is gone; a deposit of 500 dUSD waits in the queue, never batched")

        reader = Web3L1(net.l1_url, dep)
        escapes = [EscapeClient(reader, k) for k in keys]
        anyone = escapes[LATE]
        early = _refusal(anyone.freeze)
        frozen = wait_until(
            lambda: _after_a_block(w3, anyone.freeze),
            ESCAPE_DELAY_S + FORCE_INCLUSION_S + 60,
            interval=0.5,
            what="a freeze",
        )
        held_before = token.balance_of(dep.bridge)
        step(
            f"freezing at once was refused ({early!r}); after the escape delay the Rollup is frozen at"
            f" {frozen.batch_count} batches; the Bridge holds {held_before / TOKEN_UNIT:,.0f} dUSD"
        )

        # each trader: from L1 data alone, its withdrawal, then its exit
        chain = escapes[MAKER].derive()
        withdrawn = [w for e in escapes[:3] for w in e.claim_withdrawals(chain)]
        registered = [e.register(proof=e.proof(chain)) for e in escapes[:3]]
        second_exit = _refusal(lambda: escapes[TAKER].register(proof=escapes[TAKER].proof(chain)))
        refunds = anyone.refund_deposits()
        for r in registered:
            step(f"exit registered: equity {_dusd(r.equity)}, claim {_dusd(r.claim)}")
        step(f"a second exit is refused ({second_exit!r}); the late deposit is refunded ({len(refunds)})")

        first = wait_until(
            lambda: _after_a_block(w3, escapes[MAKER].pay),
            EXIT_WINDOW_S + 60,
            interval=0.5,
            what="the window's end",
        )
        paid = [first, *(e.pay() for e in escapes[1:3])]
        second_pay = _refusal(lambda: escapes[TAKER].pay())
        pool, _ = bridge.exit_pool()
        claims = bridge.exit_claims()
        assert all(p.amount == exit_payout(p.claim, pool, claims) for p in paid)
        paid_total = sum(p.amount for p in paid)
        step(f"after the exit window: {_dusd(paid_total)} paid of {_dusd(claims)} claimed")
        health = wait_until(
            lambda: _frozen_health(watcher.url), 30, interval=0.2, what="the watcher to report the freeze"
        )
        return {
            "l1": l1,
            "frozen": True,
            "frozen_batch_count": frozen.batch_count,
            "early_freeze_refused": early,
            "accounts_exited": len(paid),
            "equities": [r.equity for r in registered],
            "claims_total": claims,
            "exit_pool": pool,
            "insurance": get_insurance(chain.state),
            "paid": [p.amount for p in paid],
            "paid_total": paid_total,
            "withdrawals_claimed": sum(w.amount for w in withdrawn),
            "refunded": sum(r.amount for r in refunds),
            "bridge_held_before": held_before,
            "bridge_held_after": token.balance_of(dep.bridge),
            "second_exit_refused": second_exit == "bridge: already exited",
            "second_payout_refused": second_pay == "bridge: exit already paid",
            "watcher_health": health,
        }


def _dusd(units: int) -> str:
    return f"{units / TOKEN_UNIT:,.2f} dUSD"


def _after_a_block(w3: Web3, call: Any) -> Any:
    """`call()` after one more L1 block, or None while the L1 refuses it (a delay has not passed
    yet). The embedded L1 makes blocks only for transactions, each at least a second after the
    last, so that its clock runs ahead of the wall clock after a busy minute: a live L1 makes a
    block every few seconds, and so does this wait."""
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    try:
        return call()
    except EscapeRefused:
        return None


def _refusal(call: Any) -> str | None:
    """The L1's reason for refusing `call()` (None if it was not refused)."""
    try:
        call()
    except EscapeRefused as exc:
        return exc.reason
    return None


def _frozen_health(url: str) -> str | None:
    """`rollup_frozen` once the watcher's /health says so."""
    import httpx

    reply = httpx.get(f"{url}/health", timeout=5.0)
    codes = [r["code"] for r in reply.json()["reasons"]]
    return "rollup_frozen" if reply.status_code == 503 and "rollup_frozen" in codes else None
