"""Sans-IO SDES (RFC 4568): the ``a=crypto`` lines of an SDP's audio sections.

Two uses: widening a re-offer so that a peer answering with another tag than the one offered still names our key
(``offer_key_under_tags``), and telling why an SDES answer cannot be used (``answer_problem``) when the engine
refused it, for the failure report.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sipcli.sessiondescription import MediaSection, SessionDescription

__all__ = ["Crypto", "answer_problem", "offer_key_under_tags"]

# master key + salt length in bytes of the suites a peer may answer (RFC 4568, RFC 6188, RFC 7714)
KEY_LENGTHS = {
    "AES_CM_128_HMAC_SHA1_80": 30, "AES_CM_128_HMAC_SHA1_32": 30,
    "AES_192_CM_HMAC_SHA1_80": 38, "AES_192_CM_HMAC_SHA1_32": 38,
    "AES_256_CM_HMAC_SHA1_80": 46, "AES_256_CM_HMAC_SHA1_32": 46,
    "AEAD_AES_128_GCM": 28, "AEAD_AES_256_GCM": 44,
}


@dataclass(frozen=True)
class Crypto:
    """One ``a=crypto:<tag> <suite> <key-params> [<session-params>]`` value."""

    tag: int
    suite: str
    key_params: str
    session_params: str = ""

    @classmethod
    def parse(cls, value: str) -> Crypto:
        tag, _, rest = value.strip().partition(" ")
        suite, _, rest = rest.strip().partition(" ")
        key_params, _, session_params = rest.strip().partition(" ")
        if not tag.isdigit() or not tag.isascii() or len(tag) > 9 or not suite or not key_params:
            raise ValueError(f"malformed crypto attribute: {value[:80]!r}")
        return cls(int(tag), suite, key_params, session_params.strip())

    @property
    def key(self) -> bytes | None:
        """The first inline master key + salt, decoded (None: not an inline key or not base64)."""
        method, _, key_info = self.key_params.partition(":")
        if method.lower() != "inline":
            return None
        try:
            return base64.b64decode(key_info.split("|", 1)[0], validate=True)
        except (binascii.Error, ValueError):
            return None

    def with_tag(self, tag: int) -> Crypto:
        return Crypto(tag, self.suite, self.key_params, self.session_params)

    def __str__(self) -> str:
        return " ".join(part for part in (str(self.tag), self.suite, self.key_params, self.session_params) if part)


def _cryptos(section: MediaSection) -> list[Crypto]:
    """The section's crypto lines; ValueError when one is malformed."""
    return [Crypto.parse(value) for value in section.attributes("crypto")]


def offer_key_under_tags(sdp: str, tags: int) -> str:
    """Our offer, where an audio section offering exactly one crypto line (the key in use, which a re-offer
    repeats) offers it under every tag 1..tags: whichever of them the answer names, it names that key.

    A peer that answers a re-offer with the tag it chose before (or any other tag) instead of the offered one
    breaks RFC 4568 (section 5.1.2), but its intent is clear when the suite is the one offered."""
    if tags <= 1:
        return sdp
    try:
        description = SessionDescription.parse(sdp)
        changed = False
        for section in description.media:
            if section.kind != "audio" or not section.active:
                continue
            cryptos = _cryptos(section)
            if len(cryptos) != 1:
                continue
            (crypto,) = cryptos
            lines = [f"a=crypto:{crypto.with_tag(tag)}"
                     for tag in [crypto.tag, *(t for t in range(1, tags + 1) if t != crypto.tag)]]
            at = next(i for i, line in enumerate(section.lines) if line.startswith("a=crypto:"))
            section.lines[at:at + 1] = lines
            changed = True
    except ValueError:
        return sdp  # not ours to repair: the offer goes out as the engine wrote it
    return str(description) if changed else sdp


def answer_problem(offer: str, answer: str) -> str | None:
    """Why the SDES answer to offer cannot be used (the first audio section of each), or None when it can."""
    try:
        offered = next((m for m in SessionDescription.parse(offer).media if m.kind == "audio"), None)
        answered = next((m for m in SessionDescription.parse(answer).media if m.kind == "audio"), None)
    except ValueError as error:
        return str(error)
    if offered is None or answered is None or not answered.active:
        return None
    try:
        ours, theirs = _cryptos(offered), _cryptos(answered)
    except ValueError as error:
        return f"the answer has a {error}"
    if not theirs:
        return "the answer has no a=crypto line" if "SAVP" in answered.proto and ours else None
    if len(theirs) > 1:
        return f"the answer has {len(theirs)} a=crypto lines (one expected)"
    (crypto,) = theirs
    by_tag = {item.tag: item for item in ours}
    if crypto.tag not in by_tag:
        offered_tags = ", ".join(str(tag) for tag in sorted(by_tag)) or "none"
        return f"the answer's crypto tag {crypto.tag} was not offered (offered tags: {offered_tags})"
    if by_tag[crypto.tag].suite != crypto.suite:
        return (f"the answer's crypto suite {crypto.suite} is not the one offered with tag {crypto.tag} "
                f"({by_tag[crypto.tag].suite})")
    key = crypto.key
    if key is None:
        return "the answer's SRTP key is not an inline base64 key"
    expected = KEY_LENGTHS.get(crypto.suite)
    if expected is not None and len(key) != expected:
        return f"the answer's SRTP key has {len(key)} bytes ({crypto.suite} needs {expected})"
    return None
