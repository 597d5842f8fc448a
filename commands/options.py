"""Options and click types shared by the subcommands; each value is parsed once, by its type.

The global options (accepted before or after the subcommand) and the run's CLIContext; the account, engine, media
and call options of the session subcommands; finite numbers and account id completion. A bad value is a click
usage error (one line on stderr, exit 2) raised while the command line is parsed, before anything starts.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import click
from click.shell_completion import CompletionItem
from sipcli.commands.exitcodes import ExitCode, JobResult, fail_usage

__all__ = ["DTMF", "RELAY", "SIP_URI", "SIP_URI_NO_USER", "TARGET", "AccountChoice", "AccountId", "CLIContext",
           "Expectations", "FiniteFloatRange", "MediaSetup", "Percent", "Target", "account_options", "call_options",
           "engine_options", "expectation_options", "global_options", "harden", "junit_option", "media_options",
           "proposal_options", "writable_dir", "writable_file"]


class _Summary:
    notification_id = "sipcli"


@dataclass
class CLIContext:
    """Global options, shared by every subcommand through click's context object, and the output they go to."""

    config_dir: Path | None = None
    output_format: str = "json"
    verbose: int = 0
    log_file: Path | None = None
    out: Any = field(default=None, repr=False)  # a LineSink (main) or a text stream (in-process runs)
    finished: bool = False  # the summary is written: the run's exit code is decided
    command_path: str = "sipcli"  # the subcommand that runs, for messages
    junit: Any = field(default=None, repr=False)  # a sipcli.commands.junit.Report with --junit

    def writer(self) -> Any:
        """A JSONLinesWriter (or the human view, commands/textview.py, for --format text) on this run's output."""
        out = self.out if self.out is not None else sys.stdout
        if self.output_format == "text":
            from sipcli.commands.textview import HumanView

            return HumanView(out, self.verbose)
        from sipcli.jsonlines import JSONLinesWriter

        return JSONLinesWriter(out)

    def finish(self, result: JobResult) -> None:
        """Write the run's last line: SIPCLIDidEnd with outcome, exit_code, reason and the result's data."""
        from sipcli.notification import Notification, NotificationData

        self.finished = True
        code = result.exit_code
        data = {"outcome": code.outcome if isinstance(code, ExitCode) else str(code), "exit_code": int(code),
                "reason": result.reason, **result.data}
        summary = Notification("SIPCLIDidEnd", sender=_Summary(), data=NotificationData(**data))
        self.writer().write_summary(summary)
        if self.junit is not None:
            self.junit.finish(summary, self.command_path)

    def configure_logging(self) -> None:
        """Diagnostics to stderr, or to --log-file (opened now: a bad path is a usage error before any traffic)."""
        handler: logging.Handler
        if self.log_file is not None:
            try:
                handler = logging.FileHandler(self.log_file)
            except OSError as error:
                fail_usage(f"--log-file: cannot open {self.log_file}: {error.strerror or error}")
        else:
            handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        for old in root.handlers:
            old.close()
        root.handlers[:] = [handler]
        verbose = self.verbose
        root.setLevel(logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG)


def _context(ctx: click.Context) -> CLIContext:
    return ctx.find_root().ensure_object(CLIContext)


def _set_config_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _context(ctx).config_dir = value


def _set_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        _context(ctx).output_format = value


def _set_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value:
        state = _context(ctx)
        state.verbose += value
        state.configure_logging()


def _set_log_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        state = _context(ctx)
        state.log_file = value
        state.configure_logging()


def global_options(*, show_defaults: bool) -> list[click.Option]:
    """--config-dir, --format, -v, --log-file: on the group (with defaults shown) and on every subcommand, so they
    work before or after it (``sipcli call URI --format text -v``). Each updates the run's CLIContext."""
    return [
        click.Option(["--config-dir"], type=click.Path(file_okay=False, path_type=Path), default=None,
                     expose_value=False, callback=_set_config_dir, is_eager=True,
                     help="Configuration directory [default: $SIPCLI_CONFIG_DIR or ~/.config/sipcli]."),
        click.Option(["--format", "output_format"], type=click.Choice(["json", "text"]), default=None,
                     expose_value=False, callback=_set_format, is_eager=True,
                     help="Event output: JSON lines, or a human view" + (" [default: json]." if show_defaults
                                                                         else ".")),
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_set_verbose, is_eager=True,
                     help="More diagnostics on stderr (-vv: pjsip logs too)."),
        click.Option(["--log-file"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     expose_value=False, callback=_set_log_file, is_eager=True,
                     help="Write diagnostics to this file instead of stderr."),
    ]


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan and infinities (a ``--timeout nan`` would wait forever or never)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class AccountId(click.ParamType):
    """An account id (user@domain), completed from the configured accounts."""

    name = "account"

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        return [CompletionItem(account_id) for account_id in _configured_account_ids(ctx)
                if account_id.startswith(incomplete)]


def _configured_account_ids(ctx: click.Context) -> list[str]:
    """The account ids in the configuration (none when it cannot be read: completion never fails loudly)."""
    from sipcli.configuration import ConfigurationError
    from sipcli.configuration.storage import FileStorage, default_config_dir

    config_dir = _context(ctx).config_dir or default_config_dir()
    try:
        accounts = FileStorage(config_dir).load().get("accounts")
    except ConfigurationError:
        return []
    return sorted(accounts) if isinstance(accounts, dict) else []


def harden(command: click.Command, options: Callable[[], list[click.Option]]) -> click.Command:
    """Give command (and, for a group, each of its subcommands) the global options, finite float ranges and
    account id completion for ``--account``. Idempotent."""
    if getattr(command, "_sipcli_hardened", False):
        return command
    names = {name for param in command.params for name in getattr(param, "opts", [])}
    command.params.extend(option for option in options() if not names.intersection(option.opts))
    for param in command.params:
        if isinstance(param.type, click.FloatRange) and not isinstance(param.type, FiniteFloatRange):
            old = param.type
            param.type = FiniteFloatRange(old.min, old.max, min_open=old.min_open, max_open=old.max_open,
                                          clamp=old.clamp)
        elif param.type is click.FLOAT:
            param.type = FiniteFloatRange()
        if isinstance(param, click.Option) and "--account" in param.opts and param.type is click.STRING:
            param.type = AccountId()
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            harden(sub, options)
    command._sipcli_hardened = True  # type: ignore[attr-defined]
    return command


def _set_junit(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        from sipcli.commands.junit import Report

        _context(ctx).junit = Report(value)


def junit_option(command: Callable) -> Callable:
    """--junit FILE: add this run as a JUnit XML testcase to FILE (made if missing; safe with parallel runs)."""
    return click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, expose_value=False,
                        callback=_set_junit, is_eager=True, metavar="FILE",
                        help="Add this run to FILE as a JUnit XML testcase (failure: the exit reason and key "
                             "events); several runs can add to one file.")(command)


class Percent(FiniteFloatRange):
    """A percentage, 0 to 100, written with or without '%' (``2%``, ``2.5``)."""

    name = "percent"

    def __init__(self) -> None:
        super().__init__(0, 100)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            value = value.strip().removesuffix("%")
        return super().convert(value, param, ctx)


@dataclass(frozen=True)
class Expectations:
    """What a session must achieve for exit 0 (else exit 6, the failed one named in SIPCLIDidEnd)."""

    mos: float | None = None
    max_loss: float | None = None  # percent of the packets expected
    max_jitter: float | None = None  # ms, the largest RFC 3550 interarrival jitter
    codec: str | None = None
    code: int | None = None  # the final SIP response of the INVITE
    duration_min: float | None = None  # seconds

    @property
    def need_quality(self) -> bool:
        return self.mos is not None or self.max_loss is not None or self.max_jitter is not None


def expectation_options(command: Callable) -> Callable:
    """--expect-mos, --expect-max-loss, --expect-max-jitter, --expect-codec, --expect-code, --expect-duration-min and
    --stats-interval; the command gets ``expectations`` (Expectations) and ``stats_interval``."""

    @click.option("--stats-interval", type=FiniteFloatRange(0, min_open=True), default=None, metavar="SECONDS",
                  help="Report the audio figures (SIPSessionGotAudioStatistics) every SECONDS during a session "
                       "[default: once, at its end].")
    @click.option("--expect-duration-min", type=FiniteFloatRange(0), default=None, metavar="SECONDS",
                  help="Exit 6 unless the session lasted at least this long.")
    @click.option("--expect-code", type=click.IntRange(100, 699), default=None, metavar="CODE",
                  help="Exit 0 only when the INVITE's final response is CODE (e.g. 486 for a busy check; an "
                       "answered session is 200), else 6.")
    @click.option("--expect-codec", metavar="NAME", default=None,
                  help="Exit 6 unless the audio used this codec (e.g. PCMU).")
    @click.option("--expect-max-jitter", type=FiniteFloatRange(0), default=None, metavar="MS",
                  help="Exit 6 when the received audio's interarrival jitter (RFC 3550) exceeded MS milliseconds.")
    @click.option("--expect-max-loss", type=Percent(), default=None, metavar="PERCENT",
                  help="Exit 6 when more than PERCENT of the audio packets were lost (e.g. 2%).")
    @click.option("--expect-mos", type=FiniteFloatRange(1, 5), default=None, metavar="MOS",
                  help="Exit 6 when the estimated MOS of the received audio (ITU-T G.107 E-model) is below MOS.")
    @functools.wraps(command)
    def wrapper(*args: Any, expect_mos: float | None, expect_max_loss: float | None,
                expect_max_jitter: float | None, expect_codec: str | None, expect_code: int | None,
                expect_duration_min: float | None, **kwargs: Any) -> Any:
        expectations = Expectations(expect_mos, expect_max_loss, expect_max_jitter, expect_codec, expect_code,
                                    expect_duration_min)
        return command(*args, expectations=expectations, **kwargs)

    return wrapper


DTMF_DIGITS = "0123456789*#ABCD"
READY_TIMEOUT = 30.0  # seconds an account may take to be activated (and registered) before a job starts
NEIGHBOUR_TIMEOUT = 5.0  # seconds to find a bonjour:NAME neighbour when --timeout is not given


@dataclass
class AccountChoice:
    """What the account options asked for: a configured account, an ad hoc one, or none (P2P)."""

    account_id: str | None = None
    from_address: str | None = None
    password: str | None = field(default=None, repr=False)
    proxy: str | None = None
    p2p: bool = False  # --p2p: P2P even when a default account is configured

    @property
    def is_explicit(self) -> bool:
        """An account was named (--account or --from): not P2P, whatever the configuration says."""
        return self.account_id is not None or self.from_address is not None


def _sip_uri(text: str) -> Any:
    """A SIPURI from ``sip:``/``sips:`` URIs or a bare ``user@host[:port]`` (given ``sip:``); ValueError if bad."""
    from sipcli.uri import SIPURI

    return SIPURI.parse(text if text.lower().startswith(("sip:", "sips:")) else f"sip:{text}")


class SIPURIType(click.ParamType):
    """A SIP URI (``sip:``, ``sips:`` or bare ``user@host``), as a sipcli.uri.SIPURI."""

    name = "uri"

    def __init__(self, user: bool = True) -> None:
        self.user = user

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            uri = _sip_uri(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)
        if not self.user and uri.user:
            self.fail(f"a proxy URI has no user part: {value!r}", param, ctx)
        return uri


class Target(NamedTuple):
    """What a session command calls: a SIP URI, or (P2P) the neighbour advertised as ``bonjour:NAME``."""

    text: str
    uri: Any = None
    neighbour: str | None = None


class TargetType(click.ParamType):
    """The URI argument of call, chat and record: a SIP URI or ``bonjour:NAME``."""

    name = "uri"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Target):
            return value
        if value.lower().startswith("bonjour:"):
            name = value[len("bonjour:"):].strip()
            if not name:
                self.fail("bonjour:NAME needs a neighbour name (see `sipcli neighbours`)", param, ctx)
            return Target(value, neighbour=name)
        try:
            return Target(value, uri=_sip_uri(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class DTMFType(click.ParamType):
    """DTMF digits (0-9, *, #, A-D), upper-cased."""

    name = "digits"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        digits = str(value).upper()
        if any(digit not in DTMF_DIGITS for digit in digits):
            self.fail(f"not DTMF digits: {value!r} (0-9, *, #, A-D)", param, ctx)
        return digits


class RelayType(click.ParamType):
    """An MSRP relay: ``msrp[s]://host[:port];tcp`` or ``sip:host[:port][;transport=tls]``, as the account's
    msrp.relay setting (``host:port;transport=tcp|tls``)."""

    name = "uri"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from sipcli.chat import relay_uri  # MSRP is loaded only when a relay is given

        try:
            uri = relay_uri(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)
        return f"{uri.host}:{uri.port};transport={'tls' if uri.use_tls else 'tcp'}"


class WritableFileType(click.ParamType):
    """A file this run will write (e.g. a recording): it can be created or opened for writing, now."""

    name = "file"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        path = os.fspath(value)
        existed = os.path.exists(path)
        if os.path.isdir(path):
            self.fail(f"{path}: is a directory", param, ctx)
        try:
            with open(path, "ab"):
                pass
        except OSError as error:
            self.fail(f"{path}: cannot be written: {error.strerror or error}", param, ctx)
        if not existed:
            os.unlink(path)
        return path


class WritableDirType(click.ParamType):
    """A directory this run writes files into: created if missing, and writable."""

    name = "directory"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        path = os.fspath(value)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:
            self.fail(f"{path}: cannot be created: {error.strerror or error}", param, ctx)
        if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
            self.fail(f"{path}: not a writable directory", param, ctx)
        return path


SIP_URI = SIPURIType()
SIP_URI_NO_USER = SIPURIType(user=False)
TARGET = TargetType()
DTMF = DTMFType()
RELAY = RelayType()
writable_file = WritableFileType()
writable_dir = WritableDirType()


def _read_password(password_env: str | None, password_stdin: bool) -> str | None:
    if password_env and password_stdin:
        raise click.UsageError("--password-env and --password-stdin are exclusive")
    if password_env:
        if password_env not in os.environ:
            raise click.UsageError(f"environment variable {password_env} (from --password-env) is not set")
        return os.environ[password_env]
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return None


def account_options(command: Callable | None = None, *, p2p: bool = True) -> Any:
    """--account / --from / --password-env / --password-stdin / --proxy, and --p2p unless p2p=False; the command
    gets ``choice``. With none of them a session command uses the configured default account, or P2P when there
    is none."""
    if command is None:
        return functools.partial(account_options, p2p=p2p)

    @click.option("--proxy", type=SIP_URI_NO_USER, metavar="URI",
                  help="Outbound proxy, e.g. sip:127.0.0.1:5060;transport=tcp.")
    @click.option("--password-stdin", is_flag=True, help="Read the password for --from from the first stdin line.")
    @click.option("--password-env", metavar="VAR", help="Take the password for --from from this variable.")
    @click.option("--from", "from_address", metavar="USER@DOMAIN", help="Use an ad hoc account (not saved).")
    @click.option("--account", "account_id", metavar="ID",
                  help="Use this account from the configuration [default: the default account"
                       + (", else P2P]." if p2p else "]."))
    @functools.wraps(command)
    def wrapper(*args: Any, account_id: str | None, from_address: str | None, password_env: str | None,
                password_stdin: bool, proxy: Any, p2p: bool = False, **kwargs: Any) -> Any:
        if account_id and from_address:
            raise click.UsageError("--account and --from are exclusive")
        if p2p and (account_id or from_address or proxy):
            raise click.UsageError("--p2p goes with none of --account, --from, --proxy")
        if (password_env or password_stdin) and not from_address:
            raise click.UsageError("--password-env/--password-stdin go with --from")
        if from_address:
            from sipcli.configuration.datatypes import SIPAddress

            try:
                SIPAddress(from_address)
            except ValueError as error:
                raise click.UsageError(f"--from: {error}") from None
        choice = AccountChoice(account_id, from_address, _read_password(password_env, password_stdin),
                               str(proxy) if proxy is not None else None, p2p)
        return command(*args, choice=choice, **kwargs)

    if p2p:
        wrapper = click.option("--p2p", is_flag=True,
                               help="No account: P2P mode, even when a default account is configured.")(wrapper)
    return wrapper


def engine_options(command: Callable) -> Callable:
    """--trace (SIPEngineSIPTrace lines), --tls-ca FILE and --nameserver IP[:PORT]; the command gets ``engine``."""

    @click.option("--nameserver", "nameservers", metavar="IP[:PORT]", multiple=True,
                  help="DNS server for RFC 3263 lookups (repeatable) [default: the system's].")
    @click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="CA certificates (PEM) that verify TLS servers [default: setting tls.ca_list, else system].")
    @click.option("--trace", is_flag=True, help="Print every SIP message as a SIPEngineSIPTrace line.")
    @functools.wraps(command)
    def wrapper(*args: Any, trace: bool, tls_ca: str | None, nameservers: tuple[str, ...], **kwargs: Any) -> Any:
        options: dict[str, Any] = {"trace_sip": trace}
        if tls_ca:
            options["tls_ca_list"] = os.path.abspath(tls_ca)
        if nameservers:
            options["dns_nameservers"] = list(nameservers)
        return command(*args, engine=options, **kwargs)

    return wrapper


class MediaSetup(NamedTuple):
    """This run's codec order, SRTP mode and RTP port range (applied in memory, never saved)."""

    codecs: tuple[str, ...] = ()
    srtp: str | None = None
    rtp_ports: tuple[int, int] | None = None


def _port_range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    low, sep, high = value.partition("-")
    try:
        first, last = int(low), int(high if sep else low)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a port range (e.g. 40000-40099)") from None
    if not 1024 <= first <= last <= 65535 or last - first < 1:
        raise click.BadParameter(f"{value!r}: need FIRST-LAST with 1024 <= FIRST < LAST <= 65535")
    return first, last


def media_options(command: Callable) -> Callable:
    """--play, --expect-dtmf, --expect-audio, --duration, --srtp, --codec, --port, --local-ip, --rtp-ports,
    --rtp-timeout."""

    @click.option("--rtp-timeout", type=click.IntRange(0), default=None, metavar="SECONDS",
                  help="End a session (exit 4) whose peer is lost: no RTP for this long while audio is expected, "
                       "or, while none is (hold, chat only), a SIP keep-alive failed or unanswered within this "
                       "long; 0: never [default: setting rtp.timeout, 30].")
    @click.option("--rtp-ports", metavar="FIRST-LAST", default=None,
                  help="Take RTP/RTCP ports from this range only (e.g. 40000-40099, for firewalls) [default: any].")
    @click.option("--local-ip", metavar="IP", help="Bind SIP and RTP to this address [default: all].")
    @click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
                  help="Local SIP port (UDP and TCP); 0: any free port.")
    @click.option("--codec", "codecs", multiple=True, metavar="NAME",
                  help="Offer/accept only these codecs, in this order (repeatable), among those the engine has "
                       "(e.g. G722, PCMU, PCMA, speex, GSM, iLBC, L16) [default: setting audio.codec_list].")
    @click.option("--srtp", type=click.Choice(["disabled", "optional", "mandatory"]), default=None,
                  help="SRTP (SDES) for the audio [default: the account's rtp.srtp_encryption].")
    @click.option("--duration", type=click.FloatRange(0), default=None,
                  help="Hang up this many seconds after the session starts (0: at once) [default: never].")
    @click.option("--expect-audio", is_flag=True, help="Exit 6 unless RTP audio was received.")
    @click.option("--expect-dtmf", type=DTMF, metavar="DIGITS", default="",
                  help="Exit 6 unless these DTMF digits were received, in this order.")
    @click.option("--play", type=click.Path(exists=True, dir_okay=False, readable=True), default=None,
                  help="Play this WAV into the call, in a loop (any rate, mono or stereo, 8/16-bit).")
    @functools.wraps(command)
    def wrapper(*args: Any, local_ip: str | None, port: int, codecs: tuple[str, ...], srtp: str | None,
                rtp_ports: str | None, rtp_timeout: int | None, **kwargs: Any) -> Any:
        if rtp_timeout is not None:
            from sipcli.session import SessionManager

            SessionManager().rtp_timeout = rtp_timeout
        engine = dict(kwargs.pop("engine", {}))
        engine.update(udp_port=port, tcp_port=port, tls_port=None)
        if local_ip:
            engine["local_ip"] = local_ip
        return command(*args, engine=engine, media=MediaSetup(codecs, srtp, _port_range(rtp_ports)), **kwargs)

    return wrapper


def proposal_options(command: Callable) -> Callable:
    """--proposals and --proposal-timeout: how a session answers the remote party adding streams mid-call."""
    command = click.option("--proposal-timeout", type=click.FloatRange(0, min_open=True), default=None,
                           help="Reject a stream proposal not decided within this many seconds [default: 30].")(command)
    return click.option("--proposals", type=click.Choice(["accept", "reject", "ignore"]), default="accept",
                        show_default=True,
                        help="When the remote party proposes to add a stream (audio, or chat with --chat): accept "
                             "it, reject it (a 200 OK that declines it), or leave it undecided until "
                             "--proposal-timeout.")(command)


def call_options(command: Any) -> Any:
    """The scripting options of `call` that `record` and `chat --audio` share."""
    for decorator in reversed([
        click.option("--dtmf", type=DTMF, metavar="DIGITS", default="",
                     help="Send these DTMF digits once the call starts (each is reported as it is sent)."),
        click.option("--dtmf-delay", type=click.FloatRange(0), default=1.0, show_default=True,
                     help="Seconds after the call starts before sending --dtmf."),
        click.option("--dtmf-info", is_flag=True, help="Send DTMF as SIP INFO instead of RFC 4733 events."),
        click.option("--timeout", type=click.FloatRange(0, min_open=True), default=None,
                     help="Stop ringing (CANCEL, exit 3) when not answered within this many seconds [default: "
                          "ring until answered or refused; a peer that sends no response at all fails after "
                          "32 s (SIP timer B, exit 3)]."),
        click.option("--hold-after", type=click.FloatRange(0), default=None,
                     help="Put the call on hold this many seconds after it starts."),
        click.option("--unhold-after", type=click.FloatRange(0), default=None,
                     help="Take the call off hold this many seconds after it starts."),
    ]):
        command = decorator(command)
    return command
