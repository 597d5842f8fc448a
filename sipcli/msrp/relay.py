"""RFC 4976 relay client, sans-IO: AUTH with digest, Use-Path, Expires and re-AUTH before expiry.

``RelayClient`` builds AUTH frames and digests the responses (401 challenge, 423 with Min-Expires, 200 with
Use-Path and Expires). ``sipcli.msrp.aio.connect_relay`` drives it over a connection to the relay.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sipcli.digest import foreign_realm_reason
from sipcli.msrp.message import FrameError, MSRPFrame, new_transaction_id
from sipcli.msrp.uri import MSRPURI, URIError

REFRESH_FRACTION = 0.8  # re-AUTH after this share of the granted time
_PARAM = re.compile(r'(\w+)\s*=\s*("([^"]*)"|[^\s,]+)')


class RelayError(Exception):
    """The relay refused us: `code` and `comment` from its response."""

    def __init__(self, code: int, comment: str | None) -> None:
        super().__init__(f"MSRP relay answered {code} {comment or ''}".strip())
        self.code = code
        self.comment = comment


@dataclass(slots=True)
class RelayAuthenticated:
    use_path: list[MSRPURI]
    expires: int | None


@dataclass(slots=True)
class RelayAuthFailed:
    code: int
    comment: str | None


def digest_params(header: str) -> dict[str, str]:
    """Parameters of a `Digest k=v, k="v"` header value."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        raise FrameError(f"not a Digest challenge: {header!r}")
    return {m.group(1).lower(): m.group(3) if m.group(3) is not None else m.group(2) for m in _PARAM.finditer(rest)}


def digest_authorization(challenge: dict[str, str], username: str, password: str, uri: str, method: str = "AUTH",
                         cnonce: str | None = None, nc: int = 1) -> str:
    """An Authorization value answering an RFC 2617 MD5 challenge (qop=auth when offered)."""
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    qops = [q.strip() for q in challenge.get("qop", "").split(",")]
    if "auth" in qops:
        cnonce = cnonce or secrets.token_hex(8)
        response = md5(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={nc:08x}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{md5(f"{ha1}:{nonce}:{ha2}")}"')
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    parts.append("algorithm=MD5")
    return "Digest " + ", ".join(parts)


class RelayClient:
    """Sans-IO AUTH exchange with one relay."""

    def __init__(self, relay_uri: MSRPURI, local_uri: MSRPURI, username: str, password: str,
                 expires: int | None = None, clock: Callable[[], float] = time.monotonic,
                 realm: str | None = None) -> None:
        """realm: the only realm the password is given to (None: any, for a relay the caller trusts)."""
        self.relay_uri = relay_uri
        self.local_uri = local_uri
        self.username = username
        self.realm = realm
        self._password = password
        self.expires = expires
        self._clock = clock
        self._challenge: dict[str, str] | None = None
        self._nc = 0
        self._answered_challenge = False
        self._pending: set[str] = set()
        self.use_path: list[MSRPURI] | None = None
        self.refresh_at: float | None = None

    def owns(self, response: MSRPFrame) -> bool:
        return response.transaction_id in self._pending

    def auth_request(self) -> MSRPFrame:
        """The next AUTH: with credentials once a challenge is known (a re-AUTH reuses it with the next nc)."""
        tid = new_transaction_id()
        headers = {"To-Path": str(self.relay_uri), "From-Path": str(self.local_uri)}
        if self._challenge is not None:
            self._nc += 1
            headers["Authorization"] = digest_authorization(self._challenge, self.username, self._password,
                                                            str(self.relay_uri), nc=self._nc)
        if self.expires is not None:
            headers["Expires"] = str(self.expires)
        self._pending.add(tid)
        return MSRPFrame(tid, "AUTH", headers=headers)

    def handle_response(self, response: MSRPFrame) -> MSRPFrame | RelayAuthenticated | RelayAuthFailed:
        """A response to one of our AUTHs: the next AUTH to send, or the outcome."""
        self._pending.discard(response.transaction_id)
        code = response.code or 0
        if code == 401:
            try:
                challenge = digest_params(response.headers.get("WWW-Authenticate", ""))
            except FrameError:
                return RelayAuthFailed(code, response.comment)
            foreign = foreign_realm_reason([challenge.get("realm", "")], self.realm)
            if foreign is not None:
                return RelayAuthFailed(code, foreign)
            stale = challenge.get("stale", "").lower() == "true"
            if self._answered_challenge and not stale:
                return RelayAuthFailed(code, response.comment)  # our credentials were refused
            self._challenge, self._nc, self._answered_challenge = challenge, 0, True
            return self.auth_request()
        if code == 423 and response.headers.get("Min-Expires", "").isdigit():
            self.expires = int(response.headers["Min-Expires"])
            return self.auth_request()
        if code != 200:
            return RelayAuthFailed(code, response.comment)
        try:
            use_path = response.use_path
            expires = response.expires
        except (URIError, FrameError):
            return RelayAuthFailed(code, "Bad Use-Path or Expires in the relay's answer")
        self._answered_challenge = False
        self.use_path = use_path
        if expires is not None:
            self.refresh_at = self._clock() + expires * REFRESH_FRACTION
        return RelayAuthenticated(use_path, expires)
