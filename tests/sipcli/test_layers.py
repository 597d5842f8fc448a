"""The layering the code promises: pjsua2 only behind sipcli.pjsua, which never imports the middleware."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [*sorted((ROOT / "sipcli").rglob("*.py")), *sorted((ROOT / "commands").rglob("*.py"))]
MIDDLEWARE = {"sipcli.session", "sipcli.account", "sipcli.activation", "sipcli.registration", "sipcli.chat",
              "sipcli.streams", "sipcli.application", "sipcli.bonjour", "sipcli.configuration", "sipcli.commands",
              "sipcli.message"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_scan_sees_the_product():
    assert len(PRODUCT) > 30
    assert "pjsua2" in imported_modules(ROOT / "sipcli" / "pjsua" / "call.py")


def test_only_sipcli_pjsua_imports_pjsua2():
    outside = [str(path.relative_to(ROOT)) for path in PRODUCT
               if (ROOT / "sipcli" / "pjsua") not in path.parents
               and any(name == "pjsua2" or name.startswith("pjsua2.") for name in imported_modules(path))]
    assert outside == []


def test_sipcli_pjsua_never_imports_the_middleware():
    offenders = {str(path.relative_to(ROOT)): sorted(name for name in imported_modules(path)
                                                     if name.split(".")[0] == "sipcli"
                                                     and any(name == m or name.startswith(m + ".")
                                                             for m in MIDDLEWARE))
                 for path in sorted((ROOT / "sipcli" / "pjsua").rglob("*.py"))}
    assert {path: names for path, names in offenders.items() if names} == {}
