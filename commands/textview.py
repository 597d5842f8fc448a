"""The human view of ``--format text``: one readable line per meaningful event, and a closing summary.

Lines are rendered from the same records as the JSON lines (sipcli.jsonlines.notification_record), so the demo's
relayed listener events read exactly like this process's own. Plumbing (application and engine start/stop, state
changes) is left out unless -v; an event this view does not know is shown compactly, never dropped.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from sipcli.jsonlines import JSONLinesWriter, notification_record

__all__ = ["EXIT_MEANINGS", "HumanView", "render"]

EXIT_MEANINGS = {
    0: "the job did what was asked",
    1: "the remote side refused",
    2: "usage error",
    3: "timeout",
    4: "network or transport failure",
    5: "configuration error",
    6: "a media expectation failed",
    130: "interrupted",
}

# Shown only with -v: how the job runs, not what happened in it.
PLUMBING = frozenset({
    "SIPApplicationWillStart", "SIPApplicationDidStart", "SIPApplicationWillEnd", "SIPApplicationDidEnd",
    "SIPEngineWillStart", "SIPEngineDidStart", "SIPEngineWillEnd", "SIPEngineDidEnd",
    "SIPAccountManagerDidAddAccount", "SIPAccountManagerDidRemoveAccount", "SIPAccountManagerDidChangeDefaultAccount",
    "SIPAccountDidActivate", "SIPAccountDidDeactivate", "CFGSettingsObjectWasCreated", "CFGSettingsObjectDidChange",
    "SIPSessionChangedState", "SIPSessionWillStart",
    "SIPSessionWillEnd", "SIPSessionWillStartRecordingAudio", "SIPSessionWillStopRecordingAudio",
    "SIPSessionDidStopRecordingAudio", "SIPSessionGotStreamUpdate",
})


def _clean(value: Any, limit: int = 200) -> str:
    """Text from the network, safe for one terminal line: no control characters, bounded."""
    text = "".join(c if c.isprintable() else " " for c in str(value))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _streams(data: dict) -> str:
    return " and ".join(data.get("streams") or []) or "no streams"


def _code(data: dict) -> str:
    return " ".join(str(part) for part in (data.get("code"), data.get("reason")) if part not in (None, "", 0))


def _oversized(data: dict) -> str:
    size = f"{data['size']} bytes" if data.get("size") else "size unknown"
    what = _clean(data.get("method") or "message", 32)
    answer = f"answered {data['code']}" if data.get("code") else "not answered"
    return (f"{what} from {_clean(data.get('peer'), 60)} over the {data.get('limit')}-byte limit ({size}): "
            f"{answer}, {data.get('action')}")


def _party(uri: Any, name: Any) -> str:
    return f'"{_clean(name, 60)}" <{_clean(uri, 120)}>' if name else _clean(uri or "unknown", 120)


def _answered(data: dict) -> str:
    parts = []
    if data.get("audio_codec"):
        rate = data.get("audio_sample_rate") or 0
        srtp = "on" if data.get("audio_srtp_active") else "off"
        parts.append(f"{data['audio_codec']} {rate / 1000:g} kHz, SRTP {srtp}")
    if "chat" in (data.get("streams") or []):
        parts.append("chat")
    return "answered: " + "; ".join(parts) if parts else "answered"


def _account(data: dict) -> str:
    mode = data.get("mode")
    if mode == "p2p":
        return "P2P mode (no account)"
    how = {"default": "the default account", "configured": "account", "adhoc": "ad hoc account"}.get(mode, "account")
    return f"using {how} {data.get('account')}"


def _registered(data: dict) -> str:
    return f"registered as {data.get('contact_uri')} for {data.get('expires')} s"


def _registration_failed(data: dict) -> str:
    retry = f", retrying in {data['delay']:g} s" if data.get("delay") else ""
    return f"registration failed: {_code(data) or 'no reason'}{retry}"


def _incoming(data: dict) -> str:
    text = f"incoming {_streams(data)} from {_party(data.get('remote_uri'), data.get('remote_display_name'))}"
    if data.get("local_uri"):
        text += f" to {_party(data.get('local_uri'), data.get('local_display_name'))}"
    if data.get("user_agent"):
        text += f" ({_clean(data['user_agent'], 80)})"
    return text


def _hold(data: dict, held: bool) -> str:
    if data.get("originator") == "remote":
        return "held by remote" if held else "resumed by remote"
    return "on hold" if held else "resumed"


def _dtmf_sent(data: dict) -> str:
    remaining = data.get("remaining")
    return f"DTMF {data.get('sent')} sent" + (f" ({remaining} to go)" if remaining else "")


def _listening(data: dict) -> str:
    uris = data.get("uris") or {}
    return "listening at " + ", ".join(str(uri) for uri in uris.values()) if uris else "listening"


def _trace(data: dict) -> str:
    first = str(data.get("data") or "").split("\r\n", 1)[0].split("\n", 1)[0]
    arrow = "->" if data.get("direction") == "outgoing" else "<-"
    peer = data.get("destination") if data.get("direction") == "outgoing" else data.get("source")
    return f"SIP {arrow} {peer} ({data.get('transport')}): {_clean(first, 120)}"


def _who(header: Any) -> str:
    """A person's name for a From header: its display name, else its URI without 'sip:'."""
    name, _, rest = str(header or "?").partition("<")
    uri = rest.split(">", 1)[0] if rest else name.split(";", 1)[0]
    return _clean((name.strip().strip('"') if rest else "") or uri.strip().split(":", 1)[-1], 120)


def _message(data: dict) -> str:
    """A pager-mode MESSAGE (SIPEngineGotMessage) as a chat line: 'alice@example.test: hello' (CPIM unwrapped)."""
    from sipcli.cpim import CPIM_TYPE, CPIMError, decode_cpim

    body = data.get("body")
    raw = base64.b64decode(body["base64"]) if isinstance(body, dict) and "base64" in body else \
        str(body or "").encode("utf-8")
    sender, content_type = _who(data.get("from_header")), str(data.get("content_type") or "").split(";")[0]
    content_type = content_type.strip().lower()
    if content_type == CPIM_TYPE:
        try:
            inner = decode_cpim(raw)
        except CPIMError:
            pass
        else:
            sender = _who(inner.sender) if inner.sender else sender
            content_type, raw = inner.content_type, inner.body
    if content_type.startswith("text/") or not content_type:
        text = _clean(raw.decode("utf-8", "replace"), 500)
    else:
        text = f"[{_clean(content_type, 80)}, {len(raw)} bytes]"
    return f"{sender}: {text}" + (" [truncated]" if data.get("truncated") else "")


def _composing(data: dict) -> str:
    return f"{_who(data.get('from_header'))} is {'typing...' if data.get('state') == 'active' else 'idle'}"


def _audio_statistics(data: dict) -> str:
    """The call-quality figures as a person reads them: codec, MOS, loss, jitter, round trip, packet counts."""

    def ms(value: Any) -> str:
        return "-" if value is None else f"{value:g}"

    return (f"{'final ' if data.get('final') else ''}codec={data.get('codec')} mos={data.get('mos')} "
            f"(R {data.get('r_factor')}, E-model) loss={data.get('loss_percent')}% ({data.get('packets_lost')} "
            f"packets) jitter={ms(data.get('jitter_mean_ms'))}/{ms(data.get('jitter_max_ms'))} ms (mean/max) "
            f"rtt={ms(data.get('rtt_ms'))} ms sent={data.get('packets_sent')} received={data.get('packets_received')} "
            f"discarded={data.get('packets_discarded')} duplicated={data.get('packets_duplicated')}")


def _summary(data: dict) -> str:
    code = data.get("exit_code")
    parts = [f"{data.get('outcome')}: {_clean(data.get('reason'), 300)}"]
    if data.get("duration") is not None:
        parts.append(f"lasted {data['duration']:.1f} s")
    if data.get("dtmf_sent"):
        parts.append(f"DTMF sent {data['dtmf_sent']}")
    if data.get("dtmf_received"):
        parts.append(f"DTMF received {data['dtmf_received']}")
    if data.get("audio_received") is True:
        parts.append("audio received")
    elif data.get("audio_received") is False:
        parts.append("no audio received")
    if data.get("refused_over_limit"):
        parts.append(f"{data['refused_over_limit']} call(s) refused over the call limit")
    if data.get("sent") is not None:
        parts.append(f"{data.get('delivered', 0)} of {data['sent']} message(s) delivered")
    meaning = EXIT_MEANINGS.get(code, "")
    line = "done: " + "; ".join(parts) + f" -> exit {code}" + (f" ({meaning})" if meaning else "")
    if isinstance(data.get("capabilities"), dict):  # sipcli engine: what the loaded engine can do, as a table
        from tabulate import tabulate

        rows = [(key, ", ".join(map(str, value)) if isinstance(value, list) else value)
                for key, value in data["capabilities"].items()]
        line += "\n" + tabulate(rows, tablefmt="plain")
    return line


RENDERERS: dict[str, Callable[[dict], str]] = {
    "SIPCLIDidSelectAccount": _account,
    "SIPCLIDemoWillStart": lambda data: f"demo: {data['does']}. Success: {data['success']}",
    "SIPCLIListenDidStart": _listening,
    "SIPAccountRegistrationDidSucceed": _registered,
    "SIPAccountRegistrationDidFail": _registration_failed,
    "SIPAccountRegistrationDidEnd": lambda data: "unregistered",
    "SIPSessionNewOutgoing": lambda data: f"calling {_clean(data['remote_uri'], 120)} ({_streams(data)})"
    if data.get("remote_uri") else f"calling ({_streams(data)})",
    "SIPSessionNewIncoming": _incoming,
    "SIPSessionGotRingIndication": lambda data: "ringing",
    "SIPEngineDidRefuseIncomingCall": lambda data: f"incoming call refused ({data.get('code')} "
                                                   f"{data.get('reason')}): {data.get('cause')}",
    "SIPEngineGotOversizedMessage": _oversized,
    "SIPSessionDidStart": _answered,
    "SIPSessionDidFail": lambda data: f"failed: {_code(data) or 'no reason'}",
    "SIPSessionDidEnd": lambda data: "hung up by remote" if data.get("originator") == "remote" else "hung up",
    "SIPSessionGotHoldRequest": lambda data: _hold(data, True),
    "SIPSessionGotUnholdRequest": lambda data: _hold(data, False),
    "SIPSessionGotDTMF": lambda data: f"DTMF {data.get('digit')} received",
    "SIPCLIDidSendDTMF": _dtmf_sent,
    "SIPSessionGotNoAudio": lambda data: "no audio received yet",
    "SIPSessionDidStartRecordingAudio": lambda data: f"recording to {data.get('file_name')}",
    "SIPSessionGotStreamProposal": lambda data: f"{data.get('proposer')} proposes to add {_streams(data)}",
    "SIPSessionAcceptedStreamProposal": lambda data: f"stream proposal accepted ({data.get('proposer')})",
    "SIPSessionRejectedStreamProposal": lambda data: f"stream proposal rejected ({data.get('proposer')}"
                                                     f"{', ' + _code(data) if _code(data) else ''})",
    "SIPSessionGotMessage": lambda data: f"message received: {_clean(data.get('content'), 500)}",
    "SIPSessionDidDeliverMessage": lambda data: "message delivered",
    "SIPSessionDidNotDeliverMessage": lambda data: f"message not delivered: {_code(data) or 'no reason'}",
    "MediaStreamDidStart": lambda data: "chat connected",
    "MediaStreamDidFail": lambda data: f"chat failed: {_clean(data.get('reason'))}",
    "MediaStreamDidEnd": lambda data: "chat ended",
    "SIPEngineGotMessage": _message,
    "SIPEngineGotComposingIndication": _composing,
    "SIPSessionGotAudioStatistics": _audio_statistics,
    "SIPEngineSIPTrace": _trace,
    "SIPCLIDidEnd": _summary,
}


def render(record: dict, verbose: int = 0, failed: set[str] | None = None, _side: str = "") -> str | None:
    """The text line for one output record (as notification_record makes it), or None when not shown. failed:
    the sessions that failed so far (kept by the caller across records): their DidEnd adds nothing."""
    name, data = record.get("name"), record.get("data") or {}
    if name == "SIPCLIDemoListenerEvent":
        inner = render(data, verbose, failed, "listener:")
        return f"[listener] {inner}" if inner is not None else None
    if name in PLUMBING and not verbose:
        return None
    if failed is not None and name in ("SIPSessionDidFail", "SIPSessionDidEnd"):
        session = _side + str(record.get("sender"))
        if name == "SIPSessionDidEnd" and session in failed and not verbose:
            return None
        if name == "SIPSessionDidFail":
            failed.add(session)
    renderer = RENDERERS.get(str(name))
    if renderer is not None:
        try:
            return renderer(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # an unexpected shape: shown compactly below
    details = ", ".join(f"{key}={_clean(value, 80)}" for key, value in data.items() if key != "timestamp")
    return f"{name} ({record.get('sender')})" + (f": {details}" if details else "")


class HumanView(JSONLinesWriter):
    """A notification observer writing the human view: ``HH:MM:SS  text``, one line per event shown, to a
    LineSink or a text stream (as JSONLinesWriter)."""

    def __init__(self, out: Any, verbose: int = 0) -> None:
        super().__init__(out)
        self.verbose = verbose
        self.failed: set[str] = set()

    def render_line(self, notification: Any) -> str | None:
        """The line for notification, or None when this view leaves it out."""
        record = notification_record(notification)
        if record["name"] == "SIPSessionNewOutgoing" and getattr(notification.sender, "remote_uri", None):
            record["data"] = {**record["data"], "remote_uri": str(notification.sender.remote_uri)}
        line = render(record, self.verbose, self.failed)
        if line is None:
            return None
        return f"{notification.timestamp.astimezone().strftime('%H:%M:%S')}  {line}"

    def handle_notification(self, notification: Any) -> None:
        line = self.render_line(notification)
        if line is not None:
            self.out.write_line(line)

    def write_summary(self, notification: Any) -> None:
        line = self.render_line(notification)
        if line is not None:
            self.out.write_final(line)
