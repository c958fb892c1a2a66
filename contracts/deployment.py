"""The deployment record: where the rollup's contracts are, as every service reads it.

`deployment.json` holds it (written by `rollup deploy` / the devnet, read by every service with
`--deployment`); it round-trips through JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3


@dataclass(frozen=True)
class Deployment:
    """Where the contracts are: what every service needs to talk to the rollup's L1."""

    chain_id: int
    """EIP-155 chain id of the L1."""
    token: str
    """Collateral ERC-20 (checksummed)."""
    rollup: str
    """Rollup contract (checksummed); also the EIP-712 `verifyingContract`."""
    bridge: str
    """Bridge contract (checksummed)."""
    verifier: str
    """FraudVerifier contract (checksummed)."""
    deploy_block: int
    """First L1 block to scan for rollup events (the Rollup's deployment block)."""
    transfer_rules: str = ""
    """TransferRules contract (checksummed; the verifier's rules of Deposit ... Cancel)."""
    oracle_rules: str = ""
    """OracleRules contract (checksummed; OracleUpdate, Funding)."""
    trade_rules: str = ""
    """TradeRules contract (checksummed; Fill, BundleFill)."""
    risk_rules: str = ""
    """RiskRules contract (checksummed; Liquidate, Deleverage)."""
    deployer: str = ""
    """Account that deployed (and owns the devnet token)."""
    params: dict[str, int] = field(default_factory=dict)
    """The Rollup's parameters, for information."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        data: dict[str, Any] = json.loads(text)
        return cls(
            chain_id=int(data["chain_id"]),
            token=Web3.to_checksum_address(data["token"]),
            rollup=Web3.to_checksum_address(data["rollup"]),
            bridge=Web3.to_checksum_address(data["bridge"]),
            verifier=Web3.to_checksum_address(data["verifier"]),
            deploy_block=int(data["deploy_block"]),
            transfer_rules=_checksum_or_empty(data.get("transfer_rules", "")),
            oracle_rules=_checksum_or_empty(data.get("oracle_rules", "")),
            trade_rules=_checksum_or_empty(data.get("trade_rules", "")),
            risk_rules=_checksum_or_empty(data.get("risk_rules", "")),
            deployer=data.get("deployer", ""),
            params={k: int(v) for k, v in data.get("params", {}).items()},
        )

    def save(self, path: str | Path) -> None:
        """Write atomically (a reader never sees half a file)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(target)

    @classmethod
    def load(cls, path: str | Path) -> Deployment:
        return cls.from_json(Path(path).read_text())


def _checksum_or_empty(address: str) -> str:
    return Web3.to_checksum_address(address) if address else ""
