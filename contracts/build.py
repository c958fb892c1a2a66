"""Compile the Vyper contracts from source, with an on-disk cache.

`compile_all()` returns one `Artifact` (abi, deploy bytecode, runtime bytecode) per deployable
contract. The result is cached in `<repo>/.cache/contracts/<key>.json`, where the key is the
sha256 of every `.vy` source in this folder (names and contents) and the Vyper version, so a
second call (in this process or another) costs a file read. `python -m contracts.build` prints
the runtime code sizes against the EIP-170 limit.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = CONTRACTS_DIR.parent
CACHE_DIR = REPO_ROOT / ".cache" / "contracts"

# Deployable contracts; the other `.vy` files are library modules they import.
CONTRACT_NAMES: tuple[str, ...] = (
    "Token",
    "Rollup",
    "Bridge",
    "FraudVerifier",
    "TransferRules",
    "OracleRules",
    "TradeRules",
    "RiskRules",
)

# EIP-170: the most bytes of runtime code a contract may have.
EIP170_CODE_SIZE_LIMIT = 24_576


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    """Contract name (the source file's stem)."""
    abi: list[dict[str, Any]]
    """The JSON ABI."""
    bytecode: bytes
    """Deployment (init) code, without constructor arguments."""
    runtime_bytecode: bytes
    """Code stored on chain after deployment; its length is what EIP-170 limits."""

    @property
    def code_size(self) -> int:
        """Runtime code size in bytes."""
        return len(self.runtime_bytecode)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "abi": self.abi,
            "bytecode": "0x" + self.bytecode.hex(),
            "runtime_bytecode": "0x" + self.runtime_bytecode.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        return cls(
            name=data["name"],
            abi=data["abi"],
            bytecode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
            runtime_bytecode=bytes.fromhex(data["runtime_bytecode"].removeprefix("0x")),
        )


def _sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(CONTRACTS_DIR.glob("*.vy"))}


def source_key() -> str:
    """The cache key: sha256 over the Vyper version and every source's name and text."""
    h = hashlib.sha256()
    h.update(f"vyper {importlib.metadata.version('vyper')}\n".encode())
    for name, text in _sources().items():
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()


def compile_contract(name: str) -> Artifact:
    """Compile one contract from source (no cache)."""
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    path = CONTRACTS_DIR / f"{name}.vy"
    out = vyper.compile_code(
        path.read_text(),
        contract_path=path.name,
        resolved_path=path,
        input_bundle=FilesystemInputBundle([CONTRACTS_DIR]),
        output_formats=["abi", "bytecode", "bytecode_runtime"],
    )
    return Artifact(
        name=name,
        abi=out["abi"],
        bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")),
        runtime_bytecode=bytes.fromhex(out["bytecode_runtime"].removeprefix("0x")),
    )


_memo: dict[str, dict[str, Artifact]] = {}


def compile_all(*, use_cache: bool = True) -> dict[str, Artifact]:
    """Compile every deployable contract, from the cache when the sources are unchanged."""
    key = source_key()
    if use_cache and key in _memo:
        return _memo[key]
    cache_file = CACHE_DIR / f"{key}.json"
    if use_cache and cache_file.exists():
        try:
            data = json.loads(cache_file.read_text())
            artifacts = {name: Artifact.from_json(data[name]) for name in CONTRACT_NAMES}
        except (ValueError, KeyError):
            artifacts = None  # a corrupt cache file: rebuild it
        if artifacts is not None:
            _memo[key] = artifacts
            return artifacts
    artifacts = {name: compile_contract(name) for name in CONTRACT_NAMES}
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Write atomically so that concurrent builds never read a half-written file.
    fd, tmp = tempfile.mkstemp(dir=CACHE_DIR, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({name: a.to_json() for name, a in artifacts.items()}, f)
    os.replace(tmp, cache_file)
    _memo[key] = artifacts
    return artifacts


def main() -> int:
    artifacts = compile_all()
    print(f"{'contract':<16}{'runtime bytes':>14}{'EIP-170 use':>13}")
    over = False
    for name, a in artifacts.items():
        share = a.code_size / EIP170_CODE_SIZE_LIMIT
        over |= a.code_size > EIP170_CODE_SIZE_LIMIT
        print(f"{name:<16}{a.code_size:>14}{share:>12.0%}")
    print(f"cache: {CACHE_DIR / (source_key() + '.json')}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
