"""CPIM (RFC 3862): ``message/cpim`` wrapping for chat messages.

``encode_cpim`` builds a message with From, To, cc, DateTime, Subject and NS-prefixed headers around an inner
MIME part; ``decode_cpim`` parses one leniently (bare LF line ends, ``charset=utf8``, DateTime with
microseconds) into a ``CPIMMessage``: a dict of CPIM headers (name -> list of values), the inner content type
and headers, and the body bytes. ``use_cpim`` decides from the peer's SDP whether to wrap at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

CPIM_TYPE = "message/cpim"
_ADDRESS = re.compile(r'\s*(?:"?(?P<name>[^"<]*?)"?\s*)?<(?P<uri>[^>]*)>\s*\Z')
_SPLIT = re.compile(rb"\r?\n\r?\n")


class CPIMError(ValueError):
    """Data that is not a CPIM message."""


@dataclass
class CPIMMessage:
    """A decoded message/cpim body."""

    headers: dict[str, list[str]]
    content_type: str
    body: bytes
    content_headers: dict[str, str] = field(default_factory=dict)

    def first(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    @property
    def sender(self) -> str | None:
        return self.first("From")

    @property
    def recipients(self) -> list[str]:
        return self.headers.get("To", [])

    @property
    def timestamp(self) -> datetime | None:
        value = self.first("DateTime")
        if value is None:
            return None
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None

    @property
    def charset(self) -> str:
        match = re.search(r'charset\s*=\s*"?([\w.:-]+)', self.content_headers.get("Content-Type", ""), re.I)
        return match.group(1) if match else "utf-8"

    def text(self) -> str:
        """The body decoded with its charset (`utf8` spellings included)."""
        try:
            return self.body.decode(self.charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def format_address(uri: str, display_name: str | None = None) -> str:
    return f'"{display_name}" <{uri}>' if display_name else f"<{uri}>"


def parse_address(value: str) -> tuple[str | None, str]:
    """(display name, URI) of a From/To/cc value; a bare URI is accepted too."""
    match = _ADDRESS.match(value)
    if not match:
        return None, value.strip()
    return (match.group("name") or None), match.group("uri")


def encode_cpim(content: bytes, content_type: str, sender: str | None = None, recipients: Iterable[str] = (),
                cc: Iterable[str] = (), timestamp: datetime | None = None, subject: str | None = None,
                namespaces: dict[str, str] | None = None, extra_headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A message/cpim body. Addresses are header values (use `format_address`); `namespaces` maps prefix to
    namespace URI (NS headers) and `extra_headers` carries prefixed headers such as ('MyNS.Option', 'value')."""
    lines = []
    if sender:
        lines.append(f"From: {sender}")
    lines += [f"To: {recipient}" for recipient in recipients]
    lines += [f"cc: {address}" for address in cc]
    if timestamp is not None:
        lines.append(f"DateTime: {timestamp.isoformat()}")
    if subject:
        lines.append(f"Subject: {subject}")
    lines += [f"NS: {prefix} <{uri}>" for prefix, uri in (namespaces or {}).items()]
    lines += [f"{name}: {value}" for name, value in extra_headers]
    head = "".join(line + "\r\n" for line in lines) + "\r\n" + f"Content-Type: {content_type}\r\n\r\n"
    return head.encode("utf-8") + content


def _headers(block: bytes) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in block.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        if line[0] in " \t" and headers:  # folded continuation
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise CPIMError(f"bad CPIM header line {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    return headers


def decode_cpim(data: bytes) -> CPIMMessage:
    """Parse a message/cpim body; line ends may be CRLF or bare LF."""
    parts = _SPLIT.split(data, 2)
    if len(parts) < 2:
        raise CPIMError("CPIM message without a header/content separation")
    headers: dict[str, list[str]] = {}
    for name, value in _headers(parts[0]):
        canonical = "cc" if name.lower() == "cc" else name
        headers.setdefault(canonical, []).append(value)
    content_headers = {name.title() if name.lower().startswith("content-") else name: value
                       for name, value in _headers(parts[1])}
    body = parts[2] if len(parts) > 2 else b""
    content_type = content_headers.get("Content-Type", "text/plain")
    return CPIMMessage(headers, content_type.split(";")[0].strip().lower(), body, content_headers)


def _matches(content_type: str, patterns: Iterable[str]) -> bool:
    content_type = content_type.split(";")[0].strip().lower()
    major = content_type.split("/")[0]
    return any(p.lower() in ("*", content_type, f"{major}/*") for p in patterns)


def use_cpim(content_type: str, accept_types: Sequence[str], accept_wrapped_types: Sequence[str] = ()) -> bool:
    """Whether to wrap `content_type` in CPIM for a peer with these SDP accept lists.

    CPIM is used when the peer accepts message/cpim and the content inside it; plain when the peer accepts the
    type directly. Raises CPIMError when neither way is accepted.
    """
    if any(t.lower() == CPIM_TYPE for t in accept_types) and _matches(content_type, accept_wrapped_types):
        return True
    if _matches(content_type, accept_types):
        return False
    raise CPIMError(f"the peer accepts neither {content_type} nor message/cpim wrapping it")
