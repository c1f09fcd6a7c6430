import os
import threading

import pytest

from ssmex.datachannel.client import SessionOptions
from ssmex.emulator.api import Emulator, EmulatedInstance
from ssmex.emulator.datachannel import DataChannelServer
from ssmex.emulator.harness import ClientThread, CountingResume, EchoServer, start_session

TARGET = "i-0123456789abcdef0"
TIMEOUT = 30


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ssh_server():
    server = EchoServer(banner=b"SSH-2.0-emulated\r\n")
    yield server
    server.close()


@pytest.fixture
def emulator(ssh_server):
    instance = EmulatedInstance(TARGET, name="web-1", port_map={22: ("127.0.0.1", ssh_server.port)})
    emulator = Emulator([instance])
    server = DataChannelServer(emulator).start()
    yield emulator
    server.close()


class Pipes:
    """stdin and stdout of a client as OS pipes, with stdout collected on a thread."""

    def __init__(self):
        stdin_read, self.stdin_write = os.pipe()
        self.stdout_read, stdout_write = os.pipe()
        self.stdin = open(stdin_read, "rb", buffering=0)
        self.stdout = open(stdout_write, "wb", buffering=0)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self):
        while True:
            chunk = os.read(self.stdout_read, 65536)
            if not chunk:
                return
            self.output += chunk

    def type(self, data: bytes):
        os.write(self.stdin_write, data)

    def close_stdin(self):
        os.close(self.stdin_write)

    def finish(self) -> bytes:
        self.stdout.close()
        self._reader.join(TIMEOUT)
        return bytes(self.output)


def run_client(emulator, document, parameters=None, pipes=None):
    response = start_session(emulator, TARGET, document, parameters)
    resume = CountingResume(emulator, response["SessionId"])
    options = SessionOptions(stdin=pipes.stdin, stdout=pipes.stdout)
    return response, ClientThread(response, resume, options=options)


def test_stdio_forwarding_only_tunnel_bytes(emulator):
    pipes = Pipes()
    response, client = run_client(emulator, "AWS-StartSSHSession", {"portNumber": ["22"]}, pipes)
    data = os.urandom(300_000)

    pipes.type(data)
    # Wait for the echo before closing stdin, as ssh would.
    deadline_hit = not _wait_until(lambda: len(pipes.output) >= len(data) + 18)
    pipes.close_stdin()

    assert client.join(TIMEOUT)
    assert not deadline_hit
    assert client.error is None
    assert client.exit_code == 0
    assert pipes.finish() == b"SSH-2.0-emulated\r\n" + data
    assert "Starting session with SessionId" in client.status.text


def _wait_until(condition, timeout=TIMEOUT):
    event = threading.Event()
    for _ in range(int(timeout * 20)):
        if condition():
            return True
        event.wait(0.05)
    return condition()


def test_shell_commands_and_exit_code(emulator):
    pipes = Pipes()
    response, client = run_client(emulator, None, None, pipes)

    pipes.type("whoami\rhostname\recho grüße 👋\rnosuch\rexit 3\r".encode())

    assert client.join(TIMEOUT)
    assert client.error is None
    assert client.exit_code == 3
    output = pipes.finish().decode()
    assert "\r\nssm-user\r\n" in output
    assert "\r\nweb-1\r\n" in output
    assert "\r\ngrüße 👋\r\n" in output
    assert "sh: nosuch: command not found" in output
    assert f"Exiting session with sessionId: {response['SessionId']}." in client.status.text


def test_shell_piped_stdin_eof_ends_session(emulator):
    pipes = Pipes()
    _, client = run_client(emulator, "SSM-SessionManagerRunShell", None, pipes)

    pipes.type(b"echo one\r")
    pipes.close_stdin()

    assert client.join(TIMEOUT)
    assert client.exit_code == 0
    assert "one\r\n" in pipes.finish().decode()


def test_shell_ctrl_c_sent_as_byte(emulator):
    pipes = Pipes()
    _, client = run_client(emulator, None, None, pipes)

    pipes.type(b"echo partial\x03exit 5\r")

    assert client.join(TIMEOUT)
    assert client.exit_code == 5
    output = pipes.finish().decode()
    assert "^C\r\n" in output
    assert "\r\npartial\r\n" not in output


def test_noninteractive_command_exit_code_and_stderr(emulator):
    pipes = Pipes()
    _, client = run_client(emulator, "AWS-StartNonInteractiveCommand", {"command": ["nosuch --flag"]}, pipes)

    assert client.join(TIMEOUT)
    assert client.error is None
    assert client.exit_code == 127
    assert pipes.finish() == b""
    assert "sh: nosuch: command not found" in client.status.text


def test_interactive_command_output(emulator):
    pipes = Pipes()
    _, client = run_client(emulator, "AWS-StartInteractiveCommand", {"command": ["whoami"]}, pipes)

    assert client.join(TIMEOUT)
    assert client.exit_code == 0
    assert pipes.finish() == b"ssm-user\r\n"
