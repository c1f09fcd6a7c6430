"""Raw terminal mode and terminal size for interactive shell sessions.

POSIX uses termios; Windows uses console modes through ctypes.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from typing import Optional

logger = logging.getLogger("ssmex.datachannel.terminal")

IS_WINDOWS = sys.platform == "win32"


def terminal_size(fd: int) -> Optional[tuple[int, int]]:
    """Return (cols, rows) of the terminal on `fd`, or None when it is not a terminal."""
    try:
        size = os.get_terminal_size(fd)
    except (OSError, ValueError):
        return None
    if size.columns <= 0 or size.lines <= 0:
        return None
    return size.columns, size.lines


class RawTerminal:
    """Put a terminal in raw mode and put it back exactly as it was.

    `restore` is safe to call more than once and from any exit path.
    """

    def __init__(self, input_fd: int, output_fd: int):
        self.input_fd = input_fd
        self.output_fd = output_fd
        self._saved = None
        self._saved_output = None
        self._saved_code_pages = None

    def enter(self) -> None:
        if IS_WINDOWS:
            self._enter_windows()
        else:
            self._enter_posix()

    def restore(self) -> None:
        if self._saved is None:
            return
        if IS_WINDOWS:
            self._restore_windows()
        else:
            self._restore_posix()
        self._saved = None

    def _enter_posix(self) -> None:
        import termios
        import tty

        self._saved = termios.tcgetattr(self.input_fd)
        # setraw turns off ISIG, so Ctrl+C, Ctrl+\ and Ctrl+Z arrive as bytes 0x03, 0x1c, 0x1a.
        tty.setraw(self.input_fd, termios.TCSANOW)

    def _restore_posix(self) -> None:
        import termios

        try:
            termios.tcsetattr(self.input_fd, termios.TCSADRAIN, self._saved)
        except termios.error as error:
            logger.warning("could not restore the terminal settings: %s", error)

    # NOTE: the Windows code paths below have not been run; they follow the
    # documented console API (GetConsoleMode, SetConsoleMode, SetConsoleCP).
    def _enter_windows(self) -> None:
        import ctypes
        import msvcrt

        kernel32 = ctypes.windll.kernel32
        enable_processed_input = 0x0001
        enable_line_input = 0x0002
        enable_echo_input = 0x0004
        enable_virtual_terminal_input = 0x0200
        enable_virtual_terminal_processing = 0x0004

        input_handle = msvcrt.get_osfhandle(self.input_fd)
        output_handle = msvcrt.get_osfhandle(self.output_fd)
        input_mode = ctypes.c_uint32()
        output_mode = ctypes.c_uint32()
        if not kernel32.GetConsoleMode(input_handle, ctypes.byref(input_mode)):
            raise OSError("stdin is not a Windows console")
        kernel32.GetConsoleMode(output_handle, ctypes.byref(output_mode))
        self._saved = input_mode.value
        self._saved_output = output_mode.value
        self._saved_code_pages = (kernel32.GetConsoleCP(), kernel32.GetConsoleOutputCP())

        raw_input = (input_mode.value & ~(enable_processed_input | enable_line_input | enable_echo_input)
                     ) | enable_virtual_terminal_input
        kernel32.SetConsoleMode(input_handle, raw_input)
        kernel32.SetConsoleMode(output_handle, output_mode.value | enable_virtual_terminal_processing)
        # UTF-8 both ways, so non-ASCII text is not garbled by the console code page.
        kernel32.SetConsoleCP(65001)
        kernel32.SetConsoleOutputCP(65001)

    def _restore_windows(self) -> None:
        import ctypes
        import msvcrt

        kernel32 = ctypes.windll.kernel32
        kernel32.SetConsoleMode(msvcrt.get_osfhandle(self.input_fd), self._saved)
        if self._saved_output is not None:
            kernel32.SetConsoleMode(msvcrt.get_osfhandle(self.output_fd), self._saved_output)
        if self._saved_code_pages is not None:
            kernel32.SetConsoleCP(self._saved_code_pages[0])
            kernel32.SetConsoleOutputCP(self._saved_code_pages[1])


def read_console_windows(fd: int, max_chars: int = 512) -> bytes:
    """Read keystrokes from a Windows console as UTF-8 bytes.

    ReadFile on a console returns text in the console code page and loses
    non-ASCII input, so this uses ReadConsoleW and encodes the result.
    """
    import ctypes
    import msvcrt

    buffer = ctypes.create_unicode_buffer(max_chars)
    count = ctypes.c_uint32()
    if not ctypes.windll.kernel32.ReadConsoleW(msvcrt.get_osfhandle(fd), buffer, max_chars,
                                               ctypes.byref(count), None):
        raise OSError("ReadConsoleW failed")
    return buffer[:count.value].encode("utf-8", "surrogatepass")


def fallback_size() -> tuple[int, int]:
    size = shutil.get_terminal_size()
    return size.columns, size.lines
