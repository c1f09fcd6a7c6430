"""KMS-encrypted sessions between the native client and the emulator, with a loopback KMS."""

import hashlib
import os

import botocore.session
import pytest

from ssmex.datachannel.client import SessionOptions
from ssmex.emulator.api import Emulator, EmulatedInstance
from ssmex.emulator.datachannel import DataChannelServer
from ssmex.emulator.harness import ClientThread, CountingResume, EchoServer, start_session
from ssmex.emulator.kms import FakeKms

from test_native_port import exchange
from test_native_sessions import Pipes

TARGET = "i-0123456789abcdef0"
TIMEOUT = 30


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kms():
    server = FakeKms().start()
    yield server
    server.close()


@pytest.fixture
def emulator(kms):
    echo = EchoServer()
    instance = EmulatedInstance(TARGET, name="web-1", port_map={80: ("127.0.0.1", echo.port)})
    emulator = Emulator([instance])
    server = DataChannelServer(emulator).start()
    server.kms = kms
    server.kms_key_id = "alias/session-manager"
    emulator.test_server = server
    yield emulator
    server.close()
    echo.close()


def kms_factory(kms):
    def create():
        return botocore.session.get_session().create_client(
            "kms", region_name="us-east-1", endpoint_url=kms.endpoint_url)
    return create


def test_kms_shell_session(emulator, kms):
    pipes = Pipes()
    response = start_session(emulator, TARGET)
    options = SessionOptions(stdin=pipes.stdin, stdout=pipes.stdout, target=TARGET,
                             kms_client_factory=kms_factory(kms))
    client = ClientThread(response, CountingResume(emulator, response["SessionId"]), options=options)

    pipes.type("whoami\recho ünïcode\rexit 2\r".encode())

    assert client.join(TIMEOUT)
    assert client.error is None
    assert client.exit_code == 2
    output = pipes.finish().decode()
    assert "\r\nssm-user\r\n" in output
    assert "\r\nünïcode\r\n" in output
    assert kms.contexts == [{"aws:ssm:SessionId": response["SessionId"], "aws:ssm:TargetId": TARGET}]
    assert emulator.test_server.channel_for(response["SessionId"]).cipher is not None


def test_kms_mux_port_session(emulator, kms):
    response = start_session(emulator, TARGET, "AWS-StartPortForwardingSession", {"portNumber": ["80"]})
    options = SessionOptions(target=TARGET, kms_client_factory=kms_factory(kms))
    client = ClientThread(response, CountingResume(emulator, response["SessionId"]), options=options)
    port = client.wait_for_port()
    data = os.urandom(1024 * 1024)

    echoed = exchange(port, data)

    assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
    emulator.handle("TerminateSession", {"SessionId": response["SessionId"]}, "AKIAEXAMPLE")
    assert client.join(TIMEOUT)
    assert client.error is None


def test_kms_without_client_ends_session(emulator, kms):
    response = start_session(emulator, TARGET)
    client = ClientThread(response, CountingResume(emulator, response["SessionId"]))

    assert client.join(TIMEOUT)
    assert client.error is None
    assert client.exit_code == 0
    assert "KMS encryption failed: the client did not accept the KMSEncryption action" in client.status.text
    assert kms.contexts == []
