"""Rendering of an argument vector as a command line for each shell and runtime.

One function serves --debug output, -WhatIf in the PowerShell module and the real
Windows launch, so what ssmex shows is what it runs.
"""

from __future__ import annotations

import re
import shlex
from typing import Sequence

STYLES = ("sh", "msvcrt", "cmd", "powershell")

_CMD_SPECIAL = re.compile(r'([()%!^"<>&|])')


def quote_msvcrt(argument: str) -> str:
    """Quote one argument so the Microsoft C runtime parses it back unchanged.

    An argument is quoted only when it is empty or contains a space or a tab. Backslashes
    are literal unless a double quote follows them. Before a quote they are doubled and the
    quote is escaped. A run of trailing backslashes is doubled when the argument is quoted.
    """
    needs_quotes = argument == "" or " " in argument or "\t" in argument
    result = []
    backslashes = 0
    for char in argument:
        if char == "\\":
            backslashes += 1
            continue
        if char == '"':
            result.append("\\" * (backslashes * 2 + 1) + '"')
        else:
            result.append("\\" * backslashes + char)
        backslashes = 0
    if needs_quotes:
        result.append("\\" * (backslashes * 2))
        return '"' + "".join(result) + '"'
    result.append("\\" * backslashes)
    return "".join(result)


def quote_cmd(argument: str) -> str:
    """Quote one argument for a line typed at the cmd.exe prompt.

    cmd.exe reads the line before the program does, so every character it treats as
    special is escaped with a caret after the C runtime quoting.
    """
    return _CMD_SPECIAL.sub(r"^\1", quote_msvcrt(argument))


def quote_powershell(argument: str) -> str:
    """Quote one argument as a PowerShell single-quoted string.

    This is exact when PowerShell passes native arguments in the Standard mode. In Legacy
    mode and in Windows PowerShell 5.1, embedded double quotes are lost on the way.
    """
    return "'" + argument.replace("'", "''") + "'"


def render_command(argv: Sequence[str], style: str) -> str:
    """Render argv as one command line for the given style.

    Styles: "sh" (POSIX shells), "msvcrt" (the string CreateProcessW receives, split by
    the Microsoft C runtime), "cmd" (typed at the cmd.exe prompt) and "powershell".
    """
    if style == "sh":
        return " ".join(shlex.quote(argument) for argument in argv)
    if style == "msvcrt":
        return " ".join(quote_msvcrt(argument) for argument in argv)
    if style == "cmd":
        return " ".join(quote_cmd(argument) for argument in argv)
    if style == "powershell":
        if not argv:
            return ""
        return "& " + " ".join(quote_powershell(argument) for argument in argv)
    raise ValueError(f"unknown command line style {style!r}; expected one of {', '.join(STYLES)}")


def native_style(os_name: str) -> str:
    """Return the style that matches how this OS starts a child process."""
    return "msvcrt" if os_name == "nt" else "sh"
