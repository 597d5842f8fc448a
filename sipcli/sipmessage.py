"""Reading a few things out of a whole SIP message as pjsua hands it over (text, CRLF or LF line ends)."""

from __future__ import annotations

import re

__all__ = ["display_name_of", "header", "message_body", "oversized_message_start"]

_HEADER = re.compile(r"^(?P<name>[A-Za-z-]+)\s*:\s*(?P<value>.*)$", re.MULTILINE)
# RFC 3261 token characters, as a request line's method is made of
_METHOD = re.compile(r"([A-Za-z0-9.!%*_+`'~-]{1,32}) \S")


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


def display_name_of(value: str | None, limit: int = 128) -> str | None:
    """The display name of a name-addr ('"Bob" <sip:bob@host>' -> 'Bob'), bounded and without control
    characters (it comes from the network), or None."""
    if not value or "<" not in value:
        return None
    name = value[:value.index("<")].strip().strip('"').strip()
    name = "".join(c for c in name if c.isprintable())[:limit]
    return name or None


def oversized_message_start(start: str) -> tuple[str | None, int | None]:
    """The method (None for a response or an unreadable start) and, when its whole header section and a
    Content-Length are there, the size in bytes of a message of which only ``start`` was received."""
    method_match = _METHOD.match(start)
    method = None if method_match is None or start.startswith("SIP/2.0 ") else method_match[1]
    normalized = start.replace("\r\n", "\n")
    if "\n\n" not in normalized:
        return method, None
    length = header(start, "Content-Length", "l")
    if length is None or not length.isdigit():
        return method, None
    head_size = start.index("\r\n\r\n") + 4 if "\r\n\r\n" in start else start.index("\n\n") + 2
    return method, head_size + int(length)
