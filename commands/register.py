"""`sipcli register`: register an account, report every registration event, stay N seconds, unregister."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from sipcli.commands.exitcodes import ExitCode, registration_failure_code
from sipcli.commands.options import account_options, engine_options, junit_option
from sipcli.commands.runner import AccountChoice, JobContext, JobResult, run_job
from sipcli.commands.sessionjob import show_progress

from sipcli.notification import NotificationCenter

__all__ = ["command"]


class _RegistrationWatcher:
    """Collects the account's registration notifications into a queue the job awaits."""

    def __init__(self, account: Any) -> None:
        self.account = account
        self.events: asyncio.Queue = asyncio.Queue()
        self.succeeded = 0

    def handle_notification(self, notification: Any) -> None:
        if notification.name == "SIPAccountRegistrationDidSucceed":
            self.succeeded += 1
        self.events.put_nowait(notification)

    async def next_event(self, deadline: float) -> Any | None:
        """The next notification, or None when the loop's clock reaches deadline first.

        asyncio.timeout, not wait_for: on Python 3.11, wait_for returns the result and drops a cancellation (the
        job's SIGINT teardown) that comes as the notification arrives, and the job would run on to its end."""
        try:
            async with asyncio.timeout_at(deadline):
                return await self.events.get()
        except TimeoutError:
            return None

    def __enter__(self) -> _RegistrationWatcher:
        for name in ("SIPAccountRegistrationDidSucceed", "SIPAccountRegistrationDidFail",
                     "SIPAccountRegistrationDidEnd"):
            NotificationCenter().add_observer(self, name=name, sender=self.account)
        return self

    def __exit__(self, *exc_info: object) -> None:
        NotificationCenter().purge_observer(self)


def _failure_result(notification: Any) -> JobResult:
    registration = notification.data.registration
    failure = registration.last_failure
    code = getattr(notification.data, "code", None)
    exit_code = registration_failure_code(failure.kind if failure else None)
    reason = f"registration failed: {code} {notification.data.reason}" if code else \
        f"registration failed: {notification.data.reason}"
    return JobResult(exit_code, reason, {"code": code} if code else {})


async def _register(context: JobContext, watcher: _RegistrationWatcher) -> JobResult:
    from sipcli.registration import RegistrationFailed, deactivate, registration_of

    options = context.options
    account = context.account
    timeout, duration = options["timeout"], options["duration"]
    with watcher:
        if registration_of(account) is None:
            return JobResult(ExitCode.CONFIG, f"account {account.id} did not activate")
        loop = asyncio.get_running_loop()
        registration = registration_of(account)
        progress = show_progress(lambda elapsed: f"no response from the registrar {registration.route or ''} "
                                                 f"yet, {elapsed:.0f} s (gives up after {timeout:g} s)")
        try:  # until registered, or a failure with no other route to try (a timeout is reported as one)
            await registration.wait_ready(timeout)
        except RegistrationFailed as error:
            failed = error.failure
            code = failed.code if failed.kind == "response" or failed.kind == "timeout" else None
            reason = f"registration failed: {code} {failed.reason}" if code else f"registration failed: {failed.reason}"
            return JobResult(registration_failure_code(failed.kind), reason, {"code": code} if code else {})
        finally:
            if progress is not None:
                progress.cancel()
        failure: Any = None
        if duration > 0:
            end = loop.time() + duration
            while (event := await watcher.next_event(end)) is not None:
                if event.name == "SIPAccountRegistrationDidFail":
                    failure = event
                elif event.name == "SIPAccountRegistrationDidSucceed":
                    failure = None
        stopped = deactivate(account)
        if stopped is not None:
            await stopped
        if failure is not None:
            return _failure_result(failure)
        return JobResult(ExitCode.OK, "registered and unregistered", {"registrations": watcher.succeeded})


@click.command("register")
@account_options(p2p=False)
@engine_options
@click.option("--expires", type=click.IntRange(1, 86400), default=None,
              help="Requested registration lifetime in seconds [default: the account's register_interval].")
@click.option("--duration", type=click.FloatRange(0), default=0, show_default=True,
              help="Stay registered this many seconds (refreshing), then unregister; 0: unregister at once.")
@click.option("--local-ip", metavar="IP", help="Bind SIP to this address [default: all].")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Local SIP port; 0: any free port.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=30, show_default=True,
              help="Give up (exit 3) when the registration is not confirmed within this many seconds.")
@junit_option
@click.pass_obj
def command(cli: Any, choice: AccountChoice, engine: dict[str, Any], expires: int | None, duration: float,
            local_ip: str | None, port: int, timeout: float) -> None:
    """Register with the registrar, print every event as a JSON line, then unregister.

    Exit codes: 0 registered and unregistered; 1 refused (e.g. 401 with the password given, 403, 404); 3 no
    response within --timeout; 4 transport failure (connection refused, TLS verification); 5 configuration error;
    130 interrupted (after unregistering).
    """
    engine = dict(engine)
    if local_ip:
        engine["local_ip"] = local_ip
    transport = _proxy_transport(choice.proxy)
    if transport is not None:
        # Only the transports this job can use: every extra listener costs startup time.
        engine.update({name + "_port": (port if name in ("udp", transport) else None)
                       for name in ("udp", "tcp", "tls")})
    elif port:
        engine.update(udp_port=port, tcp_port=port)

    watchers: list[_RegistrationWatcher] = []

    async def job(context: JobContext) -> JobResult:
        return await _register(context, watchers[0])

    def prepare(account: Any) -> None:
        """Before activation: watch the account (the first REGISTER may be answered before the job runs), and
        registration on, with the requested lifetime, for this run only (never saved)."""
        watchers.append(_RegistrationWatcher(account).__enter__())
        account.registration.enabled = True
        if expires is not None:
            account.sip.register_interval = expires

    run_job(cli, job, choice=choice, engine=engine, require_account=True, prepare=prepare,
            options={"timeout": timeout, "duration": duration}, sessions=False)


def _proxy_transport(proxy: str | None) -> str | None:
    if not proxy:
        return None
    from sipcli.uri import SIPURI

    return SIPURI.parse(proxy).transport
