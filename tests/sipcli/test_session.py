"""Session state rules and SIP message helpers (no engine needed)."""

import subprocess
import sys

import pytest

from sipcli.session import STATES, IllegalStateError, Session, check_transition, header, message_body

INVITE = ("INVITE sip:bob@127.0.0.1:5070 SIP/2.0\r\nFrom: \"Alice\" <sip:alice@example.test>;tag=1\r\n"
          "t: <sip:bob@example.test>\r\nUser-Agent: SIPp/3.6\r\nContent-Length: 4\r\n\r\nv=0\n")


class _Account:
    id = "alice@example.test"
    pj_account = None


def test_states_are_the_references():
    assert STATES == ("NULL", "CALLING", "INCOMING", "ACCEPTING", "ESTABLISHED", "PROPOSING", "PROPOSED",
                      "TERMINATING", "TERMINATED")


@pytest.mark.parametrize("method", ["accept", "reject", "hold", "unhold", "start_recording_audio",
                                    "stop_recording_audio"])
def test_methods_in_null_state_raise(method):
    session = Session(_Account())
    with pytest.raises(IllegalStateError, match=f"Session.{method}.. is not allowed in state NULL"):
        getattr(session, method)()


def test_send_dtmf_needs_established():
    with pytest.raises(IllegalStateError):
        Session(_Account()).send_dtmf("1")


def test_transition_table():
    check_transition("connect", "NULL")
    check_transition("end", "CALLING")
    for state in ("NULL", "TERMINATING", "TERMINATED"):
        with pytest.raises(IllegalStateError):
            check_transition("end", state)
    with pytest.raises(IllegalStateError, match="only in INCOMING"):
        check_transition("accept", "ESTABLISHED")


def test_new_session_attributes():
    session = Session(_Account())
    assert session.state == "NULL" and session.direction is None
    assert not session.has_audio and session.audio_codec is None and not session.audio_was_received
    assert not session.on_hold and session.caller_uri is None
    assert session.notification_id.startswith("session/")


def test_header_and_body():
    assert header(INVITE, "User-Agent") == "SIPp/3.6"
    assert header(INVITE, "To", "t") == "<sip:bob@example.test>"
    assert header(INVITE, "Server") is None
    assert message_body(INVITE) == "v=0\n"


def test_audio_only_start_up_does_not_import_msrp():
    """Recognising a chat offer needs sipcli.msrp.sdp only; the MSRP stack loads with the first chat stream."""
    code = "import sys, sipcli.commands.call, sipcli.commands.listen, sipcli.session; print(*sorted(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(result.stdout.split())
    assert "sipcli.msrp.sdp" in loaded
    assert not loaded & {"sipcli.chat", "sipcli.streams.chat", "sipcli.msrp.connection", "sipcli.msrp.relay",
                         "sipcli.msrp.aio"}
