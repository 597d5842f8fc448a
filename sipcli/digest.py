"""Which realm an account's digest credentials answer, and why a challenge from another realm went unanswered.

An account answers digest challenges only for its own realm (setting ``auth.realm``, by default the domain of
its id): a proxy, callee or relay that challenges for another realm would otherwise get a response computed
from the password, which it can attack offline. A challenge for another realm fails the request instead; the
functions here say why, in words fit for a log line (the remote realm is quoted, bounded and printable).
"""

from __future__ import annotations

import re

__all__ = ["challenge_realms", "foreign_realm_reason", "realm_matches"]

_CHALLENGE_HEADER = re.compile(r"^(?:www|proxy)-authenticate[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_REALM = re.compile(r'(?:^|[\s,])realm[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', re.IGNORECASE)
_MAX_SHOWN = 64


def challenge_realms(message: str) -> list[str]:
    """The realms of every WWW-Authenticate / Proxy-Authenticate header in a SIP response."""
    head = message.split("\r\n\r\n", 1)[0].replace("\r\n", "\n")
    realms = []
    for value in _CHALLENGE_HEADER.findall(head):
        match = _REALM.search(value)
        if match is not None:
            quoted, token = match.groups()
            realms.append(re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token)
    return realms


def realm_matches(challenged: str, realm: str | None) -> bool:
    """Whether credentials for realm may answer a challenge for challenged (None: any realm, never a default)."""
    return realm is None or challenged.casefold() == realm.casefold()


def _shown(text: str) -> str:
    printable = "".join(c if c.isprintable() else "?" for c in text[:_MAX_SHOWN])
    return f'"{printable}{"..." if len(text) > _MAX_SHOWN else ""}"'


def foreign_realm_reason(challenged: list[str] | str, realm: str | None) -> str | None:
    """Why a 401/407 was not answered: the challenged realms (a list, or the SIP response itself) are all
    foreign to realm; None when one of them is the account's (or there was no challenge)."""
    realms = challenge_realms(challenged) if isinstance(challenged, str) else challenged
    if not realms or any(realm_matches(r, realm) for r in realms):
        return None
    shown = ", ".join(_shown(r) for r in realms[:3])
    return (f"challenged for realm {shown}, not answered: the account's credentials are for realm {_shown(realm or '')}"
            " (setting auth.realm)")
