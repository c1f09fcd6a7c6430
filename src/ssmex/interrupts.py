"""Signals during cleanup: SIGTERM treated like Ctrl+C, and no signal cutting cleanup short.

Commands that hold something that must be undone (a background port forward, a stored
Windows credential) run under termination_signals_interrupt, and undo it under
interrupts_held.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Iterator


class _TerminationSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl+C so that every cleanup runs."""


@contextlib.contextmanager
def termination_signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP on POSIX) into KeyboardInterrupt while the block runs."""
    numbers = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {}

    def interrupt(number: int, frame: object) -> None:
        raise _TerminationSignal(signal.Signals(number).name)

    for number in numbers:
        try:
            previous[number] = signal.signal(number, interrupt)
        except (ValueError, OSError):
            continue
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Ignore Ctrl+C, SIGTERM and SIGHUP while cleanup runs, so a second one cannot cut it short.

    A second Ctrl+C is common: users press it twice, and the PyInstaller bootloader of the
    single-file executable passes on the SIGINT its child already got from the console.
    """
    numbers = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {}
    for number in numbers:
        try:
            previous[number] = signal.signal(number, signal.SIG_IGN)
        except (ValueError, OSError):
            continue
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
