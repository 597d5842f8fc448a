"""Exit codes, the same in every subcommand (README: "Exit codes"), and the one mapping from a run's end to its code.

A command ends a run by returning, by raising ``JobFailed`` (any code, e.g. from inside a job) or
``click.UsageError`` (exit 2, through ``fail_usage``); a session job's outcome travels as ``JobEnded``. The group
(``sipcli.commands.cli``) turns each of these, and any other exception, into a ``JobResult`` with
``result_for``: that result is the ``SIPCLIDidEnd`` line and the exit code.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NoReturn

__all__ = ["ExitCode", "JobEnded", "JobFailed", "JobResult", "fail_usage", "registration_failure_code",
           "result_for"]

log = logging.getLogger("sipcli")


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1
    USAGE = 2
    TIMEOUT = 3
    NETWORK = 4
    CONFIG = 5
    MEDIA = 6
    INTERRUPTED = 130

    @property
    def outcome(self) -> str:
        """The word in SIPCLIDidEnd's ``outcome``: ok, refused, usage, timeout, network, config, media, interrupted."""
        return self.name.lower()


@dataclass
class JobResult:
    """How a run ended: the exit code, a short reason, and extra data for the SIPCLIDidEnd line."""

    exit_code: ExitCode
    reason: str
    data: dict[str, Any] = field(default_factory=dict)


class JobFailed(Exception):
    """Raised by a job or a command (or by setup) to end the run with this exit code and reason."""

    def __init__(self, exit_code: ExitCode, reason: str, **data: Any) -> None:
        super().__init__(reason)
        self.result = JobResult(exit_code, reason, data)


class JobEnded(Exception):
    """A session job's outcome, carried from run_job to the group that prints SIPCLIDidEnd and exits."""

    def __init__(self, result: JobResult) -> None:
        super().__init__(result.reason)
        self.result = result


def fail_usage(message: str) -> NoReturn:
    """A usage error: one line on stderr, SIPCLIDidEnd with exit_code 2, exit 2."""
    import click

    raise click.UsageError(message)


_REGISTRATION_FAILURES = {"response": ExitCode.REFUSED, "timeout": ExitCode.TIMEOUT, "transport": ExitCode.NETWORK}


def registration_failure_code(kind: str | None) -> ExitCode:
    """The exit code for a SIPAccountRegistrationDidFail of this ``kind`` (response, timeout, transport)."""
    return _REGISTRATION_FAILURES.get(kind or "transport", ExitCode.NETWORK)


def result_for(error: BaseException) -> JobResult:
    """The result of a run that ended with error (anything a command, a job or setup may raise)."""
    import click

    from sipcli.configuration import ConfigurationError

    if isinstance(error, JobFailed | JobEnded):
        return error.result
    if isinstance(error, click.UsageError):
        return JobResult(ExitCode.USAGE, error.format_message())
    if isinstance(error, ConfigurationError):
        return JobResult(ExitCode.CONFIG, str(error))
    if isinstance(error, click.Abort | KeyboardInterrupt):
        return JobResult(ExitCode.INTERRUPTED, "interrupted")
    if isinstance(error, click.ClickException):
        return JobResult(ExitCode.USAGE, error.format_message())
    missing = getattr(sys.modules.get("sipcli.pjsua.capabilities"), "MissingCapabilityError", None)
    if missing is not None and isinstance(error, missing):  # asked for what the installed engine cannot do
        return JobResult(ExitCode.USAGE, str(error), {"missing_capability": error.capability})
    engine_error = _engine_error_type()
    if engine_error is not None and isinstance(error, engine_error):
        return JobResult(ExitCode.NETWORK, f"SIP engine: {error}")
    log.debug("job failed", exc_info=error)
    return JobResult(ExitCode.NETWORK if isinstance(error, OSError) else ExitCode.REFUSED,
                     f"{type(error).__name__}: {error}")


def _engine_error_type() -> type | None:
    """EngineError when the engine module is loaded (only session commands load it)."""
    engine = sys.modules.get("sipcli.pjsua.engine")
    return getattr(engine, "EngineError", None)
