"""The `sipcli` command: ``main`` is the process around one run of the click group (``sipcli.commands.cli``).

``main`` owns what belongs to the process: SIGINT/SIGTERM from its first instruction on (exit 130 with a
SIPCLIDidEnd line), stdout (a private copy of fd 1 written by a thread that never blocks the job; fd 1 itself
points at stderr so nothing a library prints can corrupt the JSON lines) and the final ``os._exit``. Everything
else runs in the group, which click's CliRunner can drive in-process.
"""

import contextlib
import os
import signal
import sys

__all__ = ["main", "route_signals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_DRAIN_SECONDS = 2.0  # how long the last lines may wait for a slow reader at exit


class _Process:
    """What the signal handler needs: the run's state (its output and format), once it exists."""

    state = None  # the CLIContext, once stdout is set up
    pending: int | None = None  # a signal that came before the output existed
    route = None  # (loop, callback) while a job's event loop handles signals


def _on_signal(signum: int, frame: object) -> None:
    """SIGINT/SIGTERM: during a job, the job's teardown (see route_signals); otherwise the run ends here."""
    route = _Process.route
    if route is not None:
        loop, callback = route
        loop.call_soon_threadsafe(callback, signum)
    elif _Process.state is None:
        _Process.pending = signum  # main ends the run as soon as the output exists
    elif not _Process.state.finished:
        _interrupted()


def _interrupted() -> None:
    """Nothing is running that needs teardown: the summary says interrupted, exit 130."""
    from sipcli.commands.exitcodes import ExitCode, JobResult  # loaded with options, before state was set

    _Process.state.finish(JobResult(ExitCode.INTERRUPTED, "interrupted"))
    _exit(ExitCode.INTERRUPTED)


def _exit(code: int) -> None:
    out = _Process.state.out if _Process.state is not None else None
    if out is not None:
        out.drain(_DRAIN_SECONDS)
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    import logging

    logging.shutdown()
    # Everything is stopped and flushed: skip interpreter teardown (module cleanup is most of a short run's exit).
    os._exit(code)


def _take_stdout() -> int | None:
    """A private copy of fd 1 for the output (None when stdout is closed); fd 1 then points at stderr.

    sys.stdout is then the output sink's stream (help, tables) until a job starts (run_job makes it stderr)."""
    try:
        fd = os.dup(1)
    except OSError:
        fd = None
    try:
        os.dup2(2, 1)
    except OSError:  # stderr closed too: keep fd 1 taken, so no file opened later becomes "stdout"
        null = os.open(os.devnull, os.O_WRONLY)
        if null != 1:
            os.dup2(null, 1)
            os.close(null)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives until exit
    return fd


class route_signals:
    """While a job's event loop runs: SIGINT/SIGTERM call callback(signum) on that loop.

    Under main, the process handler stays installed throughout (no moment with the default action) and a wakeup
    fd read by the loop makes sure the loop notices a signal that another thread received. In-process (click's
    CliRunner), it uses the loop's own signal handlers.
    """

    def __init__(self, loop: object, callback: object) -> None:
        self._loop = loop
        self._callback = callback
        self._sockets: tuple | None = None
        self._old_wakeup = -1

    def __enter__(self) -> "route_signals":
        loop = self._loop
        if signal.getsignal(signal.SIGTERM) is not _on_signal:
            for signum in _SIGNALS:
                loop.add_signal_handler(signum, self._callback, signum)
            return self
        import socket

        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._sockets = (reader, writer)
        loop.add_reader(reader.fileno(), self._drain)
        self._old_wakeup = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        _Process.route = (loop, self._callback)
        return self

    def _drain(self) -> None:
        try:
            while self._sockets[0].recv(64):
                pass
        except BlockingIOError:
            pass

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if self._sockets is None:
            for signum in _SIGNALS:
                loop.remove_signal_handler(signum)
            return
        _Process.route = None
        signal.set_wakeup_fd(self._old_wakeup)
        loop.remove_reader(self._sockets[0].fileno())
        for sock in self._sockets:
            sock.close()


def _raise_file_limit() -> None:
    """Open-file limit up to the hard one (at most 65,536): a listener's engine takes thousands of connections, and
    pjsip stops accepting for good after 50 accept() failures in a row (EMFILE at the default soft 1,024)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main() -> None:
    """The console script: run the group once and exit with its code (130 on SIGINT/SIGTERM at any moment)."""
    for signum in _SIGNALS:
        signal.signal(signum, _on_signal)
    from sipcli.commands.options import CLIContext

    from sipcli.jsonlines import LineSink

    _raise_file_limit()
    sink = LineSink(_take_stdout(), warn=sys.stderr)
    sys.stdout = sink.stream()
    state = CLIContext(out=sink)
    _Process.state = state
    if _Process.pending is not None:
        _interrupted()
    from sipcli.commands.cli import cli

    try:
        cli.main(prog_name="sipcli", state=state)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
    else:
        code = 0
    _exit(code)
