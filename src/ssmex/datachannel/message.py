"""Encode and decode Session Manager data-channel messages.

Every frame on the StreamUrl websocket, except the client's opening TEXT
message, is a "ClientMessage": a 120-byte big-endian header followed by the
payload. The layout and the validation rules follow session-manager-plugin
1.2.677.0 (src/message/clientmessage.go and messageparser.go).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import time
import uuid

# Message types (the 32-byte MessageType field).
INPUT_STREAM_DATA = "input_stream_data"
OUTPUT_STREAM_DATA = "output_stream_data"
ACKNOWLEDGE = "acknowledge"
CHANNEL_CLOSED = "channel_closed"
START_PUBLICATION = "start_publication"
PAUSE_PUBLICATION = "pause_publication"

# Payload types (the PayloadType field).
PAYLOAD_OUTPUT = 1
PAYLOAD_ERROR = 2
PAYLOAD_SIZE = 3
PAYLOAD_PARAMETER = 4
PAYLOAD_HANDSHAKE_REQUEST = 5
PAYLOAD_HANDSHAKE_RESPONSE = 6
PAYLOAD_HANDSHAKE_COMPLETE = 7
PAYLOAD_ENC_CHALLENGE_REQUEST = 8
PAYLOAD_ENC_CHALLENGE_RESPONSE = 9
PAYLOAD_FLAG = 10
PAYLOAD_STDERR = 11
PAYLOAD_EXIT_CODE = 12

# Values carried in a PAYLOAD_FLAG payload as a 4-byte big-endian uint32.
FLAG_DISCONNECT_TO_PORT = 1
FLAG_TERMINATE_SESSION = 2
FLAG_CONNECT_TO_PORT_ERROR = 3

# Values of the header's Flags field. The agent sets SYN on its seq-0 message
# and acks carry SYN|FIN; the plugin ignores the field on read.
HEADER_FLAG_SYN = 1
HEADER_FLAG_FIN = 2
HEADER_FLAG_ACK = HEADER_FLAG_SYN | HEADER_FLAG_FIN

HEADER_SIZE = 120
# HeaderLength is the offset of PayloadLength, so the payload starts 4 bytes later.
HEADER_LENGTH = 116
MESSAGE_TYPE_SIZE = 32
SCHEMA_VERSION = 1

# The official plugin never puts more than this many payload bytes in one message.
MAX_PAYLOAD_SIZE = 1024

_HEADER = struct.Struct(">I32sIQqQ16s32sII")
assert _HEADER.size == HEADER_SIZE


class MessageError(ValueError):
    """A frame that cannot be parsed or fails validation."""


@dataclasses.dataclass(frozen=True)
class ClientMessage:
    """One decoded data-channel message."""

    message_type: str
    sequence_number: int
    payload_type: int
    payload: bytes
    flags: int = 0
    message_id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    created_date: int = 0
    schema_version: int = SCHEMA_VERSION
    header_length: int = HEADER_LENGTH
    payload_digest: bytes = b""
    payload_length: int = -1


def now_millis() -> int:
    return int(time.time() * 1000)


def uuid_to_wire(value: uuid.UUID) -> bytes:
    """Return the 16 wire bytes of a MessageId, with the two 8-byte halves swapped."""
    raw = value.bytes
    return raw[8:] + raw[:8]


def uuid_from_wire(raw: bytes) -> uuid.UUID:
    if len(raw) != 16:
        raise MessageError(f"MessageId must be 16 bytes, got {len(raw)}")
    return uuid.UUID(bytes=raw[8:] + raw[:8])


def encode(
    message_type: str,
    sequence_number: int,
    payload_type: int,
    payload: bytes,
    *,
    flags: int = 0,
    message_id: uuid.UUID | None = None,
    created_date: int | None = None,
) -> bytes:
    """Encode one message the way the official plugin writes it.

    MessageType is right-padded with spaces, HeaderLength is 116 and the
    digest is the SHA-256 of the payload.
    """
    type_bytes = message_type.encode("ascii")
    if not type_bytes or len(type_bytes) > MESSAGE_TYPE_SIZE:
        raise MessageError(f"MessageType must be 1 to 32 ASCII characters, got {message_type!r}")
    if message_id is None:
        message_id = uuid.uuid4()
    if created_date is None:
        created_date = now_millis()

    header = _HEADER.pack(
        HEADER_LENGTH,
        type_bytes.ljust(MESSAGE_TYPE_SIZE, b" "),
        SCHEMA_VERSION,
        created_date,
        sequence_number,
        flags,
        uuid_to_wire(message_id),
        hashlib.sha256(payload).digest(),
        payload_type,
        len(payload),
    )
    return header + bytes(payload)


def encode_message(message: ClientMessage) -> bytes:
    return encode(
        message.message_type,
        message.sequence_number,
        message.payload_type,
        message.payload,
        flags=message.flags,
        message_id=message.message_id,
        created_date=message.created_date or None,
    )


def decode(frame: bytes) -> ClientMessage:
    """Parse one frame without validating it.

    As in the plugin, the payload runs from HeaderLength + 4 to the end of the
    frame, and PayloadLength is kept but not used for slicing.

    Raises MessageError when the frame is shorter than the header or its
    HeaderLength points past the end of the frame.
    """
    if len(frame) < HEADER_SIZE:
        raise MessageError(f"frame of {len(frame)} bytes is shorter than the {HEADER_SIZE}-byte header")
    (
        header_length,
        type_bytes,
        schema_version,
        created_date,
        sequence_number,
        flags,
        id_bytes,
        digest,
        payload_type,
        payload_length,
    ) = _HEADER.unpack_from(frame)

    payload_start = header_length + 4
    if header_length and payload_start > len(frame):
        raise MessageError(f"HeaderLength {header_length} points past the end of a {len(frame)}-byte frame")

    # The plugin trims NUL bytes and then whitespace, so both paddings work.
    message_type = type_bytes.rstrip(b"\x00").decode("ascii", "replace").strip()
    return ClientMessage(
        message_type=message_type,
        sequence_number=sequence_number,
        payload_type=payload_type,
        payload=bytes(frame[payload_start:]) if header_length else b"",
        flags=flags,
        message_id=uuid_from_wire(id_bytes),
        created_date=created_date,
        schema_version=schema_version,
        header_length=header_length,
        payload_digest=digest,
        payload_length=payload_length,
    )


def validate(message: ClientMessage, *, strict_length: bool = False) -> None:
    """Raise MessageError for a message the plugin would drop.

    The plugin's rules: HeaderLength, MessageType and CreatedDate must be set,
    and a non-empty payload must match its SHA-256 digest. start_publication
    and pause_publication skip these checks. With strict_length, PayloadLength
    must also equal the payload's real length, which catches truncated frames
    whose payload happens to be empty.
    """
    if message.message_type in (START_PUBLICATION, PAUSE_PUBLICATION):
        return
    if message.header_length == 0:
        raise MessageError("HeaderLength is 0")
    if not message.message_type:
        raise MessageError("MessageType is empty")
    if message.created_date == 0:
        raise MessageError(f"CreatedDate is 0 in {message.message_type} seq {message.sequence_number}")
    if message.payload_length and hashlib.sha256(message.payload).digest() != message.payload_digest:
        raise MessageError(
            f"payload digest mismatch in {message.message_type} seq {message.sequence_number}"
        )
    if strict_length and message.payload_length != len(message.payload):
        raise MessageError(
            f"PayloadLength {message.payload_length} differs from the {len(message.payload)} payload bytes"
            f" in {message.message_type} seq {message.sequence_number}"
        )


def decode_and_validate(frame: bytes, *, strict_length: bool = False) -> ClientMessage:
    message = decode(frame)
    validate(message, strict_length=strict_length)
    return message


def ack_payload(message: ClientMessage) -> bytes:
    """Build the JSON payload that acknowledges one stream-data message."""
    body = {
        "AcknowledgedMessageType": message.message_type,
        "AcknowledgedMessageId": str(message.message_id),
        "AcknowledgedMessageSequenceNumber": message.sequence_number,
        "IsSequentialMessage": True,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def encode_ack(message: ClientMessage) -> bytes:
    """Encode an acknowledge message: SequenceNumber 0, Flags 3, PayloadType 0."""
    return encode(ACKNOWLEDGE, 0, 0, ack_payload(message), flags=HEADER_FLAG_ACK)


def parse_ack(message: ClientMessage) -> int:
    """Return the sequence number an acknowledge message confirms."""
    try:
        body = json.loads(message.payload)
        sequence_number = body["AcknowledgedMessageSequenceNumber"]
    except (ValueError, KeyError, TypeError) as error:
        raise MessageError(f"invalid acknowledge payload: {error}") from None
    if not isinstance(sequence_number, int) or isinstance(sequence_number, bool):
        raise MessageError(f"invalid AcknowledgedMessageSequenceNumber {sequence_number!r}")
    return sequence_number


def flag_payload(flag: int) -> bytes:
    return struct.pack(">I", flag)


def parse_flag(payload: bytes) -> int:
    if len(payload) != 4:
        raise MessageError(f"Flag payload must be 4 bytes, got {len(payload)}")
    return struct.unpack(">I", payload)[0]


def channel_closed_payload(session_id: str, output: str = "", *, destination_id: str = "") -> bytes:
    """Build the JSON payload of a channel_closed message."""
    body = {
        "MessageId": str(uuid.uuid4()),
        "CreatedDate": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "DestinationId": destination_id,
        "SessionId": session_id,
        "MessageType": CHANNEL_CLOSED,
        "SchemaVersion": 1,
        "Output": output,
    }
    return json.dumps(body).encode()


def parse_version(text: str) -> tuple[int, ...] | None:
    parts = text.strip().split(".")
    if not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def version_greater_than(version: str, threshold: str) -> bool:
    """Compare dotted versions as the plugin does.

    Both must have the same number of numeric parts. Otherwise the result is
    False, as the plugin treats such versions as "not supported".
    """
    left = parse_version(version)
    right = parse_version(threshold)
    if left is None or right is None or len(left) != len(right):
        return False
    return left > right
