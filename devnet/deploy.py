"""Deploy and wire the rollup's L1 contracts: Token, Rollup, Bridge, the rules, FraudVerifier.

Order: Token (the devnet collateral), Rollup (parameters), Bridge(token, rollup, exit window) (the
deployer is its governor), TransferRules(rollup, bridge), OracleRules(rollup), TradeRules(rollup),
RiskRules(rollup), FraudVerifier(transfer_rules, oracle_rules, trade_rules, risk_rules), then the
one-time `Rollup.initialize(verifier, bridge)` that closes the circular references. `deploy_all` returns a
`Deployment`, which round-trips through JSON (the deployment file the services read).
"""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from contracts.bindings import RollupClient, Sender, TokenClient, deploy_contract
from contracts.build import compile_all
from contracts.deployment import Deployment

ETHER_WEI = 10**18


@dataclass(frozen=True)
class DeployParams:
    """Deployment parameters (protocol section 1; defaults are the devnet's values)."""

    challenge_window_seconds: int = 20
    """Seconds a batch stays open to fraud proofs (CHALLENGE_WINDOW_SECONDS)."""
    min_bond_wei: int = 1 * ETHER_WEI
    """Least sequencer bond (MIN_BOND_WEI)."""
    challenger_reward_bps: int = 5_000
    """Share of a slashed bond paid to the challenger (CHALLENGER_REWARD_BPS); the rest is burned."""
    force_inclusion_seconds: int = 60
    """Age at which a queue entry must be consumed (FORCE_INCLUSION_SECONDS)."""
    max_l2_time_lag_seconds: int = 600
    """Most a batch's `l2_time` may lag the L1 block's timestamp (MAX_L2_TIME_LAG_SECONDS)."""
    escape_delay_seconds: int = 0
    """Seconds without an append, with a queue entry overdue, after which anyone may freeze the
    Rollup (ESCAPE_DELAY_SECONDS, above the challenge window); 0: the challenge window plus the
    forced-inclusion age."""
    exit_window_seconds: int = 30
    """Seconds after a freeze during which exits are registered (the Bridge's EXIT_WINDOW_SECONDS)."""
    token_name: str = "Devnet USD"
    """Name of the devnet collateral token."""
    token_symbol: str = "dUSD"
    """Symbol of the devnet collateral token."""
    token_address: str | None = None
    """Use this existing ERC-20 as collateral instead of deploying `Token.vy`."""

    @property
    def escape_delay(self) -> int:
        """`escape_delay_seconds`, its default resolved."""
        return self.escape_delay_seconds or self.challenge_window_seconds + max(
            1, self.force_inclusion_seconds
        )


def deploy_all(w3: Web3, deployer: Sender, params: DeployParams | None = None) -> Deployment:
    """Deploy Token (unless `params.token_address`), Rollup, Bridge, the four rules contracts and
    FraudVerifier, and wire them."""
    params = params or DeployParams()
    artifacts = compile_all()
    if params.token_address is None:
        token, _ = deploy_contract(w3, deployer, artifacts["Token"], params.token_name, params.token_symbol)
    else:
        token = Web3.to_checksum_address(params.token_address)
    rollup, rollup_result = deploy_contract(
        w3,
        deployer,
        artifacts["Rollup"],
        params.challenge_window_seconds,
        params.min_bond_wei,
        params.challenger_reward_bps,
        params.force_inclusion_seconds,
        params.max_l2_time_lag_seconds,
        params.escape_delay,
    )
    bridge, _ = deploy_contract(w3, deployer, artifacts["Bridge"], token, rollup, params.exit_window_seconds)
    transfer_rules, _ = deploy_contract(w3, deployer, artifacts["TransferRules"], rollup, bridge)
    oracle_rules, _ = deploy_contract(w3, deployer, artifacts["OracleRules"], rollup)
    trade_rules, _ = deploy_contract(w3, deployer, artifacts["TradeRules"], rollup)
    risk_rules, _ = deploy_contract(w3, deployer, artifacts["RiskRules"], rollup)
    verifier, _ = deploy_contract(
        w3, deployer, artifacts["FraudVerifier"], transfer_rules, oracle_rules, trade_rules, risk_rules
    )
    client = RollupClient(w3, rollup, artifact=artifacts["Rollup"])
    client._send(deployer, client.contract.functions.initialize(verifier, bridge))
    return Deployment(
        chain_id=w3.eth.chain_id,
        token=token,
        rollup=rollup,
        bridge=bridge,
        verifier=verifier,
        deploy_block=rollup_result.block_number,
        transfer_rules=transfer_rules,
        oracle_rules=oracle_rules,
        trade_rules=trade_rules,
        risk_rules=risk_rules,
        deployer=deployer.address,
        params={
            "challenge_window_seconds": params.challenge_window_seconds,
            "min_bond_wei": params.min_bond_wei,
            "challenger_reward_bps": params.challenger_reward_bps,
            "force_inclusion_seconds": params.force_inclusion_seconds,
            "max_l2_time_lag_seconds": params.max_l2_time_lag_seconds,
            "escape_delay_seconds": params.escape_delay,
            "exit_window_seconds": params.exit_window_seconds,
        },
    )


def token_client(w3: Web3, deployment: Deployment) -> TokenClient:
    """The collateral token of a deployment."""
    return TokenClient(w3, deployment.token)
