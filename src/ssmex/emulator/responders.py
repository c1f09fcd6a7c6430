"""Responders of the emulated instance: port forwarding and a pretend shell.

Port responders dial only loopback addresses taken from the instance's
port_map and host_map. The shell responder runs no program at all: it
understands a handful of fixed commands, so tests can drive a shell session
without touching the host.
"""

from __future__ import annotations

import codecs
import ipaddress
import logging
import socket
import threading
from typing import Callable, Optional

from ssmex.datachannel import message as m
from ssmex.datachannel import smux
from ssmex.datachannel.pump import QueuedWriter, close_quietly, shutdown_quietly

logger = logging.getLogger("ssmex.emulator.responders")

DIAL_TIMEOUT = 5.0
READ_SIZE = 32768


class DestinationRefused(Exception):
    """The emulator will not or cannot connect to the requested destination."""


def first_parameter(parameters: dict, name: str, default: str = "") -> str:
    values = parameters.get(name) or []
    return str(values[0]) if values else default


def resolve_destination(instance, parameters: dict, refused_ports: set) -> tuple[str, int]:
    """Map a session's portNumber (and host) to the loopback address to dial.

    Raises DestinationRefused for a refused or unmapped port, and for any
    address that is not a loopback address.
    """
    text = first_parameter(parameters, "portNumber", "22")
    try:
        port = int(text)
    except ValueError:
        raise DestinationRefused(f"portNumber {text!r} is not a number") from None
    if port in refused_ports:
        raise DestinationRefused(f"connection to port {port} refused by the refused_ports fault switch")

    port_map = getattr(instance, "port_map", {}) or {}
    host = first_parameter(parameters, "host")
    if host:
        host_map = getattr(instance, "host_map", {}) or {}
        address = host_map.get(host, host)
        mapped_port = port_map[port][1] if port in port_map else port
        destination = (address, mapped_port)
    elif port in port_map:
        destination = tuple(port_map[port])
    else:
        raise DestinationRefused(f"instance {getattr(instance, 'instance_id', '?')} has no port_map entry for port {port}")

    address = "127.0.0.1" if destination[0] == "localhost" else destination[0]
    try:
        is_loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise DestinationRefused(f"destination {destination[0]} is not a loopback address")
    return address, int(destination[1])


def dial(address: tuple[str, int]) -> socket.socket:
    connection = socket.create_connection(address, timeout=DIAL_TIMEOUT)
    connection.settimeout(None)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


class BasicPortResponder:
    """Basic mode: one destination connection, dialled on the first Output after a disconnect."""

    def __init__(self, channel, destination: Callable[[], tuple[str, int]], *, eager: bool = False):
        self.channel = channel
        self._destination = destination
        self._lock = threading.Lock()
        self._connection: Optional[socket.socket] = None
        self._writer: Optional[QueuedWriter] = None
        self._eager = eager

    def start(self) -> None:
        if self._eager:
            self._connect()

    def _connect(self) -> Optional[QueuedWriter]:
        with self._lock:
            if self._writer is not None:
                return self._writer
            try:
                connection = dial(self._destination())
            except (DestinationRefused, OSError) as error:
                logger.warning("session %s: could not connect to the destination: %s", self.channel.session_id, error)
                return None
            self._connection = connection
            # Closing the writer, on DisconnectToPort or destination EOF, closes the
            # connection once the bytes already queued are written.
            self._writer = QueuedWriter(connection.sendall, on_finish=lambda error: close_quietly(connection),
                                        name=f"emulator-{self.channel.session_id}-dest-write")
            threading.Thread(target=self._pump_destination, args=(connection,), daemon=True,
                             name=f"emulator-{self.channel.session_id}-dest-read").start()
            return self._writer

    def _pump_destination(self, connection: socket.socket) -> None:
        try:
            while True:
                data = connection.recv(m.MAX_PAYLOAD_SIZE)
                if not data:
                    break
                self.channel.send_data(m.PAYLOAD_OUTPUT, data)
        except OSError as error:
            logger.debug("session %s: destination read failed: %s", self.channel.session_id, error)
        # The client's local connection stays open when the destination closes.
        self._forget(connection)

    def _forget(self, connection: socket.socket) -> None:
        with self._lock:
            if self._connection is connection:
                self._connection = None
                if self._writer is not None:
                    self._writer.close()
                self._writer = None

    def on_output(self, data: bytes) -> None:
        writer = self._connect()
        if writer is None:
            logger.debug("session %s: dropped %d bytes with no destination", self.channel.session_id, len(data))
            return
        writer.put(data)

    def on_disconnect(self) -> None:
        with self._lock:
            connection, writer = self._connection, self._writer
            self._connection = None
            self._writer = None
        if writer is not None:
            writer.close()

    def stop(self) -> None:
        with self._lock:
            connection = self._connection
            self._connection = None
            self._writer = None
        close_quietly(connection)


class MuxPortResponder:
    """Mux mode: an smux v1 server, one destination connection per stream."""

    def __init__(self, channel, destination: Callable[[], tuple[str, int]]):
        self.channel = channel
        self._destination = destination
        self.mux = smux.SmuxSession(lambda data: channel.send_data(m.PAYLOAD_OUTPUT, data),
                                    is_client=False, on_accept=self._accept)
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        pass

    def _accept(self, stream: smux.SmuxStream) -> None:
        try:
            connection = dial(self._destination())
        except (DestinationRefused, OSError) as error:
            logger.warning("session %s: smux stream %d could not connect to the destination: %s",
                           self.channel.session_id, stream.stream_id, error)
            self.channel.send_data(m.PAYLOAD_FLAG, m.flag_payload(m.FLAG_CONNECT_TO_PORT_ERROR))
            stream.close()
            return
        with self._lock:
            self._connections.add(connection)

        def finish_writing(error) -> None:
            # The client sent FIN: pass the half-close on and keep reading replies.
            shutdown_quietly(connection, socket.SHUT_WR)

        writer = QueuedWriter(connection.sendall, on_finish=finish_writing,
                              name=f"emulator-{self.channel.session_id}-s{stream.stream_id}-write")
        stream.on_data = writer.put
        stream.on_fin = writer.close
        threading.Thread(target=self._pump_destination, args=(connection, stream), daemon=True,
                         name=f"emulator-{self.channel.session_id}-s{stream.stream_id}-read").start()

    def _pump_destination(self, connection: socket.socket, stream: smux.SmuxStream) -> None:
        try:
            while True:
                data = connection.recv(READ_SIZE)
                if not data:
                    break
                stream.write(data)
        except (OSError, smux.SmuxError) as error:
            logger.debug("session %s: smux stream %d destination failed: %s",
                         self.channel.session_id, stream.stream_id, error)
        try:
            stream.close()
        except smux.SmuxError:
            pass
        with self._lock:
            self._connections.discard(connection)
        close_quietly(connection)

    def on_output(self, data: bytes) -> None:
        self.mux.feed(data)

    def on_disconnect(self) -> None:
        logger.debug("session %s: ignored DisconnectToPort in mux mode", self.channel.session_id)

    def stop(self) -> None:
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            close_quietly(connection)


class ShellResponder:
    """A pretend shell that echoes keystrokes like a terminal and runs a few fixed commands.

    Commands: `whoami`, `hostname`, `echo TEXT`, `stty size` (the last Size
    received), `exit [N]`; anything else is "command not found" with status
    127. Ctrl+D on an empty line exits with status 0. A command session runs
    its `command` parameter once and exits with that command's status.
    """

    PROMPT = "$ "

    def __init__(self, channel, *, session_type: str, hostname: str, command: str = ""):
        self.channel = channel
        self.session_type = session_type
        self.hostname = hostname
        self.command = command
        self.size: Optional[tuple[int, int]] = None
        self._line = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._finished = False

    def start(self) -> None:
        if self.session_type == "Standard_Stream":
            self._write(self.PROMPT)
        else:
            status = self._run(self.command)
            self._exit(0 if status is None else status)

    def _write(self, text: str, *, stderr: bool = False) -> None:
        payload_type = m.PAYLOAD_STDERR if stderr else m.PAYLOAD_OUTPUT
        self.channel.send_data(payload_type, text.encode("utf-8"))

    def on_size(self, cols: int, rows: int) -> None:
        self.size = (cols, rows)

    def on_output(self, data: bytes) -> None:
        if self._finished:
            return
        for char in self._decoder.decode(data):
            if self._finished:
                return
            self._key(char)

    def _key(self, char: str) -> None:
        if char in "\r\n":
            self._write("\r\n")
            line, self._line = self._line, ""
            status = self._run(line)
            if status is not None and line.strip().split()[:1] == ["exit"]:
                self._exit(status)
                return
            self._write(self.PROMPT)
        elif char == "\x03":
            self._line = ""
            self._write("^C\r\n" + self.PROMPT)
        elif char in "\x1c\x1a":
            self._line = ""
            self._write(("^\\" if char == "\x1c" else "^Z") + "\r\n" + self.PROMPT)
        elif char == "\x04":
            if not self._line:
                self._write("exit\r\n")
                self._exit(0)
        elif char in "\x7f\x08":
            if self._line:
                self._line = self._line[:-1]
                self._write("\b \b")
        else:
            self._line += char
            self._write(char)

    def _run(self, line: str) -> Optional[int]:
        """Run one command line; return its status (None for an empty line)."""
        words = line.strip().split()
        if not words:
            return None
        name, arguments = words[0], words[1:]
        newline = "\r\n" if self.session_type != "NonInteractiveCommands" else "\n"
        if name == "whoami":
            self._write("ssm-user" + newline)
        elif name == "hostname":
            self._write(self.hostname + newline)
        elif name == "echo":
            self._write(line.strip()[len("echo"):].strip() + newline)
        elif name == "stty" and arguments == ["size"]:
            cols, rows = self.size or (0, 0)
            self._write(f"{rows} {cols}" + newline)
        elif name == "exit":
            try:
                return int(arguments[0]) if arguments else 0
            except ValueError:
                self._write(f"sh: exit: {arguments[0]}: numeric argument required" + newline, stderr=self._split_stderr)
                return 2
        else:
            self._write(f"sh: {name}: command not found" + newline, stderr=self._split_stderr)
            return 127
        return 0

    @property
    def _split_stderr(self) -> bool:
        # Without a terminal, command sessions keep stderr apart from stdout.
        return self.session_type == "NonInteractiveCommands"

    def _exit(self, status: int) -> None:
        self._finished = True
        self.channel.send_data(m.PAYLOAD_EXIT_CODE, str(status).encode())
        self.channel.end_session()

    def on_disconnect(self) -> None:
        pass

    def stop(self) -> None:
        self._finished = True
