"""Signals during cleanup: SIGTERM treated like Ctrl+C, and no signal cutting cleanup short.

Commands that hold something that must be undone (a background port forward, a stored
Windows credential) run under termination_signals_interrupt, and undo it under
interrupts_held. A call that creates something remote, such as StartSession, runs under
interrupt_deferred, so that Ctrl+C cannot lose what it created.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from typing import Any, Callable, Iterable, Iterator

log = logging.getLogger("ssmex.interrupts")

# The single-file executable's bootloader passes on the SIGINT that its child also got from
# the console, so one press can arrive twice. A second SIGINT sooner than this is the same press.
SAME_PRESS_SECONDS = 0.3


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


class TerminationSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl+C so that every cleanup runs.

    ssmex then exits with 128 plus the signal number, as a shell reports a process it ended.
    """

    def __init__(self, number: int) -> None:
        super().__init__(signal.Signals(number).name)
        self.number = number
        self.name = signal.Signals(number).name


@contextlib.contextmanager
def termination_signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP on POSIX) into KeyboardInterrupt while the block runs."""
    numbers = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])

    def interrupt(number: int, frame: object) -> None:
        raise TerminationSignal(number)

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


@contextlib.contextmanager
def interrupt_deferred(operation: str) -> Iterator[Callable[[], bool]]:
    """Hold back the first Ctrl+C until the block ends, and let a second press interrupt at once.

    Yields a function that returns whether a Ctrl+C was held back. When it was, the caller
    undoes what the operation created and raises KeyboardInterrupt. Where SIGINT is ignored or has
    a handler of its own, or outside the main thread, the block runs unchanged.
    """
    first_press: list[float] = []

    def hold(number: int, frame: object) -> None:
        now = time.monotonic()
        if not first_press:
            first_press.append(now)
            log.warning(
                "Ctrl+C: waiting for %s to return so that its session can be ended; "
                "press Ctrl+C again to stop now and leave that session running.",
                operation,
            )
        elif now - first_press[0] >= SAME_PRESS_SECONDS:
            raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield lambda: False
        return
    with handlers_installed([signal.SIGINT], hold):
        yield lambda: bool(first_press)
