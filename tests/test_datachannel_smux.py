import struct

import pytest

from ssmex.datachannel import smux


def test_frame_header_layout():
    frame = smux.encode_frame(smux.CMD_PSH, 3, b"abc")

    assert frame[:2] == b"\x01\x02"
    assert struct.unpack("<H", frame[2:4])[0] == 3
    assert struct.unpack("<I", frame[4:8])[0] == 3
    assert frame[8:] == b"abc"


def _pair():
    """Connect a client and a server session back to back."""
    accepted = []
    server_received = {}
    client_box = {}

    def server_accept(stream):
        accepted.append(stream)
        server_received[stream.stream_id] = bytearray()
        stream.on_data = server_received[stream.stream_id].extend

    server = smux.SmuxSession(lambda data: client_box["client"].feed(data), is_client=False,
                              on_accept=server_accept)
    client = smux.SmuxSession(server.feed, is_client=True)
    client_box["client"] = client
    return client, server, accepted, server_received


def test_client_stream_ids_odd_from_three():
    client, _, accepted, _ = _pair()

    first = client.open_stream()
    second = client.open_stream()

    assert (first.stream_id, second.stream_id) == (3, 5)
    assert [stream.stream_id for stream in accepted] == [3, 5]


def test_data_split_into_max_frames():
    client, server, _, received = _pair()
    sent = []
    client._send = lambda data: (sent.append(data), server.feed(data))
    stream = client.open_stream()
    data = bytes(range(256)) * 300

    stream.write(data)

    assert bytes(received[stream.stream_id]) == data
    psh_lengths = [struct.unpack("<H", frame[2:4])[0] for frame in sent[1:]]
    assert max(psh_lengths) == smux.DEFAULT_MAX_FRAME_SIZE
    assert sum(psh_lengths) == len(data)


def test_feed_reassembles_split_frames():
    got = bytearray()
    server = smux.SmuxSession(lambda data: None, is_client=False,
                              on_accept=lambda stream: setattr(stream, "on_data", got.extend))
    wire = smux.encode_frame(smux.CMD_SYN, 3) + smux.encode_frame(smux.CMD_PSH, 3, b"hello world")

    for index in range(len(wire)):
        server.feed(wire[index:index + 1])

    assert bytes(got) == b"hello world"


def test_fin_both_ways_forgets_stream():
    client, server, accepted, _ = _pair()
    stream = client.open_stream()
    fins = []
    stream.on_fin = lambda: fins.append("client")

    stream.close()
    accepted[0].close()

    assert fins == ["client"]
    assert client.streams == {}
    assert server.streams == {}


def test_write_after_close_rejected():
    client, _, _, _ = _pair()
    stream = client.open_stream()
    stream.close()

    with pytest.raises(smux.SmuxError):
        stream.write(b"late")


@pytest.mark.parametrize("frame", [b"\x02\x02\x00\x00\x03\x00\x00\x00", b"\x01\x09\x00\x00\x03\x00\x00\x00"])
def test_feed_rejects_bad_frame(frame):
    server = smux.SmuxSession(lambda data: None, is_client=False, on_accept=lambda stream: None)

    with pytest.raises(smux.SmuxError):
        server.feed(frame)
