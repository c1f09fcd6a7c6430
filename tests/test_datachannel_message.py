import hashlib
import json
import struct
import uuid

import pytest

from ssmex.datachannel import message as m


def test_uuid_halves_swapped_on_wire():
    value = uuid.UUID("aabbccdd-eeff-0011-2233-445566778899")

    wire = m.uuid_to_wire(value)

    assert wire.hex(" ") == "22 33 44 55 66 77 88 99 aa bb cc dd ee ff 00 11"
    assert m.uuid_from_wire(wire) == value


def test_encode_header_layout():
    message_id = uuid.UUID("aabbccdd-eeff-0011-2233-445566778899")
    payload = b"hello"

    frame = m.encode(m.INPUT_STREAM_DATA, 7, m.PAYLOAD_OUTPUT, payload,
                     message_id=message_id, created_date=1_700_000_000_123)

    assert len(frame) == 125
    assert struct.unpack(">I", frame[0:4])[0] == 116
    assert frame[4:36] == b"input_stream_data".ljust(32, b" ")
    assert struct.unpack(">I", frame[36:40])[0] == 1
    assert struct.unpack(">Q", frame[40:48])[0] == 1_700_000_000_123
    assert struct.unpack(">q", frame[48:56])[0] == 7
    assert struct.unpack(">Q", frame[56:64])[0] == 0
    assert frame[64:80] == bytes.fromhex("2233445566778899aabbccddeeff0011")
    assert frame[80:112] == hashlib.sha256(payload).digest()
    assert struct.unpack(">I", frame[112:116])[0] == 1
    assert struct.unpack(">I", frame[116:120])[0] == 5
    assert frame[120:] == payload


def test_decode_round_trip():
    frame = m.encode(m.OUTPUT_STREAM_DATA, 3, m.PAYLOAD_FLAG, m.flag_payload(2), flags=1)

    decoded = m.decode_and_validate(frame, strict_length=True)

    assert decoded.message_type == m.OUTPUT_STREAM_DATA
    assert decoded.sequence_number == 3
    assert decoded.flags == 1
    assert decoded.payload_type == m.PAYLOAD_FLAG
    assert m.parse_flag(decoded.payload) == m.FLAG_TERMINATE_SESSION
    assert m.encode_message(decoded) == frame


def test_decode_accepts_nul_padded_type():
    frame = bytearray(m.encode(m.ACKNOWLEDGE, 0, 0, b"{}"))
    frame[4:36] = b"acknowledge".ljust(32, b"\x00")

    assert m.decode(bytes(frame)).message_type == "acknowledge"


def test_decode_payload_runs_to_frame_end():
    # The reader slices by HeaderLength, not PayloadLength, as the plugin does.
    frame = bytearray(m.encode(m.OUTPUT_STREAM_DATA, 0, 1, b"abcdef"))
    frame[116:120] = struct.pack(">I", 2)

    decoded = m.decode(bytes(frame))

    assert decoded.payload == b"abcdef"
    assert decoded.payload_length == 2
    with pytest.raises(m.MessageError, match="PayloadLength"):
        m.validate(decoded, strict_length=True)


def test_decode_rejects_short_frame():
    with pytest.raises(m.MessageError, match="shorter than the 120-byte header"):
        m.decode(b"\x00" * 119)


def test_decode_rejects_header_length_past_end():
    frame = bytearray(m.encode(m.OUTPUT_STREAM_DATA, 0, 1, b"x"))
    frame[0:4] = struct.pack(">I", 500)

    with pytest.raises(m.MessageError, match="past the end"):
        m.decode(bytes(frame))


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (0, struct.pack(">I", 0), "HeaderLength is 0"),
        (4, b" " * 32, "MessageType is empty"),
        (40, struct.pack(">Q", 0), "CreatedDate is 0"),
        (80, b"\x01" * 32, "digest mismatch"),
    ],
)
def test_validate_rejects_what_plugin_drops(offset, value, reason):
    frame = bytearray(m.encode(m.OUTPUT_STREAM_DATA, 4, 1, b"payload"))
    frame[offset:offset + len(value)] = value

    with pytest.raises(m.MessageError, match=reason):
        m.decode_and_validate(bytes(frame))


def test_validate_skips_publication_messages():
    frame = bytearray(m.encode(m.PAUSE_PUBLICATION, 0, 0, b"x"))
    frame[40:48] = struct.pack(">Q", 0)

    m.decode_and_validate(bytes(frame))


def test_ack_payload_and_header():
    data = m.decode(m.encode(m.INPUT_STREAM_DATA, 9, 1, b"x"))

    ack = m.decode_and_validate(m.encode_ack(data))

    assert ack.message_type == m.ACKNOWLEDGE
    assert ack.sequence_number == 0
    assert ack.flags == 3
    assert ack.payload_type == 0
    body = json.loads(ack.payload)
    assert list(body) == [
        "AcknowledgedMessageType",
        "AcknowledgedMessageId",
        "AcknowledgedMessageSequenceNumber",
        "IsSequentialMessage",
    ]
    assert body["AcknowledgedMessageId"] == str(data.message_id)
    assert m.parse_ack(ack) == 9


def test_parse_ack_rejects_bad_json():
    bad = m.decode(m.encode(m.ACKNOWLEDGE, 0, 0, b'{"AcknowledgedMessageSequenceNumber":"1"}'))

    with pytest.raises(m.MessageError):
        m.parse_ack(bad)


@pytest.mark.parametrize(
    ("version", "threshold", "expected"),
    [
        ("3.0.196.1", "3.0.196.0", True),
        ("3.0.196.0", "3.0.196.0", False),
        ("3.3.1142.0", "3.0.196.0", True),
        ("2.9.9999.9", "3.0.196.0", False),
        ("3.1", "3.0.196.0", False),
        ("3.x.1.0", "3.0.196.0", False),
    ],
)
def test_version_greater_than(version, threshold, expected):
    assert m.version_greater_than(version, threshold) is expected
