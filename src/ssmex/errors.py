"""The one exception type ssmex raises for expected failures, and its exit codes."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit statuses of the ssmex command, documented in the README."""

    OK = 0
    ERROR = 1
    USAGE = 2
    CONFIGURATION = 3
    PLUGIN_UNAVAILABLE = 4
    AWS_ERROR = 5
    TARGET_NOT_CONNECTED = 6
    ACCESS_DENIED = 7
    NETWORK = 8
    PLUGIN_FAILED = 9
    HANGUP = 129
    INTERRUPTED = 130
    TERMINATED = 143


def exit_code_for_signal(number: int) -> int:
    """Return the status a shell reports for a process ended by this signal: 128 plus its number."""
    return 128 + number


class SsmexError(Exception):
    """An expected failure, reported to the user as one sentence with its fix.

    The message must never contain a token, a secret key or a password.
    """

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
