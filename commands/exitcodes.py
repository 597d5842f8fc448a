"""Exit codes, the same in every subcommand (README: "Exit codes")."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1
    USAGE = 2
    TIMEOUT = 3
    NETWORK = 4
    CONFIG = 5
    MEDIA = 6
    INTERRUPTED = 130
