"""Signals during cleanup: SIGTERM treated like Ctrl+C, and no signal cutting cleanup short.

Commands that hold something that must be undone (a background port forward, a stored
Windows credential) run under termination_signals_interrupt, and undo it under
interrupts_held.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any, Iterable, Iterator


@contextlib.contextmanager
def handlers_installed(numbers: Iterable[int], handler: Any) -> Iterator[None]:
    """Install handler for each signal while the block runs, then restore the previous ones.

    A signal that cannot be changed here (not the main thread, or not on this OS) is
    left alone.
    """
    previous = {}
    for number in numbers:
        try:
            previous[number] = signal.signal(number, handler)
        except (ValueError, OSError):
            continue
    try:
        yield
    finally:
        for number, old_handler in previous.items():
            signal.signal(number, old_handler)


class _TerminationSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl+C so that every cleanup runs."""


@contextlib.contextmanager
def termination_signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP on POSIX) into KeyboardInterrupt while the block runs."""
    numbers = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])

    def interrupt(number: int, frame: object) -> None:
        raise _TerminationSignal(signal.Signals(number).name)

    with handlers_installed(numbers, interrupt):
        yield


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Ignore Ctrl+C, SIGTERM and SIGHUP while cleanup runs, so a second one cannot cut it short.

    A second Ctrl+C is common: users press it twice, and the PyInstaller bootloader of the
    single-file executable passes on the SIGINT its child already got from the console.
    """
    numbers = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    with handlers_installed(numbers, signal.SIG_IGN):
        yield
