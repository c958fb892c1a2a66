"""Child processes of the devnet: a restarted process reads only its own lines of a shared log."""

from __future__ import annotations

from pathlib import Path

from devnet.procs import rpc_call, run_l1node


def test_run_l1node__log_of_an_earlier_run__waits_for_its_own_address(tmp_path: Path) -> None:
    log = tmp_path / "l1.log"
    with run_l1node(port=0, log_path=log) as first:
        assert rpc_call(first.url, "eth_chainId") == hex(first.chain_id)
    assert "Listening on" in log.read_text()
    with run_l1node(port=0, log_path=log) as second:  # appends to the same log
        assert rpc_call(second.url, "eth_chainId") == hex(second.chain_id)
    assert log.read_text().count("Listening on") == 2
