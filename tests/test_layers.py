"""Each part imports only what is below it (DESIGN.md's layers), read from the source files.

Bottom up: the state machine and the derivation (`sequencer.stf`) -> the contracts' bindings and
the L1 adapter (`contracts`) -> the services (`sequencer`, `prover`) -> `devnet` and the tests.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("sequencer", "prover", "contracts", "devnet", "tests")

STF_FORBIDDEN = {
    # I/O, clocks and randomness: the state machine is pure
    "asyncio",
    "datetime",
    "http",
    "os",
    "random",
    "secrets",
    "socket",
    "sqlite3",
    "subprocess",
    "threading",
    "time",
    "urllib",
    # services' libraries
    "fastapi",
    "httpx",
    "pydantic",
    "requests",
    "starlette",
    "uvicorn",
    "web3",
}


def _imports(path: Path) -> list[str]:
    """Every module a file imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                out.append(".".join([*base, node.module] if node.module else base))
            elif node.module:
                out.append(node.module)
    return out


def _modules(folder: str) -> list[tuple[str, list[str]]]:
    return [
        (str(p.relative_to(ROOT)), _imports(p))
        for p in sorted((ROOT / folder).rglob("*.py"))
        if ".cache" not in p.parts
    ]


def _ours(name: str) -> bool:
    return name.split(".")[0] in OURS


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _violations(folder: str, allowed: tuple[str, ...], skip: tuple[str, ...] = ()) -> list[str]:
    out = []
    for path, imported in _modules(folder):
        if any(path.startswith(s) for s in skip):
            continue
        out += [
            f"{path}: {name}"
            for name in imported
            if _ours(name) and not any(_under(name, a) for a in allowed)
        ]
    return out


def test_stf__imports_only_itself_and_no_io_clock_randomness_or_service_library() -> None:
    bad = _violations("sequencer/stf", ("sequencer.stf",))
    for path, imported in _modules("sequencer/stf"):
        bad += [f"{path}: {name}" for name in imported if name.split(".")[0] in STF_FORBIDDEN]
    assert bad == []


def test_contracts__import_only_the_state_machine_below_them() -> None:
    assert _violations("contracts", ("contracts", "sequencer.stf")) == []


def test_prover__imports_no_sequencer_service_module_and_no_devnet() -> None:
    assert _violations("prover", ("prover", "contracts", "sequencer.stf")) == []


def test_sequencer_service__imports_no_prover_and_no_devnet() -> None:
    assert _violations("sequencer", ("sequencer", "contracts"), skip=("sequencer/stf/",)) == []


def test_api__imported_only_by_itself_and_the_entry_point() -> None:
    bad = []
    for path, imported in _modules("sequencer"):
        if path.startswith("sequencer/api/") or path == "sequencer/main.py":
            continue
        bad += [f"{path}: {name}" for name in imported if _under(name, "sequencer.api")]
    assert bad == []


@pytest.mark.parametrize("folder", ["sequencer", "prover", "contracts"])
def test_production_code__never_imports_devnet_or_tests(folder: str) -> None:
    bad = []
    for path, imported in _modules(folder):
        bad += [f"{path}: {name}" for name in imported if _under(name, "devnet") or _under(name, "tests")]
    assert bad == []


def test_imports__resolve_to_files_or_installed_modules() -> None:
    """The checks above read names: a typo would pass them silently, so every name of ours that
    is imported must exist."""
    missing = []
    for folder in ("sequencer", "prover", "contracts", "devnet"):
        for path, imported in _modules(folder):
            for name in imported:
                if not _ours(name):
                    continue
                parts = name.split(".")
                as_module = ROOT.joinpath(*parts).with_suffix(".py")
                as_package = ROOT.joinpath(*parts, "__init__.py")
                parent = ROOT.joinpath(*parts[:-1]).with_suffix(".py")  # `from a.b import name`
                if not (as_module.exists() or as_package.exists() or parent.exists()):
                    missing.append(f"{path}: {name}")
    assert missing == [], sys.path
