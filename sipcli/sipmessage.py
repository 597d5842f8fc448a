"""Reading a few things out of a whole SIP message as pjsua hands it over (text, CRLF or LF line ends)."""

from __future__ import annotations

import re

__all__ = ["header", "message_body"]

_HEADER = re.compile(r"^(?P<name>[A-Za-z-]+)\s*:\s*(?P<value>.*)$", re.MULTILINE)


def header(message: str, *names: str) -> str | None:
    """The first value of any of the named headers in a SIP message (case-insensitive), or None."""
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    wanted = {name.lower() for name in names}
    for match in _HEADER.finditer(head):
        if match["name"].lower() in wanted:
            return match["value"].strip()
    return None


def message_body(message: str) -> str:
    """What follows the header section ('' without a body)."""
    parts = message.replace("\r\n", "\n").split("\n\n", 1)
    return parts[1] if len(parts) == 2 else ""
