"""Child processes: the foreground plugin with the console's keys, and detached ones.

All children are started here, so the command line and the environment are prepared in
one place and logged (redacted) at debug level.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from typing import IO, Iterator, Mapping, Sequence

from ssmex.interrupts import handlers_installed
from ssmex.quoting import native_style, render_command
from ssmex.redact import redact

log = logging.getLogger("ssmex.process")

IS_WINDOWS = os.name == "nt"

# Windows process creation flags (winbase.h).
CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_NO_WINDOW = 0x08000000


def user_entered_signals() -> list[int]:
    """Return the signals the console sends when the user presses Ctrl+C and friends."""
    if IS_WINDOWS:
        return [signal.SIGINT]
    return [signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP]


@contextlib.contextmanager
def console_keys_to_child() -> Iterator[None]:
    """Ignore Ctrl+C (and on POSIX Ctrl+\\ and Ctrl+Z) in ssmex, restoring them afterwards.

    The console delivers these keys to every process in the foreground group, so the
    child still receives them and decides what they mean.
    """
    with handlers_installed(user_entered_signals(), signal.SIG_IGN):
        yield


def command_line(argv: Sequence[str]) -> str | list[str]:
    """Return what Popen receives: the argv on POSIX, the C runtime command line on Windows."""
    if IS_WINDOWS:
        return render_command(argv, "msvcrt")
    return list(argv)


def describe(argv: Sequence[str]) -> str:
    """Return argv as this OS's command line, with secrets redacted, for logs."""
    return redact(render_command(argv, native_style(os.name)))


@contextlib.contextmanager
def termination_forwarded_to(process_holder: list, received: list | None = None) -> Iterator[None]:
    """Pass SIGTERM and SIGHUP on to the child instead of dying from them (POSIX).

    ssmex then outlives the child and can end the session it started, which a closed
    terminal or a `kill` would otherwise leave running. Each signal passed on is appended
    to received.
    """
    if IS_WINDOWS:
        yield
        return

    def forward(number: int, frame: object) -> None:
        log.debug("received %s; passing it to the plugin", signal.Signals(number).name)
        if received is not None:
            received.append(number)
        for process in process_holder:
            if process.poll() is None:
                process.send_signal(number)

    with handlers_installed((signal.SIGTERM, signal.SIGHUP), forward):
        yield


def run_foreground(argv: Sequence[str], environment: Mapping[str, str], received: list | None = None) -> int:
    """Run a child attached to the console and return its exit status.

    A negative status means the child was killed by that signal (POSIX). SIGTERM and
    SIGHUP sent to ssmex meanwhile go to the child and are appended to received.
    """
    log.debug("running %s", describe(argv))
    started: list = []
    with console_keys_to_child(), termination_forwarded_to(started, received):
        process = subprocess.Popen(command_line(argv), env=dict(environment))
        started.append(process)
        log.debug("started %s (pid %d)", os.path.basename(argv[0]), process.pid)
        return process.wait()


def spawn_detached(
    argv: Sequence[str],
    environment: Mapping[str, str],
    output: IO[bytes] | int | None = None,
    stdin: int = subprocess.DEVNULL,
    stdout: int | None = None,
    end_with_parent: bool = False,
) -> subprocess.Popen:
    """Start a child that outlives ssmex: its own session on POSIX, a hidden window on Windows.

    Standard input is empty unless stdin is given (such as subprocess.PIPE). Standard
    output and error go to output (or nowhere). Given stdout, standard output goes there
    and only standard error goes to output. With end_with_parent, Linux sends the child
    SIGTERM when the thread that started it exits, even when that thread is killed.
    """
    log.debug("starting in the background %s", describe(argv))
    destination = subprocess.DEVNULL if output is None else output
    options: dict = {
        "stdin": stdin,
        "stdout": destination if stdout is None else stdout,
        "stderr": subprocess.STDOUT if output is not None else subprocess.DEVNULL,
        "env": dict(environment),
        "close_fds": True,
    }
    if stdout is not None:
        options["stderr"] = destination
    if IS_WINDOWS:
        startupinfo = subprocess.STARTUPINFO()
        startupinfo.dwFlags |= subprocess.STARTF_USESHOWWINDOW
        startupinfo.wShowWindow = 0  # SW_HIDE
        options["startupinfo"] = startupinfo
        options["creationflags"] = CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW
    else:
        options["start_new_session"] = True
        if end_with_parent and sys.platform.startswith("linux"):
            options["preexec_fn"] = _parent_death_signal()
    # NOTE: end_with_parent has no effect on macOS or Windows, so a parent killed hard
    # leaves the child running there. A Windows job object with KILL_ON_JOB_CLOSE would fix it.
    return subprocess.Popen(command_line(argv), **options)


def _parent_death_signal():
    """Return a pre-exec function that requests SIGTERM from Linux when the parent thread ends."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def set_signal() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        # The parent may have died before prctl took effect.
        if os.getppid() != parent:
            os._exit(1)

    return set_signal


def process_alive(pid: int) -> bool:
    """Return whether a process with this id is running (a zombie counts as gone)."""
    if pid <= 0:
        return False
    if IS_WINDOWS:
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status_file = f"/proc/{pid}/stat"
    if os.path.exists(status_file):
        try:
            with open(status_file, encoding="ascii", errors="replace") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
            return state != "Z"
        except (OSError, IndexError):
            return True
    return True


def _windows_process_alive(pid: int) -> bool:
    import ctypes

    process_query_limited_information = 0x1000
    still_active = 259
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return False
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def end_process(pid: int) -> bool:
    """Ask a process to end (SIGTERM on POSIX, TerminateProcess on Windows).

    Returns False when it was already gone.
    """
    if not process_alive(pid):
        return False
    try:
        if IS_WINDOWS:
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            process_terminate = 0x0001
            handle = kernel32.OpenProcess(process_terminate, False, pid)
            if not handle:
                return False
            try:
                return bool(kernel32.TerminateProcess(handle, 1))
            finally:
                kernel32.CloseHandle(handle)
        os.kill(pid, signal.SIGTERM)
        return True
    except ProcessLookupError:
        return False


def exit_status_text(status: int) -> str:
    """Describe an exit status from Popen.wait() in words."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with status {status}"


def is_interactive(stream: IO | None = None) -> bool:
    stream = stream or sys.stdin
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
