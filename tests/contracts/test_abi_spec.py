"""docs/protocol.md section 10 is the contracts' ABI: every function (parameter types, outputs,
payable/view, selector), constructor and event (field types, `indexed`, order) it lists is the
compiled contract's, and it lists all of them. An independent watcher computes selectors and
topics from that section alone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from contracts.build import compile_all

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
CONTRACTS = ("Rollup", "Bridge", "FraudVerifier", "Token")

_ROW = re.compile(r"^\| `([^`]+)` \|(?: `([0-9a-f]{8})`)?")
_CALL = re.compile(r"^(event |constructor)?(\w*)\((.*?)\)( payable| view)?(?: returns \((.*)\))?$")


def _section() -> str:
    text = SPEC.read_text()
    start = text.index("\n## 10. ")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def _structs(section: str) -> dict[str, str]:
    """Struct name -> its ABI tuple type, from the section's struct block."""
    out: dict[str, str] = {}
    for name, body in re.findall(r"struct (\w+) \{[^\n]*\n(.*?)\n\}", section, re.S):
        members = [re.sub(r"//.*", "", line).strip() for line in body.splitlines()]
        types = [_type(m.rstrip(";").split()[0], out) for m in members if m]
        out[name] = "(" + ",".join(types) + ")"
    return out


def _type(word: str, structs: dict[str, str]) -> str:
    base, array = (word[:-2], "[]") if word.endswith("[]") else (word, "")
    return structs.get(base, base) + array


def _params(text: str, structs: dict[str, str]) -> list[tuple[str, bool]]:
    """`type [indexed] name, ...` -> [(ABI type, indexed)]."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        words = part.split()
        out.append((_type(words[0], structs), "indexed" in words[1:]))
    return out


def _documented() -> dict[str, dict[str, Any]]:
    section = _section()
    structs = _structs(section)
    docs: dict[str, dict[str, Any]] = {}
    for chunk in section.split("\n### ")[1:]:
        contract = chunk.split()[0]
        if contract not in CONTRACTS:
            continue
        entry: dict[str, Any] = {"functions": {}, "events": [], "constructor": None}
        for line in chunk.splitlines():
            row = _ROW.match(line)
            if row is None:
                continue
            call = _CALL.match(row.group(1))
            assert call is not None, line
            kind, name, params, mutability, returns = call.groups()
            inputs = _params(params, structs)
            if kind == "event ":
                entry["events"].append((name, inputs))
            elif kind == "constructor":
                entry["constructor"] = [t for t, _ in inputs]
            else:
                signature = f"{name}({','.join(t for t, _ in inputs)})"
                outputs = [t for t, _ in _params(returns or "", structs)]
                state = (mutability or " nonpayable").strip()
                entry["functions"][signature] = (outputs, state, row.group(2))
        docs[contract] = entry
    return docs


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + item["type"][5:]
    return str(item["type"])


def _compiled(abi: list[dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {"functions": {}, "events": [], "constructor": None}
    for item in abi:
        inputs = item.get("inputs", [])
        if item["type"] == "function":
            signature = f"{item['name']}({','.join(_abi_type(i) for i in inputs)})"
            outputs = [_abi_type(o) for o in item.get("outputs", [])]
            entry["functions"][signature] = (
                outputs,
                item["stateMutability"],
                keccak(text=signature)[:4].hex(),
            )
        elif item["type"] == "event":
            entry["events"].append((item["name"], [(_abi_type(i), bool(i["indexed"])) for i in inputs]))
        elif item["type"] == "constructor":
            entry["constructor"] = [_abi_type(i) for i in inputs]
    return entry


DOCUMENTED = _documented()


@pytest.fixture(scope="module")
def artifacts() -> dict[str, Any]:
    return compile_all()


def test_abi_spec__every_contract_has_its_subsection() -> None:
    assert set(DOCUMENTED) == set(CONTRACTS)


@pytest.mark.parametrize("contract", CONTRACTS)
def test_abi_spec__functions_constructor_and_events_are_the_compiled_ones(
    artifacts: dict[str, Any], contract: str
) -> None:
    doc, compiled = DOCUMENTED[contract], _compiled(artifacts[contract].abi)
    assert doc["constructor"] == compiled["constructor"]
    assert sorted(doc["functions"]) == sorted(compiled["functions"])
    for signature, (outputs, state, selector) in compiled["functions"].items():
        assert doc["functions"][signature] == (outputs, state, selector), signature
    assert sorted(doc["events"]) == sorted(compiled["events"])


def test_abi_spec__batch_appended_topics_and_data() -> None:
    (event,) = [e for e in DOCUMENTED["Rollup"]["events"] if e[0] == "BatchAppended"]
    types = ",".join(t for t, _ in event[1])
    assert keccak(text=f"BatchAppended({types})").hex() == (
        "af84ab250371e6a43e9986ddfd367dc6412874174081b4c38748aa2dfce81b11"
    )
    assert [i for i, (_, indexed) in enumerate(event[1]) if indexed] == [0, 9]  # index, sequencer
