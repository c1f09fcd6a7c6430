"""End-to-end sessions between the official session-manager-plugin and the emulator.

The same scenarios the native client runs against the emulator, played by the
official plugin instead, so the emulator is checked against the client it
imitates the service for. Skipped unless a plugin is named by SSMEX_TEST_PLUGIN
or found on PATH.

The plugin is a Go program outside the Python network guard, so every session
here keeps it on loopback by construction. Argv slot 6 is the emulator's
127.0.0.1 endpoint and every StreamUrl is a ws://127.0.0.1 address. KMS
encryption is never requested, because the plugin would call the default
regional KMS endpoint. Instance metadata is off, credentials are fake and proxy
variables are removed.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from typing import Optional

import pytest

from conftest import REAL_PLUGIN
from ssmex.datachannel import message as m
from ssmex.emulator.api import Emulator, EmulatedInstance, SsmApiServer
from ssmex.emulator.datachannel import DataChannelServer
from ssmex.emulator.harness import EchoServer, start_session
from ssmex.plugin import build_launch, read_plugin

pytestmark = pytest.mark.skipif(REAL_PLUGIN is None, reason="no official session-manager-plugin on PATH or in SSMEX_TEST_PLUGIN")

REGION = "us-east-1"
MUX_TARGET = "i-0a00000000000m0x0"
BASIC_TARGET = "i-0b00000000000ba51"
MUX_AGENT = "3.3.1142.0"
BASIC_AGENT = "3.0.196.0"
TIMEOUT = 60
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
                   "http_proxy", "https_proxy", "all_proxy", "no_proxy")


def payload_bytes(size: int, seed: int) -> bytes:
    """Return pseudo-random bytes without 0x0A, because the plugin turns a payload of exactly b"\\n" into b"\\r"."""
    return random.Random(seed).randbytes(size).replace(b"\n", b"\x0b")


class World:
    """The emulator's SSM endpoint and data channel, an echo server behind port 80 and 22."""

    def __init__(self, short_tmp: str):
        self.echo = EchoServer()
        route = {80: ("127.0.0.1", self.echo.port), 22: ("127.0.0.1", self.echo.port)}
        self.emulator = Emulator([
            EmulatedInstance(MUX_TARGET, name="mux-1", agent_version=MUX_AGENT, port_map=dict(route)),
            EmulatedInstance(BASIC_TARGET, name="basic-1", agent_version=BASIC_AGENT, port_map=dict(route)),
        ])
        self.api = SsmApiServer(self.emulator)
        self.api.__enter__()
        self.data_channel = DataChannelServer(self.emulator).start()
        # The plugin sends a message before it adds it to its resend buffer, so an ack
        # that beats that step is lost and the plugin's reader can stall; a real
        # network is never this fast. Two milliseconds of latency keep clear of it.
        self.data_channel.faults.ack_delay = 0.002
        self.tmp = short_tmp
        self.runs: list[PluginRun] = []
        assert self.api.endpoint_url.startswith("http://127.0.0.1:")
        assert self.data_channel.url.startswith("ws://127.0.0.1:")

    def start(self, target: str, document: Optional[str] = None, parameters: Optional[dict] = None) -> "PluginRun":
        assert self.data_channel.kms is None, "KMS must stay off for the official plugin"
        response = start_session(self.emulator, target, document, parameters)
        assert response["StreamUrl"].startswith("ws://127.0.0.1:")
        request = {"Target": target}
        if document:
            request["DocumentName"] = document
        if parameters:
            request["Parameters"] = parameters
        run = PluginRun(self, response, request)
        self.runs.append(run)
        return run

    def channel(self, run: "PluginRun"):
        return self.data_channel.channel_for(run.session_id)

    def close(self) -> None:
        for run in self.runs:
            run.kill()
        self.data_channel.close()
        self.api.__exit__(None, None, None)
        self.echo.close()


class PluginRun:
    """One official plugin process, launched with the argv and environment ssmex builds."""

    def __init__(self, world: World, response: dict, request: dict):
        self.session_id = response["SessionId"]
        environment = {name: value for name, value in os.environ.items() if name not in PROXY_VARIABLES}
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
        # The mux socket goes in TMPDIR; a short private folder keeps the path under the Unix limit.
        environment["TMPDIR"] = world.tmp
        launch = build_launch(read_plugin(REAL_PLUGIN), response, request, REGION, None,
                              world.api.endpoint_url, base_environment=environment)
        assert launch.argv[6].startswith("http://127.0.0.1:")
        self.process = subprocess.Popen(launch.argv, env=launch.environment, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._output = bytearray()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            chunk = self.process.stdout.read1(65536)
            if not chunk:
                break
            with self._changed:
                self._output += chunk
                self._changed.notify_all()

    @property
    def output(self) -> bytes:
        with self._changed:
            return bytes(self._output)

    def wait_for(self, pattern: bytes, timeout: float = TIMEOUT) -> re.Match:
        compiled = re.compile(pattern)
        with self._changed:
            found = self._changed.wait_for(lambda: compiled.search(self._output), timeout)
        assert found, f"plugin output never matched {pattern!r}: {self.output!r}"
        return compiled.search(self.output)

    def wait_for_length(self, length: int, timeout: float = TIMEOUT) -> bytes:
        with self._changed:
            self._changed.wait_for(lambda: len(self._output) >= length, timeout)
        return self.output

    def wait_for_port(self) -> int:
        return int(self.wait_for(rb"Port (\d+) opened for sessionId").group(1))

    def finish(self, timeout: float = TIMEOUT) -> int:
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the plugin did not exit within {timeout} s; output: {self.output!r}") from None
        # Collect what the plugin wrote just before it exited.
        self._reader.join(timeout)
        return status

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def world():
    short_tmp = tempfile.mkdtemp(prefix="smp-")
    world = World(short_tmp)
    yield world
    world.close()


def echo_through(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    """Send `data` through the forwarded port while reading the echo; return what came back.

    The plugin closes a mux stream both ways once its local client shuts its write
    side, dropping replies still in flight, so by default the reader closes only
    after the whole echo arrived.
    """
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        def send() -> None:
            connection.sendall(data)
            if half_close:
                connection.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        while len(received) < len(data):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        sender.join(TIMEOUT)
    return bytes(received)


def parallel_echo(port: int, blocks: list[bytes]) -> list[bytes]:
    results: list[bytes] = [b""] * len(blocks)

    def worker(index: int) -> None:
        results[index] = echo_through(port, blocks[index])

    threads = [threading.Thread(target=worker, args=(index,), daemon=True) for index in range(len(blocks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    return results


def terminate(world: World, run: PluginRun) -> int:
    world.emulator.handle("TerminateSession", {"SessionId": run.session_id}, "AKIAEXAMPLEREFEREE")
    return run.finish()


PORT_DOCUMENT = "AWS-StartPortForwardingSession"
PORT_PARAMETERS = {"portNumber": ["80"], "localPortNumber": ["0"]}


# --- port forwarding ----------------------------------------------------------------------


def test_mux_port_forwarding_concurrent_connections(world):
    run = world.start(MUX_TARGET, PORT_DOCUMENT, PORT_PARAMETERS)
    port = run.wait_for_port()
    blocks = [payload_bytes(1_500_000 + index, index) for index in range(3)]

    results = parallel_echo(port, blocks)

    for sent, received in zip(blocks, results):
        assert hashlib.sha256(received).hexdigest() == hashlib.sha256(sent).hexdigest()
    run.wait_for(rb"Connection accepted for session \[")
    assert world.echo.connections == 3
    assert terminate(world, run) == 0
    assert b"Exiting session with sessionId" in run.output


def test_basic_port_forwarding_successive_connections(world):
    run = world.start(BASIC_TARGET, PORT_DOCUMENT, PORT_PARAMETERS)
    port = run.wait_for_port()

    for index in range(3):
        sent = payload_bytes(1_000_000 + index, 10 + index)
        received = echo_through(port, sent)
        assert received == sent, f"connection {index} came back altered"
        channel = world.channel(run)
        deadline = time.monotonic() + TIMEOUT
        while channel.flags.count(m.FLAG_DISCONNECT_TO_PORT) <= index and time.monotonic() < deadline:
            time.sleep(0.05)
        assert channel.flags.count(m.FLAG_DISCONNECT_TO_PORT) == index + 1

    assert world.echo.connections == 3
    assert terminate(world, run) == 0


def test_ssh_session_forwards_stdin_and_stdout(world):
    run = world.start(MUX_TARGET, "AWS-StartSSHSession", {"portNumber": ["22"]})
    sent = payload_bytes(1_200_000, 99)

    def feed() -> None:
        run.process.stdin.write(sent)
        run.process.stdin.flush()

    threading.Thread(target=feed, daemon=True).start()
    prefix = run.wait_for(rb"Starting session with SessionId: [^\n]*\n").end()
    received = run.wait_for_length(prefix + len(sent))[prefix:prefix + len(sent)]

    assert received == sent
    run.process.stdin.close()
    assert run.finish() == 0
    assert world.channel(run).flags == []


# --- shell and command sessions ----------------------------------------------------------------


def test_shell_session_runs_commands_and_reports_size(world):
    run = world.start(MUX_TARGET)
    run.wait_for(rb"\$ ")

    run.process.stdin.write(b"echo referee\n")
    run.process.stdin.flush()
    run.wait_for(rb"referee\r\n\$ ")
    run.process.stdin.write(b"exit 3\n")
    run.process.stdin.flush()

    assert run.finish() == 0
    # The plugin writes an ExitCode payload to stdout like any other payload and exits 0.
    assert re.search(rb"exit 3\r\n3\n*\n*Exiting session with sessionId", run.output), run.output
    # With stdout not a terminal the plugin reports 300 columns and 100 rows.
    assert world.channel(run).sizes[:1] == [(300, 100)]


def test_command_session_exit_code(world):
    run = world.start(MUX_TARGET, "AWS-StartNonInteractiveCommand", {"command": ["exit 7"]})

    assert run.finish() == 0
    assert re.search(rb"\n7\n\nExiting session with sessionId", run.output), run.output
    assert world.emulator.sessions[run.session_id].status == "Terminated"


# --- resume, faults and endings -------------------------------------------------------------


def wait_until(condition, description: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {description}"
        time.sleep(0.02)


def test_idle_websocket_drop_is_resumed(world):
    run = world.start(MUX_TARGET, PORT_DOCUMENT, PORT_PARAMETERS)
    port = run.wait_for_port()
    assert echo_through(port, b"before the drop") == b"before the drop"
    channel = world.channel(run)
    wait_until(lambda: channel.reliable.unacked_count() == 0, "the emulator's output to be acknowledged")

    assert channel.drop_websocket()
    wait_until(lambda: world.emulator.calls_of("ResumeSession") and channel.ws is not None, "the plugin to resume")
    sent = payload_bytes(1_000_000, 7)
    received = echo_through(port, sent)

    assert received == sent
    assert len(world.emulator.calls_of("ResumeSession")) == 1
    assert terminate(world, run) == 0


# NOTE: plugin 1.2.677.0 keeps reading and sending while its websocket is down. A failed send
# of its own data ends the upload of the port session for good. A failed ack of a message it
# has already written out makes it process that message again when it is resent. So a drop
# in the middle of a transfer can stall or corrupt it, whatever the service side does.
@pytest.mark.xfail(reason="the official plugin stops its upload after a failed send, or writes a message twice after a "
                          "failed ack, when the websocket drops mid-transfer", strict=False)
def test_websocket_drop_mid_transfer_is_resumed(world):
    run = world.start(MUX_TARGET, PORT_DOCUMENT, PORT_PARAMETERS)
    port = run.wait_for_port()
    world.data_channel.faults.drop_websocket_after = 200
    sent = payload_bytes(1_000_000, 7)

    received = echo_through(port, sent)

    assert received == sent
    assert len(world.emulator.calls_of("ResumeSession")) >= 1
    assert echo_through(port, b"after the resume") == b"after the resume"
    assert terminate(world, run) == 0


FAULTS = {
    "ack_delay": 0.3,
    "lose_ack_every": 7,
    "lose_input_every": 9,
    "lose_output_every": 5,
    "duplicate_output_every": 4,
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_transfer_survives_fault(world, name):
    run = world.start(MUX_TARGET, PORT_DOCUMENT, PORT_PARAMETERS)
    port = run.wait_for_port()
    setattr(world.data_channel.faults, name, FAULTS[name])
    blocks = [payload_bytes(150_000, index) for index in range(2)]

    results = parallel_echo(port, blocks)

    assert results == blocks
    setattr(world.data_channel.faults, name, 0)
    assert terminate(world, run) == 0


def test_refused_port_prints_connection_failed(world):
    run = world.start(MUX_TARGET, PORT_DOCUMENT, PORT_PARAMETERS)
    port = run.wait_for_port()
    world.data_channel.faults.refused_ports.add(80)

    assert echo_through(port, b"nobody listens") == b""
    run.wait_for(rb"Connection to destination port failed, check SSM Agent logs\.")
    world.data_channel.faults.refused_ports.clear()
    assert echo_through(port, b"listening again") == b"listening again"
    assert terminate(world, run) == 0


@pytest.mark.parametrize("target", [MUX_TARGET, BASIC_TARGET])
def test_ctrl_c_sends_terminate_session(world, target):
    run = world.start(target, PORT_DOCUMENT, PORT_PARAMETERS)
    port = run.wait_for_port()
    assert echo_through(port, b"before ctrl-c") == b"before ctrl-c"

    run.process.send_signal(signal.SIGINT)

    assert run.finish() == 0
    assert b"Terminate signal received, exiting." in run.output
    channel = world.channel(run)
    deadline = time.monotonic() + TIMEOUT
    while world.emulator.sessions[run.session_id].status != "Terminated" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert m.FLAG_TERMINATE_SESSION in channel.flags
    assert world.emulator.sessions[run.session_id].status == "Terminated"


def test_channel_closed_ends_plugin(world):
    run = world.start(MUX_TARGET, PORT_DOCUMENT, PORT_PARAMETERS)
    run.wait_for_port()

    assert terminate(world, run) == 0
    assert f"\n\nExiting session with sessionId: {run.session_id}.\n\n".encode() in run.output
    assert world.emulator.calls_of("TerminateSession") == []
