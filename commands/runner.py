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
import gc
import logging
import signal
import sys
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from sipcli.commands import route_signals
from sipcli.commands.exitcodes import ExitCode, JobEnded, JobFailed, JobResult, result_for
from sipcli.commands.options import AccountChoice

from sipcli.notification import NotificationCenter, NotificationData

__all__ = ["AccountChoice", "JobContext", "JobFailed", "JobResult", "run_job"]

log = logging.getLogger("sipcli")


class _Selection:
    notification_id = "sipcli"


@dataclass
class JobContext:
    """What a job gets: the CLI context, the application, its account, and the options it was run with."""

    cli: Any
    application: Any
    account: Any
    choice: AccountChoice
    options: dict[str, Any]


def _select_account(choice: AccountChoice, require_account: bool) -> tuple[Any, str]:
    """The Account/BonjourAccount for the job (configuration started) and how it was chosen: "adhoc" (--from),
    "configured" (--account), "default" (the configured default account), "p2p"; JobFailed for config/usage
    trouble. With nothing chosen, the default account is used, else P2P (unless require_account)."""
    from sipcli.account import Account, BonjourAccount
    from sipcli.configuration import ConfigurationManager

    manager = ConfigurationManager()
    if choice.from_address:
        try:
            return Account.create_adhoc(choice.from_address, password=choice.password,
                                        outbound_proxy=choice.proxy), "adhoc"
        except ValueError as error:
            raise JobFailed(ExitCode.USAGE, str(error)) from None
    if choice.p2p:
        return BonjourAccount(), "p2p"
    if choice.account_id:
        from sipcli.configuration.datatypes import SIPAddress

        try:
            account_id = SIPAddress(choice.account_id)
        except ValueError as error:
            raise JobFailed(ExitCode.USAGE, f"--account: {error}") from None
        if manager.get(("accounts", str(account_id))) is None:
            raise JobFailed(ExitCode.CONFIG, f"unknown account {account_id} (see `sipcli accounts list`)")
        account, how = Account(account_id), "configured"
    else:
        from sipcli.configuration.settings import SIPSimpleSettings

        default_id = SIPSimpleSettings().default_account
        if default_id is None or manager.get(("accounts", str(default_id))) is None:
            if require_account:
                raise JobFailed(ExitCode.USAGE, "no account given: use --account ID or --from USER@DOMAIN")
            return BonjourAccount(), "p2p"
        account, how = Account(default_id), "default"
    if not account.enabled:
        raise JobFailed(ExitCode.CONFIG, f"account {account.id} is disabled")
    if choice.proxy:
        account.sip.outbound_proxy = choice.proxy  # this run only: never saved
    return account, how


def run_job(cli: Any, job: Callable[[JobContext], Awaitable[JobResult]], *, choice: AccountChoice,
            engine: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
            require_account: bool = False, prepare: Callable[[Any], None] | None = None,
            engine_for: Callable[[Any], dict[str, Any]] | None = None, sessions: bool = True,
            chat: bool = False) -> NoReturn:
    """Run job against a started SIPApplication and exit with its code (see the module docstring).

    choice: from @account_options; when it names no account the configured default account is used, else P2P
    (a BonjourAccount), or a usage error with require_account. SIPCLIDidSelectAccount, the first line, names it.
    engine: EngineSettings overrides (from @engine_options, plus e.g. udp_port).
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
        result = asyncio.run(_main(cli, job, choice, engine_overrides, options or {}, require_account, prepare,
                                   engine_for, sessions, chat))
    center.remove_observer(writer)
    raise JobEnded(result)


async def _main(cli: Any, job: Callable[[JobContext], Awaitable[JobResult]], choice: AccountChoice,
                engine_overrides: dict[str, Any], options: dict[str, Any], require_account: bool,
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
            account, how = _select_account(choice, require_account)
            center.post_notification("SIPCLIDidSelectAccount", sender=_Selection(), data=NotificationData(
                account=str(account.id), mode=how))
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
