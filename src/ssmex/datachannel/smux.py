"""A small smux protocol-version-1 implementation for multiplexed port sessions.

Mux-mode port sessions carry the bytes of one xtaci/smux v1 connection as
Output payloads. Each frame is an 8-byte header (version 1, command, data
length as little-endian uint16, stream id as little-endian uint32) followed by
the data. Version 1 has no window updates, so there is no flow control beyond
what the transport underneath provides.

This module only frames and routes bytes: the caller supplies a function that
sends raw bytes to the peer, feeds received bytes to `SmuxSession.feed`, and
attaches callbacks to each stream.
"""

from __future__ import annotations

import logging
import struct
import threading
from typing import Callable, Optional

logger = logging.getLogger("ssmex.datachannel.smux")

VERSION = 1
CMD_SYN = 0
CMD_FIN = 1
CMD_PSH = 2
CMD_NOP = 3
HEADER_SIZE = 8
DEFAULT_MAX_FRAME_SIZE = 32768

_HEADER = struct.Struct("<BBHI")


class SmuxError(ValueError):
    """A frame that breaks the smux v1 protocol."""


def encode_frame(command: int, stream_id: int, data: bytes = b"") -> bytes:
    if len(data) > 0xFFFF:
        raise SmuxError(f"smux frame data of {len(data)} bytes exceeds 65535")
    return _HEADER.pack(VERSION, command, len(data), stream_id) + data


class SmuxStream:
    """One logical connection inside an smux session.

    The owner sets `on_data(bytes)` and `on_fin()` before data can arrive.
    Both are called from the thread that calls `SmuxSession.feed`.
    """

    def __init__(self, session: "SmuxSession", stream_id: int):
        self.session = session
        self.stream_id = stream_id
        self.on_data: Callable[[bytes], None] = lambda data: None
        self.on_fin: Callable[[], None] = lambda: None
        self.fin_sent = False
        self.fin_received = False

    def write(self, data: bytes) -> None:
        if self.fin_sent:
            raise SmuxError(f"smux stream {self.stream_id} is already closed for writing")
        size = self.session.max_frame_size
        for start in range(0, len(data), size):
            self.session.send_frame(CMD_PSH, self.stream_id, data[start:start + size])

    def close(self) -> None:
        """Send FIN once; the stream is forgotten once both sides have sent FIN."""
        if self.fin_sent:
            return
        self.fin_sent = True
        self.session.send_frame(CMD_FIN, self.stream_id)
        self.session.forget_if_done(self)


class SmuxSession:
    """Both ends of smux v1: clients open odd stream ids from 3, servers accept SYN."""

    def __init__(
        self,
        send: Callable[[bytes], None],
        *,
        is_client: bool,
        on_accept: Optional[Callable[[SmuxStream], None]] = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ):
        self._send = send
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self.is_client = is_client
        self.on_accept = on_accept
        self.max_frame_size = max_frame_size
        self.streams: dict[int, SmuxStream] = {}
        # xtaci/smux starts clients at 1 and servers at 0, adding 2 before each use.
        self._next_stream_id = 1 if is_client else 0
        self._buffer = bytearray()
        self.closed = False

    def send_frame(self, command: int, stream_id: int, data: bytes = b"") -> None:
        # One lock around the whole frame so frames from different threads never interleave.
        with self._send_lock:
            self._send(encode_frame(command, stream_id, data))

    def open_stream(self, on_data: Optional[Callable[[bytes], None]] = None,
                    on_fin: Optional[Callable[[], None]] = None) -> SmuxStream:
        """Open a stream. Pass the callbacks here, because the peer's reply may arrive before this returns."""
        with self._lock:
            self._next_stream_id += 2
            stream = SmuxStream(self, self._next_stream_id)
            if on_data is not None:
                stream.on_data = on_data
            if on_fin is not None:
                stream.on_fin = on_fin
            self.streams[stream.stream_id] = stream
        self.send_frame(CMD_SYN, stream.stream_id)
        return stream

    def send_nop(self) -> None:
        self.send_frame(CMD_NOP, 0)

    def forget_if_done(self, stream: SmuxStream) -> None:
        if stream.fin_sent and stream.fin_received:
            with self._lock:
                self.streams.pop(stream.stream_id, None)

    def feed(self, data: bytes) -> None:
        """Parse every complete frame in `data` plus earlier leftovers and dispatch it.

        Raises SmuxError on a frame with the wrong version or an unknown command.
        """
        self._buffer += data
        while len(self._buffer) >= HEADER_SIZE:
            version, command, length, stream_id = _HEADER.unpack_from(self._buffer)
            if version != VERSION:
                raise SmuxError(f"smux frame has version {version}, expected {VERSION}")
            if command > CMD_NOP:
                raise SmuxError(f"smux frame has unknown command {command}")
            if len(self._buffer) < HEADER_SIZE + length:
                return
            payload = bytes(self._buffer[HEADER_SIZE:HEADER_SIZE + length])
            del self._buffer[:HEADER_SIZE + length]
            self._dispatch(command, stream_id, payload)

    def _dispatch(self, command: int, stream_id: int, payload: bytes) -> None:
        if command == CMD_NOP:
            return

        if command == CMD_SYN:
            with self._lock:
                if stream_id in self.streams:
                    logger.debug("ignored repeated SYN for smux stream %d", stream_id)
                    return
                stream = SmuxStream(self, stream_id)
                self.streams[stream_id] = stream
            if self.on_accept is None:
                logger.debug("rejected SYN for smux stream %d: this side does not accept streams", stream_id)
                stream.close()
                return
            self.on_accept(stream)
            return

        with self._lock:
            stream = self.streams.get(stream_id)
        if stream is None:
            logger.debug("dropped smux command %d for unknown stream %d", command, stream_id)
            return
        if command == CMD_PSH:
            if payload:
                stream.on_data(payload)
        elif command == CMD_FIN:
            if not stream.fin_received:
                stream.fin_received = True
                stream.on_fin()
                self.forget_if_done(stream)
