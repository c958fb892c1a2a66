"""The devnet's markets and oracle committee (docs/protocol.md section 7), listed through the L1.

Markets and the committee are not genesis state: the Bridge's governor queues `SetMarket` and
`SetCommittee` governance messages, and the first batch consumes them like deposits. On the
devnet the governor is the deployer; in production it is a timelock or multisig.

Units: the collateral has 6 decimals and a size unit is 10^-6 of the asset, so a price (collateral
per size unit) reads as the USD price: ETH at 3000 is $3,000 per ETH.
"""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from contracts.bindings import BridgeClient, Sender
from contracts.deployment import Deployment
from sequencer.stf.codec import encode_message
from sequencer.stf.eip712 import address_of
from sequencer.stf.hashing import keccak
from sequencer.stf.types import Committee, MarketParams, SetCommittee, SetMarket

PERP_PARAMS = MarketParams(
    tick_size=1,
    lot_size=1_000,
    max_position=10**12,
    imr_bps=1000,
    mmr_bps=500,
    maker_fee_bps=-1,
    taker_fee_bps=5,
    liquidation_penalty_bps=100,
    breaker_bps=1500,
    max_funding_bps=50,
    funding_interval=60,
    breaker_window=60,
    max_oracle_age=60,
)
"""Both devnet perpetuals: lot 0.001 of the asset, 10x initial leverage (10% / 5% margins), maker
rebate 1 bp, taker 5 bps, 1% liquidation penalty, a 15% breaker over 60 s, funding every minute."""


@dataclass(frozen=True)
class DevnetMarket:
    """A market the devnet lists."""

    market_id: int
    name: str
    params: MarketParams
    start_price: int
    """Where the devnet's price feed starts (USD)."""


MARKETS = (
    DevnetMarket(0, "ETH-PERP", PERP_PARAMS, 3_000),
    DevnetMarket(1, "BTC-PERP", PERP_PARAMS, 60_000),
)

COMMITTEE_SIZE, COMMITTEE_THRESHOLD = 5, 3


def committee_keys() -> list[bytes]:
    """The devnet committee's member keys (deterministic; devnet only, never fund them on L1)."""
    return [keccak(b"devnet-oracle-member" + bytes([i])) for i in range(COMMITTEE_SIZE)]


def devnet_committee() -> Committee:
    """The 3-of-5 committee the devnet sets."""
    return Committee(COMMITTEE_THRESHOLD, tuple(address_of(k) for k in committee_keys()))


def governance_payloads() -> list[bytes]:
    """The messages that list the devnet's markets and set its committee, in order."""
    payloads = [encode_message(SetMarket(m.market_id, m.params)) for m in MARKETS]
    payloads.append(encode_message(SetCommittee(devnet_committee())))
    return payloads


def list_devnet_markets(w3: Web3, deployment: Deployment, governor_key: str) -> int:
    """Queue the devnet's governance messages on the Bridge; returns how many were queued."""
    bridge = BridgeClient(w3, deployment.bridge)
    governor = Sender.from_key(governor_key)
    payloads = governance_payloads()
    for payload in payloads:
        bridge.send_message(governor, payload)
    return len(payloads)
