"""The human view's lines, from the records the JSON lines are made of (in-process: rendering only)."""

from __future__ import annotations

from sipcli.commands.textview import render


def record(name: str, sender: str = "session/1", **data: object) -> dict:
    return {"v": 1, "time": "2026-01-01T00:00:00Z", "name": name, "sender": sender, "data": data}


def test_meaningful_events_read_as_sentences():
    assert render(record("SIPSessionGotRingIndication")) == "ringing"
    assert render(record("SIPSessionDidStart", streams=["audio"], audio_codec="PCMU", audio_sample_rate=8000,
                         audio_srtp_active=False)) == "answered: PCMU 8 kHz, SRTP off"
    assert render(record("SIPCLIDidSendDTMF", digit="#", sent="1234#", remaining="")) == "DTMF 1234# sent"
    assert render(record("SIPSessionGotHoldRequest", originator="remote")) == "held by remote"
    assert render(record("SIPSessionDidDeliverMessage", code=200)) == "message delivered"
    assert render(record("SIPCLIDidSelectAccount", "sipcli", account="a@example.test", mode="default")) == \
        "using the default account a@example.test"


def test_call_quality_reads_compactly():
    figures = {"final": True, "codec": "PCMU", "mos": 3.39, "r_factor": 65.7, "loss_percent": 9.95,
               "packets_lost": 20, "jitter_mean_ms": 0.4, "jitter_max_ms": 0.875, "rtt_ms": None, "packets_sent": 200,
               "packets_received": 181, "packets_discarded": 0, "packets_duplicated": 0, "mos_method": "G.107"}
    line = render(record("SIPSessionGotAudioStatistics", **figures))
    assert line is not None
    assert line.startswith("final codec=PCMU mos=3.39 (R 65.7, E-model) loss=9.95% (20 packets)")
    assert "jitter=0.4/0.875 ms (mean/max) rtt=- ms sent=200 received=181" in line


def test_pager_messages_read_as_chat_lines():
    cpim = ("From: <sip:alice@example.test>\r\nTo: <sip:bob@example.test>\r\nDateTime: 2026-01-01T00:00:00Z\r\n\r\n"
            "Content-Type: text/plain\r\n\r\nhello")
    assert render(record("SIPEngineGotMessage", "engine", from_header='"Alice" <sip:alice@example.test>;tag=1',
                         content_type="text/plain", body="hi\x1b[31m")) == "Alice: hi [31m"
    assert render(record("SIPEngineGotMessage", "engine", from_header="<sip:x@example.test>",
                         content_type="message/cpim", body=cpim)) == "alice@example.test: hello"
    assert render(record("SIPEngineGotMessage", "engine", from_header="sip:x@h", content_type="image/png",
                         body={"base64": "iVBORw=="}, truncated=True)) == "x@h: [image/png, 4 bytes] [truncated]"
    assert render(record("SIPEngineGotComposingIndication", "engine", from_header="<sip:bob@h>", state="active")) == \
        "bob@h is typing..."


def test_plumbing_only_with_verbose_and_unknown_events_compact():
    assert render(record("SIPEngineDidStart", "engine", transports={})) is None
    assert render(record("SIPEngineDidStart", "engine", transports={}), verbose=1) is not None
    assert render(record("SomethingNew", "x", a=1)) == "SomethingNew (x): a=1"


def test_a_failed_session_ends_once_and_remote_text_cannot_break_the_line():
    failed: set[str] = set()
    assert render(record("SIPSessionDidFail", originator="remote", code=486, reason="Busy Here"), 0, failed) == \
        "failed: 486 Busy Here"
    assert render(record("SIPSessionDidEnd", originator="remote"), 0, failed) is None
    line = render(record("SIPSessionNewIncoming", streams=["audio"], remote_uri="sip:x@h",
                         remote_display_name="evil\n\x1b[31mname", user_agent="ua\r\nX: y"))
    assert line is not None and "\n" not in line and "\x1b" not in line and "\r" not in line


def test_summary_says_what_the_exit_code_means_and_skips_what_did_not_happen():
    line = render(record("SIPCLIDidEnd", "sipcli", outcome="ok", exit_code=0, reason="session ended",
                         duration=2.0, dtmf_sent="1234#", audio_received=True))
    assert line == ("done: ok: session ended; lasted 2.0 s; DTMF sent 1234#; audio received -> exit 0 "
                    "(the job did what was asked)")
    relayed = record("SIPSessionGotDTMF", digit="1", method="rfc2833")
    listener = render({**record("SIPCLIDemoListenerEvent", "demo/listener"), "data": relayed})
    assert listener == "[listener] DTMF 1 received"


def test_the_view_writes_one_flushed_line_per_event_shown_and_the_summary():
    """HumanView is the --format text observer (CLIContext.writer()): plumbing leaves no line, the rest one each."""
    import io

    from sipcli.commands.textview import HumanView

    from sipcli.notification import Notification, NotificationData

    class Named:
        notification_id = "session/1"

    out = io.StringIO()
    view = HumanView(out)
    view.handle_notification(Notification("SIPEngineDidStart", Named(), NotificationData(transports={})))
    view.handle_notification(Notification("SIPSessionGotRingIndication", Named(), NotificationData()))
    view.write_summary(Notification("SIPCLIDidEnd", Named(), NotificationData(outcome="timeout", exit_code=3,
                                                                              reason="no answer")))
    lines = out.getvalue().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == ["ringing", "done: timeout: no answer -> exit 3 (timeout)"]
    assert all(len(line.split("  ", 1)[0]) == len("HH:MM:SS") for line in lines)
