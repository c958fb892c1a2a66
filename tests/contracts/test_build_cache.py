"""The contract build: compiled from source, cached on disk, every contract under EIP-170."""

from __future__ import annotations

import time

import pytest

from contracts import build


def test_compile_all__second_call__served_from_disk_cache() -> None:
    first = build.compile_all()
    cache_file = build.CACHE_DIR / f"{build.source_key()}.json"
    assert cache_file.exists()
    build._memo.clear()  # force the on-disk path
    start = time.perf_counter()
    second = build.compile_all()
    elapsed = time.perf_counter() - start
    assert second == first
    assert elapsed < 1.0


def test_compile_all__every_contract__abi_bytecode_and_under_eip170_limit() -> None:
    artifacts = build.compile_all()
    assert set(artifacts) == {
        "Token",
        "Rollup",
        "Bridge",
        "FraudVerifier",
        "TransferRules",
        "OracleRules",
        "TradeRules",
        "RiskRules",
    }
    for artifact in artifacts.values():
        assert artifact.abi and artifact.bytecode and artifact.runtime_bytecode
        assert artifact.code_size <= build.EIP170_CODE_SIZE_LIMIT, artifact.name


@pytest.mark.parametrize(
    ("contract", "function"),
    [
        ("Rollup", "append_batch"),
        ("Rollup", "prove_tx_fraud"),
        ("Rollup", "prove_queue_fraud"),
        ("Rollup", "withdraw_bond"),
        ("Rollup", "is_final"),
        ("Bridge", "deposit"),
        ("Bridge", "claim_withdrawal"),
        ("Bridge", "send_message"),
        ("Bridge", "set_governor"),
        ("Bridge", "queue_hash"),
        ("Bridge", "queue_timestamp"),
        ("Bridge", "queue_length"),
        ("FraudVerifier", "apply_tx"),
        ("TransferRules", "execute"),
        ("OracleRules", "execute"),
        ("TradeRules", "execute"),
        ("RiskRules", "execute"),
        ("Token", "mint"),
    ],
)
def test_compile_all__abi__exposes_protocol_functions(contract: str, function: str) -> None:
    names = {item.get("name") for item in build.compile_all()[contract].abi}
    assert function in names


def test_main__prints_sizes__exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main() == 0
    out = capsys.readouterr().out
    assert "FraudVerifier" in out and "Rollup" in out
