"""The MSRP protocol core is sans-IO: no module of sipcli/msrp but aio.py imports asyncio or sockets."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sipcli.msrp

PACKAGE = Path(sipcli.msrp.__file__).parent
ROOT = PACKAGE.parent.parent
IO_MODULES = {"asyncio", "socket", "ssl", "selectors"}
CORE = sorted(f"sipcli.msrp.{path.stem}" for path in PACKAGE.glob("*.py") if path.stem not in ("__init__", "aio"))


def imports(module: str) -> set[str]:
    """Top-level names of what module's source imports, anywhere in it (also inside functions)."""
    path = ROOT / Path(*module.split(".")).with_suffix(".py")
    if not path.exists():
        path = path.with_suffix("") / "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_the_core_modules_and_what_they_import_from_sipcli_import_no_asyncio_or_socket() -> None:
    assert {"sipcli.msrp.connection", "sipcli.msrp.parser", "sipcli.msrp.message", "sipcli.msrp.relay"} <= set(CORE)
    seen: set[str] = set()
    todo = list(CORE)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        names = imports(module)
        assert not {name.split(".")[0] for name in names} & IO_MODULES, (module, names)
        assert "sipcli.msrp.aio" not in names, module
        todo += [name for name in names if name.startswith("sipcli.")]


def test_importing_the_core_loads_no_asyncio_or_socket_even_through_the_standard_library() -> None:
    code = f"import sys, {', '.join(CORE)}; print(sorted(set(sys.modules) & set({sorted(IO_MODULES)!r})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert result.stdout.strip() == "[]"
