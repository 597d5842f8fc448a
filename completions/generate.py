"""Regenerate the shell completion scripts from the click app: ``python completions/generate.py``.

``--check`` exits 1 (and names the files) when a committed script differs from what click generates now.
The scripts call back into ``sipcli`` (``_SIPCLI_COMPLETE=...``) to complete, so they list subcommands and
options as the installed version has them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sipcli.commands.completion import script

HERE = Path(__file__).resolve().parent
SCRIPTS = {"bash": "sipcli.bash", "zsh": "_sipcli", "fish": "sipcli.fish"}


def render(shell: str) -> str:
    """The completion script click generates for shell (what `sipcli completion SHELL` prints)."""
    return script(shell)


def _content(script: str) -> list[str]:
    """The lines that matter: click releases differ in blank lines only."""
    return [line.rstrip() for line in script.splitlines() if line.strip()]


def run(check: bool) -> int:
    stale = []
    for shell, filename in SCRIPTS.items():
        path = HERE / filename
        text = render(shell)
        if check:
            if not path.exists() or _content(path.read_text(encoding="utf-8")) != _content(text):
                stale.append(filename)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale completion scripts: {', '.join(stale)}; run: python completions/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(check="--check" in sys.argv[1:]))
