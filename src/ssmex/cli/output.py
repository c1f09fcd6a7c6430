"""Console output: colour on terminals, NO_COLOR, and logging set up with redaction."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from ssmex.redact import RedactingFilter, redact

_RED = "\033[31m"
_YELLOW = "\033[33m"
_RESET = "\033[0m"


def colour_enabled(stream: TextIO) -> bool:
    """Use colour only on a terminal, and never when NO_COLOR is set to anything."""
    if "NO_COLOR" in os.environ:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _ConsoleFormatter(logging.Formatter):
    def __init__(self, debug: bool, colour: bool) -> None:
        super().__init__()
        self.debug = debug
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if self.debug:
            text = f"{record.relativeCreated / 1000:6.3f} {record.levelname} {record.name}: {message}"
        elif record.levelno >= logging.ERROR:
            text = f"error: {message}"
        elif record.levelno >= logging.WARNING:
            text = f"warning: {message}"
        else:
            text = message
        if self.colour and record.levelno >= logging.WARNING:
            text = (_RED if record.levelno >= logging.ERROR else _YELLOW) + text + _RESET
        return text


def configure_logging(debug: bool, stream: TextIO | None = None) -> None:
    """Send ssmex's log (and botocore's under --debug) to stderr, redacted."""
    stream = stream or sys.stderr
    colour = colour_enabled(stream)
    if colour and os.name == "nt":
        import colorama

        colorama.just_fix_windows_console()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(_ConsoleFormatter(debug, colour))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("ssmex").setLevel(logging.DEBUG if debug else logging.WARNING)
    for noisy in ("botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.ERROR)


def print_error(message: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    text = "error: " + redact(message)
    if colour_enabled(stream):
        text = _RED + text + _RESET
    print(text, file=stream)
