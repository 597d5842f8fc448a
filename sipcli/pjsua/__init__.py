"""The one door to pjsua2: everything that touches the bindings lives in this package, nothing else imports them.

- ``engine``: the Endpoint owner and its pjsua thread (``Engine.run`` in, ``Engine.post`` out).
- ``call``: a pj.Call subclass and the ``CallDriver`` taking call commands (``MakeCall``, ``Answer``...).
- ``account``: a pj.Account subclass and the ``AccountDriver`` (account creation, REGISTER, incoming INVITEs).
- ``media``: codec priorities and the RTP settings of accounts.
- ``pager``: pager-mode MESSAGEs (RFC 3428): sending through pj.Buddy, the pj.Account/pj.Call callbacks.
- ``events``: the plain dataclasses this layer reports to the middleware, on the loop thread.
- ``capabilities``: what the loaded pjsua2 can do (max calls, IPv6, TLS, codecs, SDP buffer...), read from it.
- ``tls``: pjsip's TLS protocol bits and the version a cipher suite implies.

This package never imports the middleware (sessions, accounts); the middleware talks to it only through the
commands and events above. Importing it does not load pjsua2: that happens on the pjsua thread.
"""

from sipcli.pjsua.engine import Engine, EngineError, EngineSettings, EngineStoppedError, SIPCoreError

__all__ = ["Engine", "EngineError", "EngineSettings", "EngineStoppedError", "SIPCoreError", "load_bindings"]


def load_bindings() -> None:
    """Import pjsua2 now (ImportError when the wheel is missing): to fail early with one line."""
    import pjsua2  # noqa: F401
