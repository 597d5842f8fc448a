"""Plumbing shared by every session subcommand: account options, running one job, signals, exit codes.

A subcommand declares ``@account_options`` (and usually ``@engine_options``), builds a job coroutine
``async def job(context: JobContext) -> JobResult`` and calls ``run_job(...)``, which never returns: it starts a
SIPApplication with the output writer, runs the job, tears down on SIGINT/SIGTERM (the job sees CancelledError,
then the application unregisters and stops: exit 130) and raises ``JobEnded`` with the result, which the group
prints as the last line (``SIPCLIDidEnd``) and exits with.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import sys
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import click
from sipcli.commands import route_signals
from sipcli.commands.exitcodes import ExitCode, JobEnded, JobFailed, JobResult, fail_usage, result_for

from sipcli.notification import NotificationCenter

__all__ = ["AccountChoice", "JobContext", "JobFailed", "JobResult", "account_options", "engine_options",
           "fail_usage", "parse_target", "run_job"]

log = logging.getLogger("sipcli")

@dataclass
class AccountChoice:
    """What the account options asked for: a configured account, an ad hoc one, or none (P2P)."""

    account_id: str | None = None
    from_address: str | None = None
    password: str | None = field(default=None, repr=False)
    proxy: str | None = None

    @property
    def is_p2p(self) -> bool:
        return self.account_id is None and self.from_address is None


@dataclass
class JobContext:
    """What a job gets: the CLI context, the application, its account, and the options it was run with."""

    cli: Any
    application: Any
    account: Any
    choice: AccountChoice
    options: dict[str, Any]


def parse_target(uri: str) -> Any:
    """The SIPURI a session command targets (``user@host`` gets ``sip:``); a malformed one is a usage error."""
    from sipcli.uri import SIPURI

    text = uri if uri.lower().startswith(("sip:", "sips:")) else f"sip:{uri}"
    try:
        return SIPURI.parse(text)
    except ValueError as error:
        fail_usage(f"URI: {error}")


def _read_password(password_env: str | None, password_stdin: bool) -> str | None:
    if password_env and password_stdin:
        fail_usage("--password-env and --password-stdin are exclusive")
    if password_env:
        if password_env not in os.environ:
            fail_usage(f"environment variable {password_env} (from --password-env) is not set")
        return os.environ[password_env]
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return None


def account_options(command: Callable) -> Callable:
    """Add --account / --from / --password-env / --password-stdin / --proxy; the command gets ``choice``."""

    @click.option("--proxy", metavar="URI", help="Outbound proxy, e.g. sip:127.0.0.1:5060;transport=tcp.")
    @click.option("--password-stdin", is_flag=True, help="Read the password for --from from the first stdin line.")
    @click.option("--password-env", metavar="VAR", help="Take the password for --from from this variable.")
    @click.option("--from", "from_address", metavar="USER@DOMAIN", help="Use an ad hoc account (not saved).")
    @click.option("--account", "account_id", metavar="ID", help="Use this account from the configuration.")
    @functools.wraps(command)
    def wrapper(*args: Any, account_id: str | None, from_address: str | None, password_env: str | None,
                password_stdin: bool, proxy: str | None, **kwargs: Any) -> Any:
        if account_id and from_address:
            fail_usage("--account and --from are exclusive")
        if (password_env or password_stdin) and not from_address:
            fail_usage("--password-env/--password-stdin go with --from")
        if from_address:
            from sipcli.configuration.datatypes import SIPAddress

            try:
                SIPAddress(from_address)
            except ValueError as error:
                fail_usage(f"--from: {error}")
        if proxy:
            from sipcli.uri import SIPURI

            try:
                uri = SIPURI.parse(proxy if proxy.lower().startswith(("sip:", "sips:")) else f"sip:{proxy}")
            except ValueError as error:
                fail_usage(f"--proxy: {error}")
            if uri.user:
                fail_usage(f"--proxy: a proxy URI has no user part: {proxy!r}")
            proxy = str(uri)
        choice = AccountChoice(account_id, from_address, _read_password(password_env, password_stdin), proxy)
        return command(*args, choice=choice, **kwargs)

    return wrapper


def engine_options(command: Callable) -> Callable:
    """Add --trace (SIPEngineSIPTrace lines), --tls-ca FILE and --nameserver IP[:PORT]; the command gets them."""

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


def _select_account(choice: AccountChoice, use_default: bool) -> Any:
    """The Account/BonjourAccount for the job (configuration started); JobFailed for config/usage trouble."""
    from sipcli.account import Account, AccountManager, BonjourAccount
    from sipcli.configuration import ConfigurationManager

    manager = ConfigurationManager()
    if choice.from_address:
        try:
            return Account.create_adhoc(choice.from_address, password=choice.password,
                                        outbound_proxy=choice.proxy)
        except ValueError as error:
            raise JobFailed(ExitCode.USAGE, str(error)) from None
    if choice.account_id:
        from sipcli.configuration.datatypes import SIPAddress

        try:
            account_id = SIPAddress(choice.account_id)
        except ValueError as error:
            raise JobFailed(ExitCode.USAGE, f"--account: {error}") from None
        if manager.get(("accounts", str(account_id))) is None:
            raise JobFailed(ExitCode.CONFIG, f"unknown account {account_id} (see `sipcli accounts list`)")
        account = Account(account_id)
    elif use_default:
        accounts = AccountManager()
        accounts.start()
        account = accounts.default_account
        if account is None or isinstance(account, BonjourAccount):
            raise JobFailed(ExitCode.USAGE, "no account given: use --account ID or --from USER@DOMAIN")
    else:
        return BonjourAccount()
    if not account.enabled:
        raise JobFailed(ExitCode.CONFIG, f"account {account.id} is disabled")
    if choice.proxy:
        account.sip.outbound_proxy = choice.proxy  # this run only: never saved
    return account


def run_job(cli: Any, job: Callable[[JobContext], Awaitable[JobResult]], *, choice: AccountChoice,
            engine: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
            use_default_account: bool = False, prepare: Callable[[Any], None] | None = None,
            engine_for: Callable[[Any], dict[str, Any]] | None = None, sessions: bool = True,
            chat: bool = False) -> NoReturn:
    """Run job against a started SIPApplication and exit with its code (see the module docstring).

    choice: from @account_options (P2P BonjourAccount when empty, unless use_default_account picks the
    configured default). engine: EngineSettings overrides (from @engine_options, plus e.g. udp_port).
    prepare(account) runs before the application starts (and activates the account): in-memory tweaks.
    engine_for(account), after it, returns EngineSettings overrides that depend on the account or the settings.
    sessions=False: the job places and takes no calls (see SIPApplication.start). chat: the application starts
    ChatSupport (MSRP) too; left out, a process with audio sessions only never loads MSRP.
    """
    writer = cli.writer()
    # From here on stdout carries only the writer's lines: whatever a library prints goes to stderr.
    sys.stdout.flush()
    sys.stdout = sys.stderr
    center = NotificationCenter()
    center.add_observer(writer)
    engine_overrides = dict(engine or {})
    verbose = getattr(cli, "verbose", 0)
    engine_overrides.setdefault("log_level", 5 if verbose >= 2 else 2 if verbose == 1 else 0)
    try:
        # The bindings load on first use: fail here with one line rather than in the engine thread.
        from sipcli.pjsua import load_bindings

        load_bindings()
    except ImportError as error:
        result = JobResult(ExitCode.NETWORK, f"the SIP engine is not available (pjsua2-python: {error}); it needs "
                                             "Linux x86_64 and CPython 3.10-3.12")
    else:
        # What is loaded by now (modules, classes, the pjsua2 bindings) lives until exit: keep it out of every
        # collection, the full one before libDestroy included (it took 10-20 ms with these ~28,000 objects).
        gc.freeze()
        result = asyncio.run(_main(cli, job, choice, engine_overrides, options or {}, use_default_account, prepare,
                                   engine_for, sessions, chat))
    center.remove_observer(writer)
    raise JobEnded(result)


async def _main(cli: Any, job: Callable[[JobContext], Awaitable[JobResult]], choice: AccountChoice,
                engine_overrides: dict[str, Any], options: dict[str, Any], use_default: bool,
                prepare: Callable[[Any], None] | None, engine_for: Callable[[Any], dict[str, Any]] | None,
                sessions: bool, chat: bool) -> JobResult:
    from sipcli.application import SIPApplication
    from sipcli.configuration import ConfigurationManager, FileStorage
    from sipcli.configuration.settings import SIPSimpleSettings

    loop = asyncio.get_running_loop()
    application = SIPApplication()
    job_task: asyncio.Task | None = None
    interrupted = False

    def on_signal(signum: int) -> None:
        nonlocal interrupted
        if interrupted:
            return
        interrupted = True
        log.info("%s: tearing down", signal.Signals(signum).name)
        if job_task is not None and not job_task.done():
            job_task.cancel()
        else:
            application.stop()

    engine_failure: list[str] = []

    def on_engine_failure(notification: Any) -> None:  # the pjsua thread died: end the job, exit 4
        engine_failure.append(notification.data.reason)
        if job_task is not None and not job_task.done():
            job_task.cancel()

    engine_watch = types.SimpleNamespace(handle_notification=on_engine_failure)
    center = NotificationCenter()
    center.add_observer(engine_watch, name="SIPEngineDidFail")
    result: JobResult
    with route_signals(loop, on_signal):
        try:
            storage = FileStorage(cli.config_dir)
            ConfigurationManager().start(storage)
            SIPSimpleSettings()  # invalid general settings fail here (exit 5), before an account is looked up
            account = _select_account(choice, use_default)
            if prepare is not None:
                prepare(account)
            if engine_for is not None:
                engine_overrides = {**engine_overrides, **engine_for(account)}
            await application.start(storage, engine_options=engine_overrides, accounts=[str(account.id)],
                                    sessions=sessions, chat=chat)
            if interrupted:
                raise asyncio.CancelledError
            job_task = loop.create_task(job(JobContext(cli, application, account, choice, options)))
            result = await job_task
        except asyncio.CancelledError:
            result = JobResult(ExitCode.INTERRUPTED, "interrupted")
        except Exception as error:
            result = result_for(error)
        center.discard_observer(engine_watch, name="SIPEngineDidFail")
        if engine_failure and job_task is not None and not interrupted:  # a failed start raised its own error
            result = JobResult(ExitCode.NETWORK, f"SIP engine: {engine_failure[0]}")
        with contextlib.suppress(Exception):
            await application.stop()
    if interrupted and result.exit_code != ExitCode.INTERRUPTED:
        result = JobResult(ExitCode.INTERRUPTED, "interrupted", result.data)
    return result
