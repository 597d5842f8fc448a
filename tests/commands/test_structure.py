"""The CLI only parses and renders: subcommand modules share code through the job and option modules, never by
importing each other (issue 11 item 5)."""

from __future__ import annotations

import ast
from pathlib import Path

from sipcli.commands.cli import SUBCOMMANDS

COMMANDS = Path(__file__).resolve().parents[2] / "commands"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_subcommands_do_not_import_each_other():
    subcommands = {f"sipcli.commands.{module}" for module, _ in SUBCOMMANDS.values()}
    for module in sorted(subcommands):
        path = COMMANDS / f"{module.rsplit('.', 1)[1]}.py"
        others = imported_modules(path) & (subcommands - {module})
        assert not others, f"{path.name} imports {sorted(others)}"


def test_shared_modules_import_no_subcommand():
    subcommands = {f"sipcli.commands.{module}" for module, _ in SUBCOMMANDS.values()}
    for path in sorted(COMMANDS.glob("*.py")):
        if f"sipcli.commands.{path.stem}" in subcommands or path.stem in ("__init__", "__main__"):
            continue
        assert not imported_modules(path) & subcommands, path.name


def test_setup_installs_every_package():
    """A package missing from setup.py works from the checkout but not installed (.ci/installed-demo found one)."""
    root = COMMANDS.parent
    call = next(node for node in ast.walk(ast.parse((root / "setup.py").read_text(encoding="utf-8")))
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup")
    packages = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "packages"))
    found = {".".join(path.parent.relative_to(root).parts) for path in (root / "sipcli").rglob("__init__.py")}
    assert found | {"sipcli.commands"} == set(packages)
