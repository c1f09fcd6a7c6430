"""Pieces for driving the native client against the emulator in tests and benchmarks.

Everything here listens on or dials 127.0.0.1 only.
"""

from __future__ import annotations

import io
import re
import socket
import threading
from typing import Callable, Optional

from ssmex.datachannel.client import SessionOptions, run_session
from ssmex.datachannel.pump import close_quietly

FAKE_ACCESS_KEY = "AKIAEXAMPLEDATACHANNEL"


class EchoServer:
    """A loopback TCP server that sends back every byte it receives, many clients at once."""

    def __init__(self, *, banner: bytes = b""):
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self._listener.getsockname()[1]
        self.banner = banner
        self.connections = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept_loop, name="echo-accept", daemon=True).start()

    def _accept_loop(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._sockets.append(connection)
            threading.Thread(target=self._echo, args=(connection,), name="echo-conn", daemon=True).start()

    def _echo(self, connection: socket.socket) -> None:
        try:
            if self.banner:
                connection.sendall(self.banner)
            while True:
                data = connection.recv(65536)
                if not data:
                    break
                connection.sendall(data)
            connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            close_quietly(connection)

    def close(self) -> None:
        close_quietly(self._listener)
        with self._lock:
            for connection in self._sockets:
                close_quietly(connection)


class StatusCapture(io.TextIOBase):
    """A thread-safe text stream that records the client's status lines."""

    def __init__(self):
        super().__init__()
        self._parts: list[str] = []
        self._changed = threading.Condition()

    def write(self, text: str) -> int:
        with self._changed:
            self._parts.append(text)
            self._changed.notify_all()
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self._parts)

    def wait_for(self, pattern: str, timeout: float) -> Optional[re.Match]:
        """Wait until the recorded text matches `pattern`; return the match or None on timeout."""
        compiled = re.compile(pattern)
        with self._changed:
            match = None

            def found() -> bool:
                nonlocal match
                match = compiled.search("".join(self._parts))
                return match is not None

            self._changed.wait_for(found, timeout)
            return match


def start_session(emulator, target: str, document: Optional[str] = None,
                  parameters: Optional[dict] = None) -> dict:
    body = {"Target": target}
    if document:
        body["DocumentName"] = document
    if parameters:
        body["Parameters"] = parameters
    return emulator.handle("StartSession", body, FAKE_ACCESS_KEY)


class CountingResume:
    """Callable that performs ResumeSession on the emulator and counts the calls."""

    def __init__(self, emulator, session_id: str):
        self.emulator = emulator
        self.session_id = session_id
        self.calls = 0

    def __call__(self) -> Optional[str]:
        self.calls += 1
        response = self.emulator.handle("ResumeSession", {"SessionId": self.session_id}, FAKE_ACCESS_KEY)
        return response.get("TokenValue")


class ClientThread:
    """Run the native client on a thread and collect its exit status or error."""

    def __init__(self, response: dict, resume: Callable[[], Optional[str]], *,
                 options: Optional[SessionOptions] = None):
        self.status = StatusCapture()
        self.options = options or SessionOptions()
        if self.options.status is None:
            self.options.status = self.status
        if self.options.stderr is None:
            self.options.stderr = self.status
        self.options.install_signal_handlers = False
        self.exit_code: Optional[int] = None
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(response, resume), name="native-client",
                                        daemon=True)
        self._thread.start()

    def _run(self, response, resume) -> None:
        try:
            self.exit_code = run_session(response, resume, self.options)
        except BaseException as error:  # recorded for the test to assert on
            self.error = error

    def wait_for_port(self, timeout: float = 10.0) -> int:
        match = self.status.wait_for(r"Port (\d+) opened for sessionId", timeout)
        if match is None:
            raise TimeoutError(f"no 'Port N opened' line within {timeout} s; output so far: {self.status.text!r}")
        return int(match.group(1))

    def join(self, timeout: float = 10.0) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()
