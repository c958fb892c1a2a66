"""The faulty sequencer lives in devnet: the production entry point takes no fault flags, and
`python -m devnet.faulty` runs the sequencer's own wiring with a lying poster and chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import devnet.faulty as faulty
from devnet.faulty import Fault, FaultyNode, corrupt
from devnet.orchestrator import Network
from sequencer.builder import BuiltBatch
from sequencer.config import SequencerSettings
from sequencer.main import argument_parser
from sequencer.stf.constants import TX_TYPE_FILL, TX_TYPE_TRANSFER


def test_sequencer_main__fault_flags__refused_and_no_fault_setting() -> None:
    for flags in (["--fault-tx-type", "fill"], ["--fault-post-root-offset", "0"]):
        with pytest.raises(SystemExit):
            argument_parser().parse_args(flags)
    assert not [name for name in SequencerSettings.model_fields if "fault" in name]


def batch(*types: int) -> BuiltBatch:
    txs = [bytes((t, i)) for i, t in enumerate(types)]
    roots = [bytes([i]) * 32 for i in range(len(types))]
    return BuiltBatch(txs, roots, 0, 0, [], [], post_state=object())  # type: ignore[arg-type]


def test_corrupt__first_of_a_type__only_that_root_wrong_and_no_post_state() -> None:
    honest = batch(TX_TYPE_TRANSFER, TX_TYPE_FILL, TX_TYPE_FILL)
    lying = corrupt(honest, tx_type=TX_TYPE_FILL)
    assert [a == b for a, b in zip(lying.roots, honest.roots, strict=True)] == [True, False, True]
    assert lying.post_state is None and lying.txs == honest.txs


def test_corrupt__no_such_transaction__unchanged() -> None:
    honest = batch(TX_TYPE_TRANSFER)
    assert corrupt(honest, tx_type=TX_TYPE_FILL) is honest
    assert corrupt(honest, root_at=1) is honest
    assert corrupt(honest, root_at=0).roots != honest.roots


def test_main__fault_flags__the_sequencer_settings_and_a_faulty_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    deployment = tmp_path / "deployment.json"
    deployment.write_text("{}")

    def build_node(settings: SequencerSettings, node_type: Any) -> str:
        seen["settings"], seen["node_type"] = settings, node_type
        return "node"

    monkeypatch.setattr(faulty, "build_node", build_node)
    monkeypatch.setattr(faulty, "serve", lambda settings, node: seen.update(served=node))
    key = ["--private-key", "11" * 32, "--deployment", str(deployment)]
    faulty.main(["--fault-tx-type", "fill", "--port", "8611", "--batch-max-txs", "1", *key])
    assert seen["served"] == "node"
    assert (seen["settings"].port, seen["settings"].batch_max_txs) == (8611, 1)
    assert seen["node_type"].func is FaultyNode
    assert seen["node_type"].keywords == {"fault": Fault(root_at=-1, tx_type=TX_TYPE_FILL)}


def test_orchestrator__fault__the_sequencer_started_from_devnet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argvs: list[list[str]] = []
    monkeypatch.setattr(Network, "_start_service", lambda self, name, argv, *rest: argvs.append(argv))
    monkeypatch.setattr(Network, "_argv", lambda self, module, account, port: [module])
    net = Network(tmp_path, "http://127.0.0.1:1", None, tmp_path / "d.json", [None] * 3)  # type: ignore[arg-type, list-item]
    net.start_sequencer("a", 1, port=1)
    net.start_sequencer("b", 2, port=2, fault_tx_type="fill")
    assert [argv[0] for argv in argvs] == ["sequencer.main", "devnet.faulty"]
    assert argvs[1][-2:] == ["--fault-tx-type", "fill"]
