"""`sipcli check FILE`: run the checks a TOML file lists, each as its own short-lived `sipcli` process.

A check file::

    [defaults]                     # optional: added to every check
    options = { local-ip = "127.0.0.1" }
    timeout = 60                   # seconds a check may run before it is interrupted

    [[check]]
    name = "bob is busy"
    command = "call"               # a sipcli subcommand
    args = ["sip:bob@example.test"]
    options = { account = "alice@example.test", expect-code = 486, codec = ["PCMU", "PCMA"] }
    exit_code = 0                  # the exit code that passes [default: 0]
    input = "hello\\n"              # optional: the check's stdin (e.g. chat messages)

Option values: a string or number is ``--name VALUE``, true is ``--name``, false leaves it out, a list repeats
it. ``${VAR}`` in any string is the environment variable VAR (secrets stay out of the file).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from sipcli.commands.exitcodes import ExitCode, JobEnded, JobFailed, JobResult

__all__ = ["Check", "command", "load_checks"]

RUNNABLE = ("register", "call", "listen", "record", "chat", "demo", "neighbours", "accounts")
DEFAULT_TIMEOUT = 300.0
STOP_GRACE = 5.0  # seconds an interrupted check has to tear down (BYE, unregister) before it is killed
_MAX_LINE = 1024 * 1024
_MAX_KEPT_STDERR = 20
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_OPTION_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass
class Check:
    name: str
    command: str
    argv: list[str]  # after the subcommand: arguments and options
    exit_code: int = 0
    timeout: float = DEFAULT_TIMEOUT
    input: str | None = None


@dataclass
class Outcome:
    check: Check
    exit_code: int
    reason: str
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.exit_code == self.check.exit_code


class CheckFileError(JobFailed):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(ExitCode.CONFIG, f"check file {path}: {message}")


def _expand(value: str, path: Path, environ: dict[str, str]) -> str:
    def variable(match: re.Match) -> str:
        name = match.group(1)
        if name not in environ:
            raise CheckFileError(path, f"environment variable {name} is not set")
        return environ[name]

    return _VARIABLE.sub(variable, value)


def _option_argv(options: Any, where: str, path: Path, environ: dict[str, str]) -> list[str]:
    if not isinstance(options, dict):
        raise CheckFileError(path, f"{where}: options must be a table")
    argv: list[str] = []
    for name, value in options.items():
        if not _OPTION_NAME.match(name):
            raise CheckFileError(path, f"{where}: {name!r} is not an option name (e.g. expect-mos)")
        for item in value if isinstance(value, list) else [value]:
            if item is True:
                argv.append(f"--{name}")
            elif item is False:
                continue
            elif isinstance(item, str | int | float):
                argv += [f"--{name}", _expand(str(item), path, environ)]
            else:
                raise CheckFileError(path, f"{where}: option {name} has a value of type {type(item).__name__}")
    return argv


def _number(value: Any, where: str, path: Path, kind: type = float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise CheckFileError(path, f"{where} must be a number")
    if value < 0 or value != value:
        raise CheckFileError(path, f"{where} must not be negative")
    return kind(value)


def load_checks(path: Path, environ: dict[str, str]) -> list[Check]:
    """The checks of a TOML check file; CheckFileError (exit 5) when unreadable or invalid."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CheckFileError(path, error.strerror or str(error)) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CheckFileError(path, f"not valid TOML: {error}") from None
    defaults = document.get("defaults", {})
    entries = document.get("check")
    if not isinstance(defaults, dict) or not isinstance(entries, list) or not entries:
        raise CheckFileError(path, "expected [[check]] entries (and an optional [defaults] table)")
    default_options = _option_argv(defaults.get("options", {}), "defaults", path, environ)
    default_timeout = _number(defaults.get("timeout", DEFAULT_TIMEOUT), "defaults.timeout", path)
    checks: list[Check] = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise CheckFileError(path, f"check {number} is not a table")
        name = _expand(str(entry.get("name", f"check-{number}")), path, environ).strip() or f"check-{number}"
        where = f"check {name!r}"
        if any(check.name == name for check in checks):
            raise CheckFileError(path, f"{where}: two checks have this name")
        subcommand = entry.get("command")
        if subcommand not in RUNNABLE:
            raise CheckFileError(path, f"{where}: command must be one of {', '.join(RUNNABLE)}")
        args = entry.get("args", [])
        if not isinstance(args, list) or not all(isinstance(arg, str | int | float) for arg in args):
            raise CheckFileError(path, f"{where}: args must be a list of strings")
        argv = [_expand(str(arg), path, environ) for arg in args]
        argv += default_options + _option_argv(entry.get("options", {}), where, path, environ)
        stdin = entry.get("input")
        if stdin is not None and not isinstance(stdin, str):
            raise CheckFileError(path, f"{where}: input must be a string")
        expected = _number(entry.get("exit_code", 0), f"{where}: exit_code", path, int)
        timeout = _number(entry.get("timeout", default_timeout), f"{where}: timeout", path)
        checks.append(Check(name, subcommand, argv, expected, timeout,
                            None if stdin is None else _expand(stdin, path, environ)))
    return checks


class _Runner:
    """Runs checks as child processes, at most `parallel` at once, relaying their output prefixed by name."""

    def __init__(self, cli: Any, parallel: int) -> None:
        self.cli = cli
        self.text = cli.output_format == "text"
        self.slots = asyncio.Semaphore(parallel)
        self.children: set[asyncio.subprocess.Process] = set()
        self.writer = cli.writer()

    def argv(self, check: Check) -> list[str]:
        """`sipcli` as installed with this interpreter, independent of the cwd (-P: no script dir on sys.path)."""
        config = ["--config-dir", str(self.cli.config_dir)] if self.cli.config_dir is not None else []
        return [sys.executable, "-P", "-m", "sipcli.commands", "--format", "text" if self.text else "json",
                *config, check.command, *check.argv]

    async def run(self, check: Check) -> Outcome:
        async with self.slots:
            return await self._run(check)

    async def _run(self, check: Check) -> Outcome:
        from sipcli.commands.junit import key_event_line

        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *self.argv(check), stdin=asyncio.subprocess.PIPE if check.input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=_MAX_LINE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.children.add(process)
        outcome = Outcome(check, ExitCode.REFUSED, "no summary", 0.0)
        stderr: list[str] = []

        async def relay_stdout() -> None:
            assert process.stdout is not None
            while True:
                try:
                    raw = await process.stdout.readline()
                except ValueError:  # a line over the limit: skipped
                    continue
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if self.text:
                    self.writer.out.write_line(f"[{check.name}] {line}")
                    outcome.details.append(line[:400])
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(record, dict):
                    continue
                if record.get("name") == "SIPCLIDidEnd" and isinstance(record.get("data"), dict):
                    outcome.summary = record["data"]
                self.writer.out.write_line(json.dumps({"check": check.name, **record}, ensure_ascii=False,
                                                      separators=(",", ":")))
                key = key_event_line(record)
                if key is not None:
                    outcome.details.append(key)

        async def relay_stderr() -> None:
            assert process.stderr is not None
            while True:
                try:
                    raw = await process.stderr.readline()
                except ValueError:
                    continue
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                stderr.append(line[:400])
                del stderr[:-_MAX_KEPT_STDERR]
                print(f"[{check.name}] {line}", file=sys.stderr, flush=True)

        async def feed() -> None:
            if check.input is not None and process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.write(check.input.encode("utf-8"))
                    await process.stdin.drain()
                    process.stdin.close()

        relays = asyncio.gather(relay_stdout(), relay_stderr(), feed())
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(relays), check.timeout)
        except TimeoutError:
            timed_out = True
            await self._stop(process)
            await relays
        finally:
            if not relays.done():  # cancelled (interrupted): stop the child, then let its last lines through
                await self._stop(process)
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(relays, STOP_GRACE)
        code = await process.wait()
        self.children.discard(process)
        outcome.seconds = time.monotonic() - started
        outcome.exit_code = code if code >= 0 else ExitCode.INTERRUPTED
        outcome.reason = str(outcome.summary.get("reason") or f"exit {code}")
        if timed_out:
            outcome.exit_code = ExitCode.TIMEOUT
            outcome.reason = f"stopped after the check's timeout ({check.timeout:g} s)"
        outcome.details += [f"stderr: {line}" for line in stderr]
        self._report(outcome)
        return outcome

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        """SIGINT (the child tears down: BYE, unregister), then SIGKILL after STOP_GRACE."""
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    def _report(self, outcome: Outcome) -> None:
        from sipcli.notification import Notification, NotificationData

        class Sender:
            notification_id = f"check/{outcome.check.name}"

        data = {"check": outcome.check.name, "command": outcome.check.command, "passed": outcome.passed,
                "exit_code": outcome.exit_code, "expected_exit_code": outcome.check.exit_code,
                "reason": outcome.reason, "seconds": round(outcome.seconds, 3)}
        if "quality" in outcome.summary:
            data["quality"] = outcome.summary["quality"]
        self.writer.handle_notification(Notification("SIPCLICheckDidEnd", sender=Sender(),
                                                     data=NotificationData(**data)))

    async def interrupt(self) -> None:
        await asyncio.gather(*(self._stop(process) for process in list(self.children)))


def _table(outcomes: list[Outcome]) -> str:
    from tabulate import tabulate

    rows = []
    for outcome in outcomes:
        quality = outcome.summary.get("quality") or {}
        rows.append([outcome.check.name, outcome.check.command, "pass" if outcome.passed else "FAIL",
                     outcome.exit_code, f"{outcome.seconds:.1f}", quality.get("mos", ""),
                     quality.get("loss_percent", ""), outcome.reason[:80]])
    return tabulate(rows, headers=["check", "command", "result", "exit", "s", "MOS", "loss %", "reason"])


def _junit(path: Path, outcomes: list[Outcome]) -> None:
    from sipcli.commands.junit import TestCase, add_testcases

    cases = [TestCase(o.check.name, f"sipcli.check.{o.check.command}", o.seconds, o.exit_code,
                      o.summary.get("outcome", "failed") if not o.passed else "ok", o.reason, "\n".join(o.details),
                      expected_exit_code=o.check.exit_code) for o in outcomes]
    try:
        add_testcases(path, cases)
    except (OSError, ValueError) as error:
        print(f"sipcli check: --junit: cannot write {path}: {error}", file=sys.stderr)


async def _run_checks(cli: Any, checks: list[Check], parallel: int) -> list[Outcome]:
    from sipcli.commands import route_signals

    loop = asyncio.get_running_loop()
    runner = _Runner(cli, parallel)
    main = asyncio.current_task()
    assert main is not None
    tasks = [loop.create_task(runner.run(check)) for check in checks]

    def on_signal(signum: int) -> None:
        for task in tasks:
            task.cancel()

    with route_signals(loop, on_signal):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    if any(isinstance(result, asyncio.CancelledError) for result in results):
        await runner.interrupt()
        raise KeyboardInterrupt
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if isinstance(result, Outcome)]


@click.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--parallel", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Run this many checks at once.")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Add each check to FILE as a JUnit XML testcase (several runs can add to one file).")
@click.pass_obj
def command(cli: Any, file: Path, parallel: int, junit_file: Path | None) -> None:
    """Run the checks FILE lists (TOML; see the README), each as its own `sipcli` process; print their events
    (JSON lines with a "check" key, or "[name] " before each line with --format text), a SIPCLICheckDidEnd line per
    check and a summary table (on stderr with JSON output).

    Exit codes: 0 every check exited as it expected; otherwise the first failed check's exit code (1 when that was
    0); 5 the file is unreadable or invalid (${VAR} not set, or a check's options refused); 130 interrupted (the
    checks first)."""
    checks = load_checks(file, dict(os.environ))
    if junit_file is not None:
        from sipcli.commands.junit import Report

        Report.check_file(junit_file, "--junit")
    outcomes = asyncio.run(_run_checks(cli, checks, parallel))
    table = _table(outcomes)
    print(table, file=sys.stdout if cli.output_format == "text" else sys.stderr, flush=True)
    if junit_file is not None:
        _junit(junit_file, outcomes)
    failed = [outcome for outcome in outcomes if not outcome.passed]
    data = {"checks": len(outcomes), "passed": len(outcomes) - len(failed),
            "failed": [outcome.check.name for outcome in failed]}
    if failed:
        code = failed[0].exit_code
        exit_code = ExitCode(code) if code in iter(ExitCode) and code != 0 else ExitCode.REFUSED
        if exit_code == ExitCode.USAGE:  # the check's options are wrong: the file is, not this command line
            exit_code = ExitCode.CONFIG
        raise JobEnded(JobResult(exit_code, f"{len(failed)} of {len(outcomes)} checks failed: "
                                            f"{', '.join(data['failed'])}", data))
    raise JobEnded(JobResult(ExitCode.OK, f"{len(outcomes)} checks passed", data))

