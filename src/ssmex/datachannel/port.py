"""Port-session handlers of the native client: basic, mux and stdin/stdout forwarding."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Optional

from ssmex.datachannel import message as m
from ssmex.datachannel import smux
from ssmex.datachannel.pump import QueuedWriter, close_quietly, shutdown_quietly

logger = logging.getLogger("ssmex.datachannel.port")

LOCAL_HOST = "127.0.0.1"
READ_SIZE = 32768
SMUX_KEEPALIVE_INTERVAL = 10.0


# After standard input ends, a stdin/stdout session stays open until the remote side has
# sent nothing for this long, so a reply to the last bytes still reaches standard output.
OUTPUT_QUIET_SECONDS = 0.5


def create_port_handler(session):
    """Pick the handler from the handshake properties and the agent version."""
    from ssmex.datachannel.client import MUX_MIN_AGENT_VERSION

    properties = session.handshake.properties
    if properties.get("type") != "LocalPortForwarding":
        return StdioPortHandler(session)
    if m.version_greater_than(session.handshake.agent_version, MUX_MIN_AGENT_VERSION):
        return MuxPortHandler(session)
    return BasicPortHandler(session)


class _ListenerHandler:
    """Shared parts of the two local-listener modes."""

    uses_stdout = False

    def __init__(self, session):
        self.session = session
        self.listener: Optional[socket.socket] = None
        self.bound_port: Optional[int] = None
        self._accepted_once = False
        self._stopping = threading.Event()

    def _open_listener(self) -> str:
        properties = self.session.handshake.properties
        if properties.get("localConnectionType") == "unix":
            path = properties.get("localUnixSocket", "")
            if not path or not hasattr(socket, "AF_UNIX"):
                raise OSError(f"cannot listen on Unix socket {path!r} on this platform")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            listener.listen(128)
            self.listener = listener
            return f"Unix socket {path} opened for sessionId {self.session.session_id}."

        text = properties.get("localPortNumber", "") or "0"
        try:
            requested = int(text)
        except ValueError:
            raise OSError(f"localPortNumber {text!r} is not a port number") from None
        # The plugin listens on localhost; this binds its IPv4 address.
        listener = socket.create_server((LOCAL_HOST, requested), backlog=128)
        self.listener = listener
        self.bound_port = listener.getsockname()[1]
        return f"Port {self.bound_port} opened for sessionId {self.session.session_id}."

    def activate(self) -> None:
        try:
            opened = self._open_listener()
        except OSError as error:
            self.session.fail(f"Cannot perform start session: {error}")
            return
        on_listening = self.session.options.on_listening
        if on_listening is not None:
            on_listening(self.bound_port if self.bound_port is not None else self.listener.getsockname())
        self._print_opened(opened)
        _install_terminate_signals(self.session)
        threading.Thread(target=self._accept_loop, name=f"port-{self.session.session_id}-accept",
                         daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                if not self._stopping.is_set():
                    logger.warning("local listener of session %s stopped accepting", self.session.session_id)
                return
            if connection.family in (socket.AF_INET, socket.AF_INET6):
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self._accepted_once:
                self._accepted_once = True
                self._print_accepted()
            self._serve(connection)

    def stop(self) -> None:
        self._stopping.set()
        close_quietly(self.listener)


class BasicPortHandler(_ListenerHandler):
    """Serve one local client at a time and send DisconnectToPort when it leaves."""

    def __init__(self, session):
        super().__init__(session)
        self._connection: Optional[socket.socket] = None
        self._writer: Optional[QueuedWriter] = None

    def _print_opened(self, opened: str) -> None:
        self.session.print_status(opened + "\n")

    def _print_accepted(self) -> None:
        self.session.print_status(f"Connection accepted for session {self.session.session_id}.\n")

    def _serve(self, connection: socket.socket) -> None:
        # Runs on the accept thread, so the next client waits until this one leaves.
        writer = QueuedWriter(connection.sendall, name=f"port-{self.session.session_id}-write")
        self._writer = writer
        self._connection = connection
        try:
            while not self._stopping.is_set():
                data = connection.recv(m.MAX_PAYLOAD_SIZE)
                if not data:
                    break
                self.session.send_output(data)
        except OSError as error:
            logger.debug("local client of session %s failed: %s", self.session.session_id, error)
        finally:
            self._connection = None
            self._writer = None
            writer.close()
            writer.join(2.0)
            close_quietly(connection)
        if not self._stopping.is_set() and not self.session.done:
            self.session.send_flag(m.FLAG_DISCONNECT_TO_PORT)

    def on_message(self, message: m.ClientMessage) -> None:
        writer = self._writer
        if message.payload_type != m.PAYLOAD_OUTPUT:
            logger.debug("ignored payload type %d in basic port session %s", message.payload_type,
                         self.session.session_id)
            return
        if writer is None:
            # The plugin drops this without an ack; here it is acknowledged and dropped,
            # because it belongs to a destination connection whose client already left.
            logger.debug("dropped %d bytes for session %s: no local client is connected",
                         len(message.payload), self.session.session_id)
            return
        writer.put(message.payload)

    def stop(self) -> None:
        super().stop()
        close_quietly(self._connection)


class MuxPortHandler(_ListenerHandler):
    """Many local clients, each one smux stream, all in one smux v1 client session."""

    def __init__(self, session):
        super().__init__(session)
        self.mux = smux.SmuxSession(session.send_output, is_client=True)
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def _print_opened(self, opened: str) -> None:
        self.session.print_status(opened)
        self.session.print_status("\nWaiting for connections...\n")

    def _print_accepted(self) -> None:
        self.session.print_status(f"\nConnection accepted for session [{self.session.session_id}]\n")

    def activate(self) -> None:
        from ssmex.datachannel.client import SMUX_KEEPALIVE_OFF_AGENT_VERSION

        super().activate()
        if not m.version_greater_than(self.session.handshake.agent_version, SMUX_KEEPALIVE_OFF_AGENT_VERSION):
            # NOTE: the plugin's smux client also closes the mux after 30 s without
            # a frame from the agent; this client only sends the keepalive NOPs.
            threading.Thread(target=self._keepalive_loop, name=f"port-{self.session.session_id}-nop",
                             daemon=True).start()

    def _keepalive_loop(self) -> None:
        while not self._stopping.wait(SMUX_KEEPALIVE_INTERVAL):
            self.mux.send_nop()

    def _serve(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

        def finish_writing(error) -> None:
            # The agent closed the stream: close the local side once its data is written.
            self._forget(connection)
            close_quietly(connection)

        writer = QueuedWriter(connection.sendall, name=f"port-{self.session.session_id}-write",
                              on_finish=finish_writing)
        stream = self.mux.open_stream(on_data=writer.put, on_fin=writer.close)
        threading.Thread(target=self._pump_local, args=(connection, stream),
                         name=f"port-{self.session.session_id}-s{stream.stream_id}-read", daemon=True).start()

    def _pump_local(self, connection: socket.socket, stream: smux.SmuxStream) -> None:
        try:
            while not self._stopping.is_set():
                data = connection.recv(READ_SIZE)
                if not data:
                    break
                stream.write(data)
        except (OSError, smux.SmuxError) as error:
            logger.debug("local client on smux stream %d failed: %s", stream.stream_id, error)
        # Half-close: the agent still sends what the destination returns until its FIN.
        shutdown_quietly(connection, socket.SHUT_RD)
        if not self.session.done:
            stream.close()

    def _forget(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def on_message(self, message: m.ClientMessage) -> None:
        if message.payload_type == m.PAYLOAD_OUTPUT:
            self.mux.feed(message.payload)
        elif message.payload_type == m.PAYLOAD_FLAG:
            if m.parse_flag(message.payload) == m.FLAG_CONNECT_TO_PORT_ERROR:
                self.session.print_status("\nConnection to destination port failed, check SSM Agent logs.\n")
        else:
            logger.debug("ignored payload type %d in mux port session %s", message.payload_type,
                         self.session.session_id)

    def stop(self) -> None:
        super().stop()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            close_quietly(connection)


class StdioPortHandler:
    """Port sessions without LocalPortForwarding, such as AWS-StartSSHSession.

    Stdin goes to the remote port and the remote bytes go to stdout, which
    carries nothing else. Status lines go to stderr.
    """

    uses_stdout = True

    def __init__(self, session):
        self.session = session
        self._stdout = _binary_stream(session.options.stdout or sys.stdout)
        self._writer = QueuedWriter(self._write_stdout, name=f"stdio-{session.session_id}-write")
        self._last_output = time.monotonic()

    def _write_stdout(self, data: bytes) -> None:
        self._stdout.write(data)
        self._stdout.flush()

    def activate(self) -> None:
        _install_terminate_signals(self.session)
        threading.Thread(target=self._pump_stdin, name=f"stdio-{self.session.session_id}-read",
                         daemon=True).start()

    def _pump_stdin(self) -> None:
        stdin = self.session.options.stdin or sys.stdin
        fd = stdin.fileno()
        try:
            while not self.session.done:
                data = os.read(fd, m.MAX_PAYLOAD_SIZE)
                if not data:
                    break
                self.session.send_output(data)
        except OSError as error:
            logger.debug("reading stdin of session %s failed: %s", self.session.session_id, error)

        # The plugin exits at once on EOF, dropping what is still on its way in either direction.
        # This client waits until its last bytes are acknowledged and the reply to them has
        # arrived, then ends the session with the TerminateSession flag.
        deadline = time.monotonic() + self.session.options.drain_timeout
        if not self.session.channel.wait_drained(self.session.options.drain_timeout):
            logger.warning("session %s ended with %d messages unacknowledged", self.session.session_id,
                           self.session.channel.unacked_count())
        self._wait_for_quiet_output(deadline)
        if not self.session.done:
            self.session.terminate()
        self.session.finish(0)

    def _wait_for_quiet_output(self, deadline: float) -> None:
        """Wait until no remote output has arrived for OUTPUT_QUIET_SECONDS, or until deadline."""
        while not self.session.done:
            now = time.monotonic()
            quiet_until = self._last_output + OUTPUT_QUIET_SECONDS
            if now >= quiet_until or now >= deadline:
                return
            time.sleep(min(quiet_until, deadline) - now)

    def on_message(self, message: m.ClientMessage) -> None:
        if message.payload_type == m.PAYLOAD_OUTPUT:
            self._last_output = time.monotonic()
            self._writer.put(message.payload)

    def stop(self) -> None:
        self._writer.close()
        self._writer.join(2.0)


def _binary_stream(stream):
    return getattr(stream, "buffer", stream)


def _install_terminate_signals(session) -> None:
    """Make SIGQUIT and SIGTSTP end a port session like Ctrl+C, as the plugin does."""
    if not session.options.install_signal_handlers or threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for name in ("SIGQUIT", "SIGTSTP"):
        if hasattr(signal, name):
            number = getattr(signal, name)
            session.restore_signals[number] = signal.signal(number, interrupt)
