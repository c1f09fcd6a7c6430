"""Bad input to the emulator's data channel closes only the websocket it came on."""

import json
import struct
import uuid

import pytest
import websockets.sync.client
from websockets.exceptions import ConnectionClosed

from ssmex.datachannel import message as m
from ssmex.emulator.api import Emulator, EmulatedInstance
from ssmex.emulator.datachannel import DataChannelServer, start_data_channel_server
from ssmex.emulator.harness import ClientThread, CountingResume, EchoServer, start_session
from ssmex.emulator.responders import DestinationRefused, resolve_destination

TARGET = "i-0123456789abcdef0"
TIMEOUT = 10


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
def emulator(echo):
    instance = EmulatedInstance(TARGET, agent_version="3.3.1142.0", port_map={80: ("127.0.0.1", echo.port)})
    emulator = Emulator([instance])
    server = DataChannelServer(emulator).start()
    emulator.test_server = server
    yield emulator
    server.close()


def connect(url):
    return websockets.sync.client.connect(url, open_timeout=TIMEOUT, compression=None, proxy=None)


def opening(token):
    return json.dumps({"MessageSchemaVersion": "1.0", "RequestId": str(uuid.uuid4()), "TokenValue": token,
                       "ClientId": str(uuid.uuid4()), "ClientVersion": "1.2.677.0"})


def recv_message(ws):
    return m.decode_and_validate(ws.recv(timeout=TIMEOUT))


def expect_closed(ws, code):
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(20):
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code


def port_session(emulator):
    return start_session(emulator, TARGET, "AWS-StartPortForwardingSession", {"portNumber": ["80"]})


def test_handshake_request_matches_document(emulator):
    response = port_session(emulator)

    with connect(response["StreamUrl"]) as ws:
        ws.send(opening(response["TokenValue"]))
        request = recv_message(ws)

    assert request.message_type == m.OUTPUT_STREAM_DATA
    assert request.sequence_number == 0
    assert request.payload_type == m.PAYLOAD_HANDSHAKE_REQUEST
    body = json.loads(request.payload)
    assert body["AgentVersion"] == "3.3.1142.0"
    action = body["RequestedClientActions"][0]
    assert action["ActionType"] == "SessionType"
    assert action["ActionParameters"]["SessionType"] == "Port"
    assert action["ActionParameters"]["Properties"] == {
        "portNumber": "80", "type": "LocalPortForwarding", "localPortNumber": "0"}


def test_wrong_token_rejected(emulator):
    response = port_session(emulator)

    with connect(response["StreamUrl"]) as ws:
        ws.send(opening("not-the-token-value"))
        expect_closed(ws, 1008)

    rejections = emulator.test_server.rejections
    assert len(rejections) == 1
    assert "wrong TokenValue" in rejections[0]
    assert "not-the-token-value" not in rejections[0]
    assert response["TokenValue"] not in rejections[0]


def test_unknown_session_rejected(emulator):
    response = port_session(emulator)
    url = response["StreamUrl"].replace(response["SessionId"], "emulator-doesnotexist")

    with connect(url) as ws:
        ws.send(opening(response["TokenValue"]))
        expect_closed(ws, 1008)

    assert "unknown session 'emulator-doesnotexist'" in emulator.test_server.rejections[0]


def test_binary_opening_rejected(emulator):
    response = port_session(emulator)

    with connect(response["StreamUrl"]) as ws:
        ws.send(opening(response["TokenValue"]).encode())
        expect_closed(ws, 1002)

    assert "not a TEXT frame" in emulator.test_server.rejections[0]


def corrupt_short(frame):
    return frame[:100]


def corrupt_digest(frame):
    return frame[:80] + b"\x00" * 32 + frame[112:]


def corrupt_truncated(frame):
    return frame[:-3]


def corrupt_created_date(frame):
    return frame[:40] + struct.pack(">Q", 0) + frame[48:]


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (corrupt_short, "shorter than the 120-byte header"),
        (corrupt_digest, "digest mismatch"),
        (corrupt_truncated, "digest mismatch"),
        (corrupt_created_date, "CreatedDate is 0"),
    ],
    ids=["short", "digest", "truncated", "created-date"],
)
def test_bad_frame_closes_only_its_websocket(emulator, corrupt, reason):
    # A healthy session on the same server keeps working afterwards.
    healthy = port_session(emulator)
    client = ClientThread(healthy, CountingResume(emulator, healthy["SessionId"]))
    client.wait_for_port()
    response = port_session(emulator)
    frame = m.encode(m.INPUT_STREAM_DATA, 0, m.PAYLOAD_OUTPUT, b"some bytes")

    with connect(response["StreamUrl"]) as ws:
        ws.send(opening(response["TokenValue"]))
        recv_message(ws)
        ws.send(corrupt(frame))
        expect_closed(ws, 1002)

    rejections = emulator.test_server.rejections
    assert len(rejections) == 1
    assert reason in rejections[0]
    assert response["SessionId"] in rejections[0]
    emulator.handle("TerminateSession", {"SessionId": healthy["SessionId"]}, "AKIAEXAMPLE")
    assert client.join(TIMEOUT)
    assert client.error is None


def test_reconnect_after_bad_frame_keeps_session(emulator):
    response = port_session(emulator)

    with connect(response["StreamUrl"]) as ws:
        ws.send(opening(response["TokenValue"]))
        first = recv_message(ws)
        ws.send(b"garbage")
        expect_closed(ws, 1002)
    with connect(response["StreamUrl"]) as ws:
        ws.send(opening(response["TokenValue"]))
        again = recv_message(ws)

    # The unacknowledged HandshakeRequest is resent unchanged on the new websocket.
    assert again.sequence_number == 0
    assert again.message_id == first.message_id


def test_terminated_session_rejected(emulator):
    response = port_session(emulator)
    emulator.handle("TerminateSession", {"SessionId": response["SessionId"]}, "AKIAEXAMPLE")

    with connect(response["StreamUrl"]) as ws:
        ws.send(opening(response["TokenValue"]))
        expect_closed(ws, 1008)

    assert "is Terminated" in emulator.test_server.rejections[0]


def test_resumed_token_accepted_old_rejected(emulator):
    response = port_session(emulator)
    new_token = emulator.handle("ResumeSession", {"SessionId": response["SessionId"]}, "AKIAEXAMPLE")["TokenValue"]

    with connect(response["StreamUrl"]) as ws:
        ws.send(opening(response["TokenValue"]))
        expect_closed(ws, 1008)
    with connect(response["StreamUrl"]) as ws:
        ws.send(opening(new_token))
        assert recv_message(ws).payload_type == m.PAYLOAD_HANDSHAKE_REQUEST


def test_terminate_flag_ends_session(emulator):
    response = port_session(emulator)

    with connect(response["StreamUrl"]) as ws:
        ws.send(opening(response["TokenValue"]))
        request = recv_message(ws)
        ws.send(m.encode_ack(request))
        ws.send(m.encode(m.INPUT_STREAM_DATA, 0, m.PAYLOAD_FLAG, m.flag_payload(m.FLAG_TERMINATE_SESSION)))
        kinds = []
        for _ in range(5):
            message = recv_message(ws)
            kinds.append(message.message_type)
            if message.message_type == m.CHANNEL_CLOSED:
                break

    assert kinds[-1] == m.CHANNEL_CLOSED
    assert json.loads(message.payload)["SessionId"] == response["SessionId"]
    assert emulator.sessions[response["SessionId"]].status == "Terminated"


@pytest.mark.parametrize(
    ("port_map", "parameters", "expected"),
    [
        ({80: ("127.0.0.1", 8080)}, {"portNumber": ["80"]}, ("127.0.0.1", 8080)),
        ({80: ("localhost", 8080)}, {"portNumber": ["80"]}, ("127.0.0.1", 8080)),
        ({80: ("::1", 8080)}, {"portNumber": ["80"]}, ("::1", 8080)),
    ],
)
def test_resolve_destination_loopback(port_map, parameters, expected):
    instance = EmulatedInstance(TARGET, port_map=port_map)

    assert resolve_destination(instance, parameters, set()) == expected


@pytest.mark.parametrize(
    ("port_map", "host_map", "parameters"),
    [
        ({80: ("10.0.0.5", 80)}, {}, {"portNumber": ["80"]}),
        ({}, {}, {"portNumber": ["80"]}),
        ({}, {}, {"portNumber": ["80"], "host": ["db.example.internal"]}),
        ({}, {"db": "169.254.169.254"}, {"portNumber": ["80"], "host": ["db"]}),
        ({80: ("127.0.0.1", 80)}, {}, {"portNumber": ["eighty"]}),
    ],
    ids=["private-address", "unmapped", "remote-name", "metadata-address", "bad-port"],
)
def test_resolve_destination_refuses(port_map, host_map, parameters):
    instance = EmulatedInstance(TARGET, port_map=port_map, host_map=host_map)

    with pytest.raises(DestinationRefused):
        resolve_destination(instance, parameters, set())


def test_start_sets_stream_url_base():
    emulator = Emulator([EmulatedInstance(TARGET)])

    server = start_data_channel_server(emulator)
    try:
        response = start_session(emulator, TARGET)
    finally:
        server.close()

    assert emulator.data_channel_url == server.url
    assert server.url.startswith("ws://127.0.0.1:")
    assert response["StreamUrl"].startswith(server.url + "/v1/data-channel/" + response["SessionId"])
