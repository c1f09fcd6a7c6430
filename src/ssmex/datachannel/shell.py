"""Shell and command sessions of the native client.

Standard_Stream, InteractiveCommands and NonInteractiveCommands all use this
handler: stdin goes to the remote as Output, Output goes to stdout, StdErr to
stderr, and an ExitCode payload sets the exit status.
"""

from __future__ import annotations

import codecs
import io
import json
import logging
import os
import signal
import struct
import sys
import threading
from typing import Optional

from ssmex.datachannel import message as m
from ssmex.datachannel import terminal
from ssmex.datachannel.pump import QueuedWriter

logger = logging.getLogger("ssmex.datachannel.shell")

# Bytes a terminal in cooked mode would turn into SIGINT, SIGQUIT and SIGTSTP.
SIGNAL_BYTES = {"SIGINT": b"\x03", "SIGQUIT": b"\x1c", "SIGTSTP": b"\x1a"}
END_OF_TRANSMISSION = b"\x04"
WINDOWS_SIZE_POLL_INTERVAL = 0.5


def parse_exit_code(payload: bytes) -> Optional[int]:
    """Read an ExitCode payload as decimal text, JSON or a 4-byte big-endian integer.

    NOTE: the encoding the SSM Agent uses was not checked against a real agent;
    decimal text is what the emulator sends.
    """
    text = payload.strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, dict) and isinstance(value.get("ExitCode"), int):
        return value["ExitCode"]
    if len(payload) == 4:
        return struct.unpack(">i", payload)[0]
    return None


class ShellHandler:
    uses_stdout = False

    def __init__(self, session):
        self.session = session
        options = session.options
        self._stdin = options.stdin or sys.stdin
        stdout = options.stdout or sys.stdout
        stderr = options.stderr or sys.stderr
        self._stdout_writer = QueuedWriter(_writer_for(stdout), name=f"shell-{session.session_id}-stdout")
        self._stderr_writer = QueuedWriter(_writer_for(stderr), name=f"shell-{session.session_id}-stderr")
        self._stdout_fd = _fileno(stdout)
        self._terminal: Optional[terminal.RawTerminal] = None
        self._last_size: Optional[tuple[int, int]] = None
        self._stopping = threading.Event()

    def activate(self) -> None:
        stdin_fd = _fileno(self._stdin)
        is_tty = stdin_fd is not None and os.isatty(stdin_fd)
        if is_tty and self._stdout_fd is not None:
            self._terminal = terminal.RawTerminal(stdin_fd, self._stdout_fd)
            try:
                self._terminal.enter()
            except OSError as error:
                logger.warning("could not put the terminal in raw mode: %s", error)
                self._terminal = None

        # Handlers first, so no resize between the first Size and them goes unsent.
        self._install_signal_handlers()
        self.send_size()
        threading.Thread(target=self._pump_stdin, args=(stdin_fd, is_tty),
                         name=f"shell-{self.session.session_id}-stdin", daemon=True).start()

    def send_size(self) -> None:
        if self._stdout_fd is None:
            return
        size = terminal.terminal_size(self._stdout_fd)
        if size is None or size == self._last_size:
            return
        self._last_size = size
        payload = json.dumps({"cols": size[0], "rows": size[1]}).encode()
        self.session.channel.send_data(m.PAYLOAD_SIZE, payload)

    def _install_signal_handlers(self) -> None:
        session = self.session
        if not session.options.install_signal_handlers or threading.current_thread() is not threading.main_thread():
            return

        for name, data in SIGNAL_BYTES.items():
            if hasattr(signal, name):
                number = getattr(signal, name)
                session.restore_signals[number] = signal.signal(number, self._forwarder(data))
        for name in ("SIGTERM", "SIGHUP"):
            # Leave through the normal exit path, which puts the terminal back.
            if hasattr(signal, name):
                number = getattr(signal, name)
                session.restore_signals[number] = signal.signal(number, _exit_on_signal)
        if hasattr(signal, "SIGWINCH"):
            session.restore_signals[signal.SIGWINCH] = signal.signal(
                signal.SIGWINCH, lambda signum, frame: self._send_size_later())
        elif terminal.IS_WINDOWS:
            threading.Thread(target=self._poll_size, name=f"shell-{session.session_id}-size", daemon=True).start()

    def _forwarder(self, data: bytes):
        def forward(signum, frame):
            # A signal handler must not block on the websocket, so send from a thread.
            threading.Thread(target=self.session.send_output, args=(data,), daemon=True).start()
        return forward

    def _send_size_later(self) -> None:
        threading.Thread(target=self.send_size, daemon=True).start()

    def _poll_size(self) -> None:
        while not self._stopping.wait(WINDOWS_SIZE_POLL_INTERVAL):
            self.send_size()

    def _read_stdin(self, fd: int, is_tty: bool) -> bytes:
        if terminal.IS_WINDOWS and is_tty:
            return terminal.read_console_windows(fd)
        return os.read(fd, m.MAX_PAYLOAD_SIZE)

    def _pump_stdin(self, fd: Optional[int], is_tty: bool) -> None:
        if fd is None:
            return
        try:
            while not self._stopping.is_set():
                data = self._read_stdin(fd, is_tty)
                if not data:
                    break
                self.session.send_output(data)
        except OSError as error:
            if self._stopping.is_set():
                return
            logger.debug("reading stdin of session %s failed: %s", self.session.session_id, error)

        if self._stopping.is_set():
            return
        if is_tty:
            # As the plugin does, end the session when a terminal reaches end of file.
            self.session.print_status("Cannot perform start session: EOF\n")
            self.session.finish(0)
        elif self.session.handshake.session_type != "NonInteractiveCommands":
            # Piped input ran out: send Ctrl+D, which ends a remote shell reading
            # from its terminal, and wait for the service to close the channel.
            self.session.send_output(END_OF_TRANSMISSION)

    def on_message(self, message: m.ClientMessage) -> None:
        payload_type = message.payload_type
        if payload_type == m.PAYLOAD_OUTPUT:
            self._stdout_writer.put(message.payload)
        elif payload_type == m.PAYLOAD_STDERR:
            self._stderr_writer.put(message.payload)
        elif payload_type == m.PAYLOAD_EXIT_CODE:
            code = parse_exit_code(message.payload)
            if code is None:
                logger.warning("ignored an ExitCode payload of %d bytes that is not a number", len(message.payload))
            else:
                self.session.remote_exit_code = code
        else:
            logger.debug("ignored payload type %d in shell session %s", payload_type, self.session.session_id)

    def stop(self) -> None:
        self._stopping.set()
        for writer in (self._stdout_writer, self._stderr_writer):
            writer.close()
            writer.join(5.0)
        if self._terminal is not None:
            self._terminal.restore()


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def _fileno(stream) -> Optional[int]:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _writer_for(stream):
    binary = getattr(stream, "buffer", None)
    if binary is None and isinstance(stream, io.TextIOBase):
        # A text stream with no byte buffer, such as io.StringIO: decode, keeping
        # a UTF-8 sequence split across two payloads whole.
        decoder = codecs.getincrementaldecoder("utf-8")("replace")

        def write_text(data: bytes) -> None:
            stream.write(decoder.decode(data))
            stream.flush()
        return write_text

    binary = binary or stream

    def write(data: bytes) -> None:
        binary.write(data)
        binary.flush()
    return write
