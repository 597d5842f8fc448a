"""The general settings: ``SIPSimpleSettings()`` (a singleton stored under the ``general`` section)."""

from __future__ import annotations

from sipcli import __version__
from sipcli.configuration import ConfigurationManager, Setting, SettingsGroup, SettingsObject, SettingsStore
from sipcli.configuration.datatypes import (
    AudioCodecList,
    IPAddress,
    NonNegativeInteger,
    Path,
    Port,
    PortRange,
    SampleRate,
    SIPAddress,
    SIPTransportList,
)
from sipcli.singleton import Singleton

__all__ = ["SIPSimpleSettings"]


class SIPSettings(SettingsGroup):
    transport_list = Setting(SIPTransportList, default=("udp", "tcp", "tls"))
    udp_port = Setting(Port, default=0)  # 0: any free port
    tcp_port = Setting(Port, default=0)
    tls_port = Setting(Port, default=0)
    # Seconds after which an accepted TCP/TLS connection is closed once no transaction uses it; 0: never.
    incoming_connection_timeout = Setting(NonNegativeInteger, default=15)


class TLSSettings(SettingsGroup):
    ca_list = Setting(Path, default=None, nillable=True)  # None: the system's CA bundle
    verify_server = Setting(bool, default=True)
    certificate = Setting(Path, default=None, nillable=True)  # PEM with our certificate and key


class RTPSettings(SettingsGroup):
    port_range = Setting(PortRange, default="50000:50500")
    # Seconds without RTP (while audio is expected) before a session's peer counts as lost; while no RTP is
    # expected (hold, chat only), the keep-alive cycle: every probe_interval, answered within probe_wait, both
    # shares of this timeout. 0: never (sipcli.liveness).
    timeout = Setting(NonNegativeInteger, default=30)


class AudioSettings(SettingsGroup):
    # Offered in this order. Three codecs every SIP phone has: each more (speex alone adds three clock rates, and a
    # telephone-event format per rate) grows the INVITE, and past 1,300 bytes pjsip sends it over TCP instead of UDP.
    codec_list = Setting(AudioCodecList, default=("G722", "PCMU", "PCMA"))
    sample_rate = Setting(SampleRate, default=16000)
    recordings_directory = Setting(Path, default="~/.local/share/sipcli/recordings")


class SIPSimpleSettings(SettingsObject, metaclass=Singleton):
    """Settings that are not per account. ``local_ip`` None means: pick the address automatically."""

    notification_id = "settings"

    user_agent = Setting(str, default=f"sipcli {__version__}")
    local_ip = Setting(IPAddress, default=None, nillable=True)
    default_account = Setting(SIPAddress, default=None, nillable=True)

    sip = SIPSettings
    tls = TLSSettings
    rtp = RTPSettings
    audio = AudioSettings

    def __init__(self, store: SettingsStore | ConfigurationManager | None = None) -> None:
        """Loaded once: every later SIPSimpleSettings() returns this object (reset_instance() loads afresh)."""
        super().__init__(("general",), store)
