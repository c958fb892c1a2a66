"""Funding on a live network: a sequencer process on the embedded L1 steps each market's funding
every interval, for many intervals, each step a transaction of its own.

The bug this guards against: every Funding of a market had the same bytes, so the same hash, and
the sequencer answered the second round's step with the first round's acknowledgement: funding
stopped after one round per market. A step now names the period it settles from.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, replace

import httpx
import pytest

from contracts.l1 import Web3L1
from devnet.demo import derive_chain
from devnet.markets import COMMITTEE_THRESHOLD, MARKETS, PERP_PARAMS, committee_keys
from devnet.orchestrator import SEQ_A, Network, get_json
from devnet.procs import wait_until
from sequencer.stf.codec import decode_tx, encode_message, encode_tx, tx_hash
from sequencer.stf.eip712 import sign_price
from sequencer.stf.errors import DecodeError
from sequencer.stf.state import State, get_markets
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import Funding, OracleUpdate, PriceEntry, SetMarket
from tests.e2e.helpers import Clients

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

INTERVAL = 2
"""Seconds between funding steps (the shortest the keeper, which looks every second, keeps up
with one period per step)."""
STEPS = 5
"""Funding steps each market must take."""
FAST = replace(PERP_PARAMS, funding_interval=INTERVAL, max_oracle_age=3_600)
"""The devnet's perpetuals with funding every INTERVAL seconds, priced once for the whole test."""
PRICES = {0: (3_003, 3_000), 1: (60_060, 60_000)}
"""(mark, index) per market: premium 3 (cap 15) and 60 (cap 300), longs pay shorts."""


@dataclass(frozen=True)
class Step:
    """An applied Funding and the market right after it."""

    since: int
    last_funding_time: int
    funding_index: int
    hash: bytes


def applied_funding(clients: Clients, network: Network) -> tuple[dict[int, list[Step]], int]:
    """Every Funding that took effect on the chain L1 data alone defines, per market, and the
    number of Funding transactions in its batches (applied or not)."""
    chain = derive_chain(Web3L1(network.l1_url, network.deployment), network.deployment.deploy_block)
    assert chain.fraud is None
    state = State()
    steps: dict[int, list[Step]] = defaultdict(list)
    seen = 0
    for batch in chain.batches:
        ctx = chain.context(batch)
        for raw in batch.txs:
            outcome = apply_tx(state, raw, ctx, clients.config)
            try:
                tx = decode_tx(raw)
            except DecodeError:
                continue
            if type(tx) is not Funding:
                continue
            seen += 1
            if outcome.applied:
                m = get_markets(state)[tx.market]
                steps[tx.market].append(Step(tx.since, m.last_funding_time, m.funding_index, tx_hash(raw)))
    return steps, seen


def test_funding__every_interval_of_many_on_a_live_node(network: Network, clients: Clients) -> None:
    for market in MARKETS:  # after the devnet's listing: funding every INTERVAL seconds
        clients.bridge.send_message(clients.deployer, encode_message(SetMarket(market.market_id, FAST)))
    seq = network.start_sequencer("sequencer-a", SEQ_A, batch_interval_ms=200)
    wait_until(
        lambda: (
            [m["funding_interval"] for m in get_json(f"{seq.url}/v1/markets")] == [INTERVAL] * len(MARKETS)
        ),
        60,
        interval=0.2,
        what="the markets to be listed with the short funding interval",
    )
    start = int(time.time()) - 2  # before the node's clock: a price may not be from its future
    with httpx.Client(timeout=10) as http:
        for market_id, (mark, index) in PRICES.items():
            prices = tuple(
                PriceEntry(mark, index, start, sign_price(k, market_id, mark, index, start, clients.config))
                for k in committee_keys()[:COMMITTEE_THRESHOLD]
            )
            raw = encode_tx(OracleUpdate(market_id, prices))
            answer = http.post(f"{seq.url}/v1/transactions", json={"raw": "0x" + raw.hex()})
            assert answer.status_code == 200, answer.text

    def enough() -> tuple[dict[int, list[Step]], int] | None:
        steps, seen = applied_funding(clients, network)
        return (steps, seen) if all(len(steps[m]) >= STEPS for m in PRICES) else None

    steps, seen = wait_until(
        enough, 90 + STEPS * INTERVAL, interval=0.5, what=f"{STEPS} funding steps per market on L1"
    )
    assert seen == sum(len(s) for s in steps.values())  # no Funding in a batch was a no-op
    hashes = [s.hash for market_steps in steps.values() for s in market_steps]
    assert len(set(hashes)) == len(hashes)  # each step its own transaction
    for market_id, (mark, index) in PRICES.items():
        premium = min(mark - index, index * FAST.max_funding_bps // 10_000)
        last, funding_index = start, 0  # funding starts at the first price's time
        for s in steps[market_id]:
            # each step settles from where the last left off and advances by whole intervals
            assert s.since == last
            assert s.last_funding_time > last and (s.last_funding_time - last) % INTERVAL == 0
            # every interval is paid exactly once: the index is the premium per interval passed
            assert s.funding_index == funding_index + premium * (s.last_funding_time - last) // INTERVAL
            last, funding_index = s.last_funding_time, s.funding_index
        assert last >= start + STEPS * INTERVAL
