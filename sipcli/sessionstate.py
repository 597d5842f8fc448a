"""The session state machine as data: which public method each state allows, and every state transition.

``Session`` changes state only through ``next_state(state, trigger)``: a trigger is a local action (``connect``,
``accept``, ``end``, ``propose``) or what the call's driver reported (``incoming``, ``confirmed``,
``remote_end``, ``proposal``, ``proposal_done``); ``finish`` ends the session from any state. A trigger that the
current state has no entry for changes nothing (e.g. a proposal's answer after the session ended).
"""

from __future__ import annotations

__all__ = ["ALLOWED", "STATES", "TRANSITIONS", "next_state"]

STATES = ("NULL", "CALLING", "INCOMING", "ACCEPTING", "ESTABLISHED", "PROPOSING", "PROPOSED", "TERMINATING",
          "TERMINATED")

# Which state each public method may be called in (the reference's "may only be called while ..." rules).
ALLOWED = {
    "connect": {"NULL"},
    "accept": {"INCOMING"},
    "reject": {"INCOMING"},
    "hold": {"ESTABLISHED"},
    "unhold": {"ESTABLISHED"},
    "send_dtmf": {"ESTABLISHED"},
    "start_recording_audio": {"ESTABLISHED"},
    "stop_recording_audio": {"ESTABLISHED"},
    "end": {"CALLING", "INCOMING", "ACCEPTING", "ESTABLISHED", "PROPOSING", "PROPOSED"},
    "add_chat": {"ESTABLISHED"},
    "remove_chat": {"ESTABLISHED"},
    "add_audio": {"ESTABLISHED"},
    "remove_audio": {"ESTABLISHED"},
    "send_message": {"ESTABLISHED"},
    "accept_proposal": {"PROPOSED"},
    "reject_proposal": {"PROPOSED"},
}

_ENDING = {"end": "TERMINATING", "finish": "TERMINATED"}
_ESTABLISHED_ENDING = {**_ENDING, "remote_end": "TERMINATING"}  # the remote party hung up (BYE)

TRANSITIONS: dict[str, dict[str, str]] = {
    "NULL": {"connect": "CALLING", "incoming": "INCOMING", "end": "TERMINATED", "finish": "TERMINATED"},
    "CALLING": {"confirmed": "ESTABLISHED", **_ENDING},
    "INCOMING": {"accept": "ACCEPTING", **_ENDING},  # reject() is an end
    "ACCEPTING": {"confirmed": "ESTABLISHED", **_ENDING},
    "ESTABLISHED": {"propose": "PROPOSING", "proposal": "PROPOSED", **_ESTABLISHED_ENDING},
    "PROPOSING": {"proposal_done": "ESTABLISHED", **_ESTABLISHED_ENDING},  # our re-INVITE was answered
    "PROPOSED": {"proposal_done": "ESTABLISHED", **_ESTABLISHED_ENDING},  # we answered the remote re-INVITE
    "TERMINATING": {"finish": "TERMINATED"},
    "TERMINATED": {},
}


def next_state(state: str, trigger: str) -> str | None:
    """The state trigger leads to from state, or None when it does not apply there."""
    return TRANSITIONS[state].get(trigger)
