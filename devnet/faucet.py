"""The devnet faucet: mint collateral to traders and deposit it through the Bridge for them."""

from __future__ import annotations

from web3 import Web3

from contracts.bindings import BridgeClient, Sender, TokenClient
from contracts.deployment import Deployment


def fund_traders(
    w3: Web3, deployment: Deployment, deployer_key: str, trader_keys: list[str], amount: int
) -> None:
    """For each trader: the deployer mints `amount`, the trader approves the Bridge and deposits it
    to its own rollup account (three L1 transactions each)."""
    token = TokenClient(w3, deployment.token)
    bridge = BridgeClient(w3, deployment.bridge)
    deployer = Sender.from_key(deployer_key)
    for key in trader_keys:
        trader = Sender.from_key(key)
        token.mint(deployer, trader.address, amount)
        token.approve(trader, deployment.bridge, amount)
        bridge.deposit(trader, trader.address, amount)
