"""The native client against scripted fake services: errors, deadlines and secrets."""

import json
import logging
import socket
import threading

import pytest
import websockets.sync.server

from ssmex.datachannel import channel as channel_module
from ssmex.datachannel import message as m
from ssmex.datachannel.client import DataChannelError, SessionOptions, run_session
from ssmex.emulator.harness import StatusCapture
from ssmex.errors import ExitCode

TIMEOUT = 10


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


class FakeService:
    """A websocket server on 127.0.0.1 that runs `script(ws)` for each connection."""

    def __init__(self, script):
        self.openings = []
        self._script = script
        self._server = websockets.sync.server.serve(self._handle, "127.0.0.1", 0, compression=None)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/v1/data-channel/s-1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _handle(self, ws):
        self.openings.append(json.loads(ws.recv(timeout=TIMEOUT)))
        self._script(ws)

    def close(self):
        self._server.shutdown()


def handshake(ws, session_type="Standard_Stream", properties=None):
    request = {"AgentVersion": "3.3.1142.0", "RequestedClientActions": [{
        "ActionType": "SessionType",
        "ActionParameters": {"SessionType": session_type, "Properties": properties or {}}}]}
    ws.send(m.encode(m.OUTPUT_STREAM_DATA, 0, m.PAYLOAD_HANDSHAKE_REQUEST, json.dumps(request).encode()))


def options(**extra):
    status = StatusCapture()
    return SessionOptions(status=status, stderr=status, stdout=status, stdin=None,
                          install_signal_handlers=False, **extra)


def run(service, token="token-abc-123", **extra):
    response = {"SessionId": "s-1", "TokenValue": token, "StreamUrl": service.url}
    session_options = options(**extra)
    return run_session(response, lambda: None, session_options), session_options.status


def test_opening_message_fields():
    def script(ws):
        ws.send(m.encode(m.CHANNEL_CLOSED, 0, 0, m.channel_closed_payload("s-1")))
        ws.recv(timeout=TIMEOUT)

    service = FakeService(script)
    try:
        exit_code, status = run(service)
    finally:
        service.close()

    assert exit_code == 0
    opening = service.openings[0]
    assert list(opening) == ["MessageSchemaVersion", "RequestId", "TokenValue", "ClientId", "ClientVersion"]
    assert opening["MessageSchemaVersion"] == "1.0"
    assert opening["TokenValue"] == "token-abc-123"
    assert "Exiting session with sessionId: s-1." in status.text


def test_channel_closed_output_printed():
    def script(ws):
        ws.send(m.encode(m.CHANNEL_CLOSED, 0, 0, m.channel_closed_payload("s-1", "idle timeout")))
        ws.recv(timeout=TIMEOUT)

    service = FakeService(script)
    try:
        _, status = run(service)
    finally:
        service.close()

    assert "SessionId: s-1 : idle timeout" in status.text


def test_handshake_timeout_raises():
    service = FakeService(lambda ws: ws.recv(timeout=TIMEOUT))
    try:
        with pytest.raises(DataChannelError, match="timed out after 0.5 s waiting for the handshake"):
            run(service, handshake_timeout=0.5)
    finally:
        service.close()


@pytest.mark.parametrize(
    "frame",
    [b"short", m.encode(m.OUTPUT_STREAM_DATA, 0, 1, b"abc")[:-1]],
    ids=["short", "digest"],
)
def test_bad_frame_raises(frame):
    def script(ws):
        ws.send(frame)
        ws.recv(timeout=TIMEOUT)

    service = FakeService(script)
    try:
        with pytest.raises(DataChannelError, match="received an invalid message from the service"):
            run(service)
    finally:
        service.close()


def test_bad_smux_frame_raises():
    def script(ws):
        handshake(ws, "Port", {"type": "LocalPortForwarding", "portNumber": "80", "localPortNumber": "0"})
        ws.recv(timeout=TIMEOUT)
        ws.send(m.encode(m.OUTPUT_STREAM_DATA, 1, m.PAYLOAD_HANDSHAKE_COMPLETE, b'{"CustomerMessage":""}'))
        ws.send(m.encode(m.OUTPUT_STREAM_DATA, 2, m.PAYLOAD_OUTPUT, b"\x07" * 16))
        for _ in range(10):
            ws.recv(timeout=TIMEOUT)

    service = FakeService(script)
    try:
        with pytest.raises(DataChannelError, match="smux frame has version 7"):
            run(service)
    finally:
        service.close()


def test_unknown_session_type_ends_session():
    def script(ws):
        handshake(ws, "Telepathy")
        while True:
            response = m.decode(ws.recv(timeout=TIMEOUT))
            if response.message_type == m.INPUT_STREAM_DATA:
                break
        service.response = json.loads(response.payload)
        ws.send(m.encode(m.OUTPUT_STREAM_DATA, 1, m.PAYLOAD_HANDSHAKE_COMPLETE, b'{"CustomerMessage":"hi"}'))
        for _ in range(10):
            ws.recv(timeout=TIMEOUT)

    service = FakeService(script)
    try:
        exit_code, status = run(service)
    finally:
        service.close()

    assert exit_code == 0
    assert "Cannot perform start session: unable to determine SessionType" in status.text
    assert service.response["ProcessedClientActions"][0]["ActionStatus"] == 2
    assert "hi\n" in status.text


def test_unreachable_stream_url_raises():
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    response = {"SessionId": "s-1", "TokenValue": "token-abc-123",
                "StreamUrl": f"ws://127.0.0.1:{port}/v1/data-channel/s-1"}

    with pytest.raises(DataChannelError, match="could not connect to the StreamUrl") as error:
        run_session(response, lambda: None, options(connect_timeout=1, connect_attempts=2))

    assert error.value.exit_code == ExitCode.NETWORK
    assert "token-abc-123" not in str(error.value)


def test_missing_response_field_raises():
    with pytest.raises(DataChannelError, match="lacks TokenValue"):
        run_session({"SessionId": "s-1", "StreamUrl": "ws://127.0.0.1:9/x"}, lambda: None, options())


def test_resume_failures_retried_and_token_kept_secret(caplog):
    connections = []

    def script(ws):
        connections.append(ws)
        if len(connections) == 1:
            ws.socket.shutdown(socket.SHUT_RDWR)
            return
        ws.send(m.encode(m.CHANNEL_CLOSED, 0, 0, m.channel_closed_payload("s-1")))
        ws.recv(timeout=TIMEOUT)

    calls = []

    def resume():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("ResumeSession failed for token first-secret-token")
        return "second-secret-token"

    service = FakeService(script)
    caplog.set_level(logging.DEBUG, logger="ssmex")
    try:
        response = {"SessionId": "s-1", "TokenValue": "first-secret-token", "StreamUrl": service.url}
        exit_code = run_session(response, resume, options())
    finally:
        service.close()

    assert exit_code == 0
    assert len(calls) == 2
    assert service.openings[1]["TokenValue"] == "second-secret-token"
    assert service.openings[0]["ClientId"] == service.openings[1]["ClientId"]
    assert "ResumeSession for session s-1 failed" in caplog.text
    assert "first-secret-token" not in caplog.text
    assert "second-secret-token" not in caplog.text


def test_unacknowledged_message_ends_session(monkeypatch):
    # The fake never acks the HandshakeResponse, so the client resends it until it gives up.
    monkeypatch.setattr(channel_module, "MAX_RESENDS_OF_ONE_MESSAGE", 3)

    def script(ws):
        handshake(ws)
        for _ in range(200):
            ws.recv(timeout=TIMEOUT)

    service = FakeService(script)
    try:
        with pytest.raises(DataChannelError, match="stopped acknowledging session s-1"):
            run(service)
    finally:
        service.close()


def test_service_rejecting_every_websocket_ends_session():
    def script(ws):
        ws.close(1008, "rejected")

    service = FakeService(script)
    calls = []

    def resume():
        calls.append(1)
        return f"token-{len(calls)}"

    try:
        response = {"SessionId": "s-1", "TokenValue": "token-0", "StreamUrl": service.url}
        with pytest.raises(DataChannelError, match="closed 7 websockets of session s-1 in a row"):
            run_session(response, resume, options())
    finally:
        service.close()

    assert len(calls) == 6
