"""File names built from what the network says: every remote value is reduced to a safe token first.

A SIP peer chooses its From user, host and display name; none of them may pick a directory, a hidden file or a
device. ``safe_token`` keeps letters, digits, ``-``, ``_`` and inner dots (transliterating what it can to ASCII),
so a name built from tokens and a fixed suffix stays in the directory it is joined to.
"""

from __future__ import annotations

import os
import re
import unicodedata
from urllib.parse import unquote

__all__ = ["MAX_TOKEN_LENGTH", "path_in", "safe_token"]

MAX_TOKEN_LENGTH = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_token(value: object, default: str = "unknown", max_length: int = MAX_TOKEN_LENGTH) -> str:
    """value as a token that can only name a plain file: [A-Za-z0-9._-], no leading dot or dash, at most
    max_length characters; default when nothing is left (None, '', '..', '/')."""
    text = unquote(str(value)) if value is not None else ""  # %2e%2e%2f is judged as the '../' it means
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE.sub("_", text).strip("._-")
    text = re.sub(r"\.{2,}", ".", text)[:max_length].rstrip("._-")
    return text or default


def path_in(directory: str | os.PathLike, name: str) -> str:
    """directory/name, refusing (ValueError) a name that would leave directory."""
    base = os.path.abspath(directory)
    path = os.path.abspath(os.path.join(base, name))
    if os.path.dirname(path) != base:
        raise ValueError(f"{name!r} is not a plain file name")
    return path
