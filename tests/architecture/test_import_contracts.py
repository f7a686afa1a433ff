"""The import contracts of pyproject.toml hold for chatscope, and each one can fail.

`[tool.importlinter]` states the layer rules of docs/architecture.md (services depend on
ports, adapters never import containers or the CLI, config is plain data, only containers
and the CLI compose, the web layer never imports the CLI or test helpers, only the Ray layer
imports Ray) and the seams
between sibling rooms (a provider adapter never imports storage, the chat loop never imports
history or subagents, other rooms use the chat loop through its public names). CI runs
`lint-imports`; this test runs the same contracts in the suite, then proves every contract
bites: a throw-away package with the same layout and exactly one forbidden import must break
exactly the contract that forbids it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from importlinter.api import read_configuration
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
PACKAGE = ROOT / "src" / "chatscope"
FAKE = "fakescope"
CONFIG = read_configuration(str(PYPROJECT))
CONTRACTS: list[dict[str, Any]] = CONFIG["contracts_options"]
VIOLATIONS = [
    pytest.param(contract, forbidden, id=f"{contract['source_modules'][0]}->{forbidden}")
    for contract in CONTRACTS
    for forbidden in contract["forbidden_modules"]
]


def test_chatscope_keeps_every_import_contract() -> None:
    """`lint-imports` over the real source finds no broken contract."""
    assert lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True) == 0


def test_there_is_a_contract_for_every_layer_rule() -> None:
    """Every layer, every room of services and adapters, and the shared vocabulary has one."""
    sources = {module for contract in CONTRACTS for module in contract["source_modules"]}
    assert sources == {
        "chatscope.services",
        "chatscope.services.frozen",
        "chatscope.services.messages",
        "chatscope.services.events",
        "chatscope.services.tools",
        "chatscope.services.runtime",
        "chatscope.services.chat",
        "chatscope.services.history",
        "chatscope.services.subagents",
        "chatscope.adapters",
        "chatscope.adapters.providers",
        "chatscope.adapters.storage",
        "chatscope.adapters.tools",
        "chatscope.adapters.logging",
        "chatscope.adapters.telemetry",
        "chatscope.config",
        "chatscope.containers",
        "chatscope.errors",
        "chatscope.web",
        "chatscope.distributed",
        "chatscope.cli",
        "chatscope.testing",
    }
    assert all(contract["type"] == "forbidden" for contract in CONTRACTS)


@pytest.mark.parametrize(("contract", "forbidden"), VIOLATIONS)
def test_each_forbidden_import_breaks_its_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, contract: dict[str, Any], forbidden: str
) -> None:
    """A copy of the layout with one forbidden import fails; without it, it passes."""
    monkeypatch.syspath_prepend(str(tmp_path))
    config = _write_config(tmp_path, contract)
    _write_layout(tmp_path)
    assert _lint(config) == 0, "the layout alone must keep the contract"
    _add_import(tmp_path, _fake(contract["source_modules"][0]), _fake(forbidden))
    assert _lint(config) == 1, f"importing {forbidden} must break {contract['name']!r}"


def _lint(config: Path) -> int:
    return lint_imports(config_filename=str(config), no_cache=True, no_logo=True)


def _fake(module: str) -> str:
    """The module's name in the throw-away package (external modules keep theirs)."""
    head, _, rest = module.partition(".")
    return f"{FAKE}.{rest}" if head == "chatscope" else module


def _write_layout(base: Path) -> None:
    """An empty package with chatscope's layout: the same packages and modules, at every depth."""
    for source in PACKAGE.rglob("*.py"):
        if "__pycache__" in source.parts:
            continue
        target = base / FAKE / source.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("", encoding="utf-8")


def _add_import(base: Path, source: str, imported: str) -> None:
    path = base.joinpath(*source.split("."))
    target = path / "violation.py" if path.is_dir() else path.with_suffix(".py")
    with target.open("a", encoding="utf-8") as file:
        file.write(f"import {imported}\n")


def _write_config(base: Path, contract: dict[str, Any]) -> Path:
    """An INI import-linter config holding just this contract, renamed to the fake package."""
    lines = ["[importlinter]", f"root_package = {FAKE}"]
    lines += [
        f"include_external_packages = {CONFIG['session_options']['include_external_packages']}"
    ]
    lines += ["", "[importlinter:contract:only]"]
    for key, value in contract.items():
        if isinstance(value, list):
            lines.append(f"{key} =")
            lines.extend(f"    {_fake(item)}" for item in value)
        else:
            lines.append(f"{key} = {value}")
    config = base / "contracts.ini"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config
