import hashlib
import os
import socket
import threading

import pytest

from ssmex.datachannel import message as m
from ssmex.datachannel.client import SessionOptions
from ssmex.emulator.api import Emulator, EmulatedInstance
from ssmex.emulator.datachannel import DataChannelServer
from ssmex.emulator.harness import ClientThread, CountingResume, EchoServer, start_session

MUX_AGENT = "3.3.1142.0"
BASIC_AGENT = "3.0.196.0"
TIMEOUT = 30


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


def make_emulator(echo, agent_version):
    instance = EmulatedInstance("i-0123456789abcdef0", name="web-1", agent_version=agent_version,
                                port_map={80: ("127.0.0.1", echo.port), 81: ("127.0.0.1", echo.port)})
    return Emulator([instance])


@pytest.fixture
def emulator_factory(echo):
    servers = []

    def build(agent_version):
        emulator = make_emulator(echo, agent_version)
        server = DataChannelServer(emulator).start()
        servers.append(server)
        return emulator, server

    yield build
    for server in servers:
        server.close()


def start_port_session(emulator, port="80"):
    response = start_session(emulator, "i-0123456789abcdef0", "AWS-StartPortForwardingSession",
                             {"portNumber": [port], "localPortNumber": ["0"]})
    resume = CountingResume(emulator, response["SessionId"])
    return response, resume, ClientThread(response, resume)


def exchange(port, data, timeout=TIMEOUT, *, half_close=True):
    """Send `data` through the tunnel while reading the echo; return what came back.

    Basic mode ends the remote connection when the local client shuts its
    write side, as the plugin does, so there the reader stops after len(data) bytes.
    """
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
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
        sender.join(timeout)
    return bytes(received)


def end_session(emulator, client, response):
    emulator.handle("TerminateSession", {"SessionId": response["SessionId"]}, "AKIAEXAMPLE")
    assert client.join(TIMEOUT), "client did not exit after TerminateSession"
    assert client.error is None
    assert client.exit_code == 0


@pytest.mark.parametrize("agent_version", [MUX_AGENT, BASIC_AGENT], ids=["mux", "basic"])
def test_port_echo_small(emulator_factory, agent_version):
    emulator, _ = emulator_factory(agent_version)
    response, _, client = start_port_session(emulator)
    port = client.wait_for_port()

    data = b"hello through the tunnel\n"
    assert exchange(port, data, half_close=agent_version == MUX_AGENT) == data

    end_session(emulator, client, response)
    assert f"Exiting session with sessionId: {response['SessionId']}." in client.status.text


def test_mux_concurrent_two_megabytes(emulator_factory):
    emulator, _ = emulator_factory(MUX_AGENT)
    response, _, client = start_port_session(emulator)
    port = client.wait_for_port()
    payloads = [os.urandom(2 * 1024 * 1024) for _ in range(4)]
    results = [None] * len(payloads)

    def run(index):
        results[index] = exchange(port, payloads[index])

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    for index, payload in enumerate(payloads):
        assert results[index] is not None, f"connection {index} did not finish"
        assert len(results[index]) == len(payload)
        assert hashlib.sha256(results[index]).digest() == hashlib.sha256(payload).digest()
    assert "Waiting for connections..." in client.status.text
    assert client.status.text.count("Connection accepted for session") == 1
    end_session(emulator, client, response)


def test_basic_successive_connections(emulator_factory, echo):
    emulator, server = emulator_factory(BASIC_AGENT)
    response, _, client = start_port_session(emulator)
    port = client.wait_for_port()
    payloads = [os.urandom(2 * 1024 * 1024), b"second", os.urandom(100_000)]

    for payload in payloads:
        assert exchange(port, payload, half_close=False) == payload

    channel = server.channel_for(response["SessionId"])
    assert channel.flags.count(m.FLAG_DISCONNECT_TO_PORT) >= 2
    assert echo.connections == 3
    end_session(emulator, client, response)


def test_unix_socket_listener(emulator_factory, tmp_path):
    emulator, _ = emulator_factory(MUX_AGENT)
    path = str(tmp_path / "forward.sock")
    response = start_session(emulator, "i-0123456789abcdef0", "AWS-StartPortForwardingSession",
                             {"portNumber": ["80"], "localUnixSocket": [path]})
    client = ClientThread(response, CountingResume(emulator, response["SessionId"]))

    assert client.status.wait_for(f"Unix socket {path} opened for sessionId {response['SessionId']}.", TIMEOUT)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(TIMEOUT)
        connection.connect(path)
        connection.sendall(b"over a unix socket")
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(1024):
            received += chunk

    assert received == b"over a unix socket"
    end_session(emulator, client, response)


def test_fixed_local_port_used(emulator_factory):
    emulator, _ = emulator_factory(MUX_AGENT)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    response = start_session(emulator, "i-0123456789abcdef0", "AWS-StartPortForwardingSession",
                             {"portNumber": ["80"], "localPortNumber": [str(free_port)]})
    listening = []
    options = SessionOptions(on_listening=listening.append)
    client = ClientThread(response, CountingResume(emulator, response["SessionId"]), options=options)

    assert client.wait_for_port() == free_port
    assert listening == [free_port]
    end_session(emulator, client, response)


def test_local_port_in_use_fails(emulator_factory):
    emulator, _ = emulator_factory(MUX_AGENT)
    with socket.create_server(("127.0.0.1", 0)) as occupied:
        busy_port = occupied.getsockname()[1]
        response = start_session(emulator, "i-0123456789abcdef0", "AWS-StartPortForwardingSession",
                                 {"portNumber": ["80"], "localPortNumber": [str(busy_port)]})
        client = ClientThread(response, CountingResume(emulator, response["SessionId"]))

        assert client.join(TIMEOUT)

    assert client.error is not None
    assert "Cannot perform start session" in str(client.error)
    assert "in use" in str(client.error)
