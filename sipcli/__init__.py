"""sipcli: a SIP SIMPLE client middleware (SIPApplication, Session, accounts, notifications)."""

__version__ = "0.1.0"
