"""Helpers of the end-to-end tests."""

from __future__ import annotations

from web3 import Web3

from contracts.bindings import BridgeClient, RollupClient, Sender, TokenClient
from devnet.faucet import fund_traders
from devnet.orchestrator import FIRST_TRADER, Network
from sequencer.builder import batch_tx_hashes
from sequencer.stf.types import ChainConfig

TOKEN_UNIT = 10**6


class Clients:
    """web3 clients of a network's contracts."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.w3 = Web3(Web3.HTTPProvider(net.l1_url, request_kwargs={"timeout": 60}))
        d = net.deployment
        self.token = TokenClient(self.w3, d.token)
        self.bridge = BridgeClient(self.w3, d.bridge)
        self.rollup = RollupClient(self.w3, d.rollup)
        self.config = ChainConfig(chain_id=d.chain_id, rollup=bytes.fromhex(d.rollup[2:]))
        self.deployer = Sender.from_key(net.accounts[0].private_key)

    def trader_keys(self, n: int) -> list[bytes]:
        return [bytes.fromhex(a.private_key[2:]) for a in self.net.accounts[FIRST_TRADER : FIRST_TRADER + n]]

    def fund(self, n: int, amount: int) -> list[bytes]:
        """Mint, approve and deposit `amount` for the first `n` traders; returns their keys."""
        traders = self.net.accounts[FIRST_TRADER : FIRST_TRADER + n]
        fund_traders(
            self.w3,
            self.net.deployment,
            self.net.accounts[0].private_key,
            [t.private_key for t in traders],
            amount,
        )
        return self.trader_keys(n)

    def hashes_on_l1(self) -> set[str]:
        """The hash (0x hex) of every transaction in the Rollup's `BatchAppended` events."""
        return {
            "0x" + h.hex()
            for e in self.rollup.batch_appended_events(self.net.deployment.deploy_block)
            for h in batch_tx_hashes(e.txs)
        }
