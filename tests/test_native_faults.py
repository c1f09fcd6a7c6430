"""The native client against the emulator's fault switches: drops, losses, delays, refusals."""

import hashlib
import os
import socket
import threading

import pytest

from ssmex.emulator.api import Emulator, EmulatedInstance
from ssmex.emulator.datachannel import DataChannelServer
from ssmex.emulator.harness import ClientThread, CountingResume, EchoServer, start_session

TARGET = "i-0123456789abcdef0"
MUX_AGENT = "3.3.1142.0"
BASIC_AGENT = "3.0.196.0"
TIMEOUT = 60


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def setup(echo):
    servers = []

    def build(agent_version=MUX_AGENT):
        instance = EmulatedInstance(TARGET, agent_version=agent_version,
                                    port_map={80: ("127.0.0.1", echo.port), 25: ("127.0.0.1", echo.port)})
        emulator = Emulator([instance])
        server = DataChannelServer(emulator).start()
        servers.append(server)
        return emulator, server

    yield build
    for server in servers:
        server.close()


def open_session(emulator, port="80"):
    response = start_session(emulator, TARGET, "AWS-StartPortForwardingSession", {"portNumber": [port]})
    resume = CountingResume(emulator, response["SessionId"])
    client = ClientThread(response, resume)
    return response, resume, client, client.wait_for_port()


def echo_exchange(port, data, *, half_close=True):
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        def send():
            connection.sendall(data)
            if half_close:
                connection.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        while half_close or len(received) < len(data):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        sender.join(TIMEOUT)
    return bytes(received)


def terminate(emulator, client, response):
    emulator.handle("TerminateSession", {"SessionId": response["SessionId"]}, "AKIAEXAMPLE")
    assert client.join(TIMEOUT)
    assert client.error is None
    assert client.exit_code == 0


def wait_until(condition, timeout=TIMEOUT):
    event = threading.Event()
    for _ in range(int(timeout * 20)):
        if condition():
            return True
        event.wait(0.05)
    return condition()


def digest(data):
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("agent_version", [MUX_AGENT, BASIC_AGENT], ids=["mux", "basic"])
def test_resume_after_dropped_websocket(setup, agent_version):
    emulator, server = setup(agent_version)
    server.faults.drop_websocket_after = 700
    response, resume, client, port = open_session(emulator)
    data = os.urandom(2 * 1024 * 1024)

    echoed = echo_exchange(port, data, half_close=agent_version == MUX_AGENT)

    assert digest(echoed) == digest(data)
    assert resume.calls == 1
    assert server.faults.drop_websocket_after is None
    terminate(emulator, client, response)


def test_resume_without_token_ends_session(setup):
    emulator, server = setup()
    response, resume, client, port = open_session(emulator)
    # A session that ended on the service side resumes with no token.
    emulator.sessions[response["SessionId"]].status = "Terminated"
    server.faults.drop_websocket_after = 1

    echo_exchange(port, b"x" * 10, half_close=True)

    assert client.join(TIMEOUT)
    assert client.error is None
    assert client.exit_code == 0
    assert f"Session: {response['SessionId']} timed out." in client.status.text


@pytest.mark.parametrize(
    "switch",
    [
        {"lose_input_every": 7},
        {"lose_output_every": 5},
        {"duplicate_output_every": 3},
        {"lose_ack_every": 4},
        # Longer than the 1 s maximum RTO, so every message is resent at least once.
        {"ack_delay": 1.5},
    ],
    ids=lambda switch: next(iter(switch)),
)
def test_fault_switch_keeps_bytes_exact(setup, switch):
    emulator, server = setup()
    for name, value in switch.items():
        setattr(server.faults, name, value)
    response, _, client, port = open_session(emulator)
    data = os.urandom(512 * 1024)

    echoed = echo_exchange(port, data)

    assert len(echoed) == len(data)
    assert digest(echoed) == digest(data)
    channel = server.channel_for(response["SessionId"])
    if "lose_output_every" in switch:
        assert channel.reliable.resent_count > 0
    if "lose_ack_every" in switch or "ack_delay" in switch:
        # The client resends what it saw no ack for, and the emulator drops the copies.
        assert wait_until(lambda: channel.duplicates_received > 0)
    terminate(emulator, client, response)


def test_all_faults_together_two_megabytes(setup):
    emulator, server = setup()
    faults = server.faults
    faults.lose_input_every = 11
    faults.lose_output_every = 13
    faults.duplicate_output_every = 17
    faults.lose_ack_every = 19
    faults.drop_websocket_after = 900
    response, resume, client, port = open_session(emulator)
    data = [os.urandom(2 * 1024 * 1024) for _ in range(3)]
    results = [None] * len(data)

    def run(index):
        results[index] = echo_exchange(port, data[index])

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(len(data))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)

    for index in range(len(data)):
        assert results[index] is not None
        assert digest(results[index]) == digest(data[index])
    assert resume.calls == 1
    terminate(emulator, client, response)


def test_refused_port_reports_connect_error(setup):
    emulator, server = setup()
    server.faults.refused_ports.add(80)
    response, _, client, port = open_session(emulator)

    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        connection.sendall(b"hello")
        assert connection.recv(100) == b""

    assert client.status.wait_for("Connection to destination port failed, check SSM Agent logs.", TIMEOUT)
    terminate(emulator, client, response)


def test_unmapped_port_refused(setup):
    emulator, _ = setup()
    response, _, client, port = open_session(emulator, port="5432")

    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        assert connection.recv(100) == b""

    assert client.status.wait_for("Connection to destination port failed", TIMEOUT)
    terminate(emulator, client, response)


def test_non_loopback_destination_refused(setup):
    emulator, _ = setup()
    emulator.instances[TARGET].port_map[80] = ("192.0.2.10", 80)
    response, _, client, port = open_session(emulator)

    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        assert connection.recv(100) == b""

    assert client.status.wait_for("Connection to destination port failed", TIMEOUT)
    terminate(emulator, client, response)
