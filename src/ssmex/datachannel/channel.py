"""Sequencing, acknowledgement and resending shared by both ends of a data channel.

Each side numbers its own stream-data messages 0, 1, 2, ... and keeps every
message it sent until the peer acknowledges it. A ReliableChannel outlives a
single websocket: after a reconnect the owner attaches the new websocket and
every unacknowledged message is sent again with its original bytes.

Threads: the owner's receive thread calls `accept` and `handle_ack`. It should
not block on the network, so acknowledgements go through a queue served by
this object's ack thread, and the thread is exempt from the in-flight window
once it calls `mark_receiver_thread`. Data senders call `send_data` and block while the
websocket's buffers are full, which is the only flow control the protocol has.
"""

from __future__ import annotations

import collections
import heapq
import logging
import threading
import time
from typing import Callable, Optional

from websockets.exceptions import ConnectionClosed

from ssmex.datachannel import message as m

logger = logging.getLogger("ssmex.datachannel.channel")

# Timing of the official plugin: check every 100 ms, first RTO 200 ms, RTO at most 1 s.
RESEND_CHECK_INTERVAL = 0.1
INITIAL_RTO = 0.2
MAX_RTO = 1.0
INITIAL_RTT = 0.1
CLOCK_GRANULARITY = 0.01
# The plugin buffers at most this many out-of-order messages.
MAX_OUT_OF_ORDER = 10000
# Unacknowledged messages a sender may have in flight before it waits for
# acks. The plugin has no such limit. websockets.sync (checked in 17.4)
# holds its connection lock while a send blocks, and the same lock stops
# that connection from reading. So when both ends are in Python and both
# socket buffers fill, neither side reads again. 128 messages of at most
# 1024 payload bytes, plus their acks, stay near the 128 KiB default Linux
# receive buffer (tcp_rmem), which keeps sends from blocking for long.
MAX_IN_FLIGHT = 128
# The plugin resends only the oldest message per check. Resending every expired
# message, but no more than this many per check, recovers faster after a lost
# websocket while bounding a resend burst when the peer is merely slow.
MAX_RESENDS_PER_CHECK = 256
# After this many resends of one message the plugin gives up on the session
# (it calls TerminateSession). At the 1 s maximum RTO that is about 50 minutes.
MAX_RESENDS_OF_ONE_MESSAGE = 3000


class _Outgoing:
    __slots__ = ("frame", "sent_at", "resends", "websocket_number", "transmission_number")

    def __init__(self, frame: bytes, sent_at: float):
        self.frame = frame
        self.sent_at = sent_at
        self.resends = 0
        # Which websocket carried the latest transmission, and that transmission's place in
        # the order of all transmissions. Both stay 0 until the message is first transmitted.
        self.websocket_number = 0
        self.transmission_number = 0


class ReliableChannel:
    """Numbered, acknowledged and resent stream-data messages for one session."""

    def __init__(
        self,
        *,
        outgoing_type: str,
        name: str,
        max_payload: int = m.MAX_PAYLOAD_SIZE,
    ):
        self.outgoing_type = outgoing_type
        self.name = name
        self.max_payload = max_payload

        self._ws = None
        self._websocket_number = 0
        self._transmission_counter = 0
        # Messages that were unacknowledged when a new websocket was attached.
        self._carried_over: set[int] = set()
        # The official plugin drops a duplicate of a message it already processed without
        # acknowledging it. With this set, a message carried over to a new websocket counts
        # as delivered once the peer acknowledges a message transmitted after it there.
        self.peer_skips_duplicate_acks = False
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._drained = threading.Condition(self._state_lock)

        self.next_sequence_number = 0
        self.expected_sequence_number = 0
        self._unacked: "collections.OrderedDict[int, _Outgoing]" = collections.OrderedDict()
        self._out_of_order: dict[int, m.ClientMessage] = {}

        self.rtt = INITIAL_RTT
        self.rtt_variation = 0.0
        self.rto = INITIAL_RTO

        # Fault hooks for the emulator: given a new message's sequence number,
        # return True to skip its first transmission or to send it twice.
        self.skip_first_send: Optional[Callable[[int], bool]] = None
        self.send_twice: Optional[Callable[[int], bool]] = None

        self.max_in_flight = MAX_IN_FLIGHT
        self._window_open = threading.Condition(self._state_lock)
        # Marks the receive thread, which must not wait for the window because
        # it processes the acks that would open it.
        self._local = threading.local()

        self._acks: list[tuple[float, int, bytes]] = []
        self._ack_counter = 0
        self._ack_ready = threading.Condition()
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self.resent_count = 0
        # Called once, with the sequence number, when a message reaches MAX_RESENDS_OF_ONE_MESSAGE.
        self.on_stall: Optional[Callable[[int], None]] = None
        self.max_resends = MAX_RESENDS_OF_ONE_MESSAGE
        self._stalled = False

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        for target, suffix in ((self._ack_loop, "acks"), (self._resend_loop, "resend")):
            thread = threading.Thread(target=target, name=f"{self.name}-{suffix}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self._closed.set()
        with self._ack_ready:
            self._ack_ready.notify_all()
        with self._drained:
            self._drained.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def attach(self, ws) -> None:
        """Use a new websocket and send every unacknowledged message on it again."""
        with self._send_lock:
            self._ws = ws
            self._websocket_number += 1
            with self._state_lock:
                pending = list(self._unacked.values())
                self._carried_over = set(self._unacked)
            for outgoing in pending:
                if not self._transmit_locked(outgoing.frame, outgoing):
                    break
                outgoing.sent_at = time.monotonic()
        if pending:
            logger.debug("%s: resent %d unacknowledged messages on the new websocket", self.name, len(pending))

    def detach(self, ws=None) -> None:
        with self._send_lock:
            if ws is None or self._ws is ws:
                self._ws = None

    @property
    def attached(self) -> bool:
        return self._ws is not None

    # -- sending -----------------------------------------------------------

    def _transmit_locked(self, frame: bytes, outgoing: Optional[_Outgoing] = None) -> bool:
        """Send frame on the websocket, and for a stream-data message record where it went."""
        ws = self._ws
        if ws is None:
            return False
        try:
            ws.send(frame)
        except (ConnectionClosed, OSError) as error:
            logger.debug("%s: send failed, keeping the message for a resend: %s", self.name, error)
            self._ws = None
            return False
        if outgoing is not None:
            self._transmission_counter += 1
            outgoing.websocket_number = self._websocket_number
            outgoing.transmission_number = self._transmission_counter
        return True

    def send_raw(self, frame: bytes) -> bool:
        """Send a frame that is not sequenced, such as channel_closed."""
        with self._send_lock:
            return self._transmit_locked(frame)

    def send_data(self, payload_type: int, payload: bytes, *, flags: int = 0) -> None:
        """Send a payload as one or more stream-data messages of at most max_payload bytes.

        The message is kept for resending whether or not a websocket is attached.
        """
        if not payload:
            chunks = [b""]
        else:
            chunks = [payload[start:start + self.max_payload] for start in range(0, len(payload), self.max_payload)]
        for chunk in chunks:
            self._send_one(payload_type, chunk, flags)

    def mark_receiver_thread(self) -> None:
        """Exempt the calling thread from waiting for the in-flight window."""
        self._local.is_receiver = True

    def _wait_for_window(self) -> None:
        if getattr(self._local, "is_receiver", False):
            return
        with self._window_open:
            while len(self._unacked) >= self.max_in_flight and not self._closed.is_set():
                # Wake up now and then: a closed channel does not notify this condition.
                self._window_open.wait(0.5)

    def _send_one(self, payload_type: int, payload: bytes, flags: int) -> None:
        self._wait_for_window()
        with self._send_lock:
            with self._state_lock:
                sequence_number = self.next_sequence_number
                self.next_sequence_number += 1
                frame = m.encode(self.outgoing_type, sequence_number, payload_type, payload, flags=flags)
                outgoing = _Outgoing(frame, time.monotonic())
                self._unacked[sequence_number] = outgoing

            if self.skip_first_send is not None and self.skip_first_send(sequence_number):
                logger.debug("%s: fault: skipped first send of seq %d", self.name, sequence_number)
                return
            self._transmit_locked(frame, outgoing)
            if self.send_twice is not None and self.send_twice(sequence_number):
                logger.debug("%s: fault: sent seq %d twice", self.name, sequence_number)
                self._transmit_locked(frame, outgoing)

    def send_ack(self, message: m.ClientMessage, delay: float = 0.0) -> None:
        """Queue an acknowledge for `message`, which the ack thread sends after `delay` seconds."""
        frame = m.encode_ack(message)
        with self._ack_ready:
            self._ack_counter += 1
            heapq.heappush(self._acks, (time.monotonic() + delay, self._ack_counter, frame))
            self._ack_ready.notify()

    def _ack_loop(self) -> None:
        while not self._closed.is_set():
            with self._ack_ready:
                while not self._acks and not self._closed.is_set():
                    self._ack_ready.wait(1.0)
                if self._closed.is_set():
                    return
                due, _, frame = self._acks[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._ack_ready.wait(wait)
                    continue
                heapq.heappop(self._acks)
            # An ack lost with a websocket needs no resend: the peer resends its
            # message, and the duplicate is acknowledged again.
            self.send_raw(frame)

    # -- receiving ---------------------------------------------------------

    def accept(self, message: m.ClientMessage) -> Optional[list[m.ClientMessage]]:
        """Return the stream-data messages that are now in order, oldest first.

        A message ahead of the expected number is buffered, and a duplicate
        returns an empty list. The caller acknowledges both, so a peer that
        missed an ack stops resending. None means the out-of-order buffer is
        full and the message was dropped: it must not be acknowledged, so the
        peer sends it again later.
        """
        with self._state_lock:
            sequence_number = message.sequence_number
            if sequence_number < self.expected_sequence_number:
                logger.debug("%s: dropped duplicate seq %d", self.name, sequence_number)
                return []
            if sequence_number > self.expected_sequence_number:
                if len(self._out_of_order) >= MAX_OUT_OF_ORDER and sequence_number not in self._out_of_order:
                    logger.warning("%s: out-of-order buffer full, dropped seq %d", self.name, sequence_number)
                    return None
                self._out_of_order[sequence_number] = message
                return []

            ready = [message]
            self.expected_sequence_number += 1
            while self.expected_sequence_number in self._out_of_order:
                ready.append(self._out_of_order.pop(self.expected_sequence_number))
                self.expected_sequence_number += 1
            return ready

    def is_buffered_or_duplicate(self, sequence_number: int) -> bool:
        with self._state_lock:
            return sequence_number < self.expected_sequence_number or sequence_number in self._out_of_order

    def handle_ack(self, ack: m.ClientMessage) -> None:
        sequence_number = m.parse_ack(ack)
        with self._state_lock:
            outgoing = self._unacked.pop(sequence_number, None)
            if outgoing is None:
                return
            self._carried_over.discard(sequence_number)
            # Karn's rule: a resent message gives no trustworthy round-trip sample.
            if outgoing.resends == 0:
                self._update_rto(time.monotonic() - outgoing.sent_at)
            if self.peer_skips_duplicate_acks and self._carried_over:
                self._forget_processed_duplicates(outgoing)
            if len(self._unacked) < self.max_in_flight:
                self._window_open.notify_all()
            if not self._unacked:
                self._drained.notify_all()

    def _forget_processed_duplicates(self, acknowledged: _Outgoing) -> None:
        """Drop carried-over messages that the peer must already have processed.

        A websocket delivers in order, and the peer acknowledges each message it keeps before
        it reads the next one. So a carried-over message that went out on this websocket before
        the acknowledged one, and is still unacknowledged, reached the peer as a duplicate.
        Called with the state lock held.
        """
        # NOTE: the official plugin also leaves a message unacknowledged when its port handler
        # is not ready. Such a message, carried over a reconnect, would be dropped here.
        if acknowledged.websocket_number != self._websocket_number:
            return
        delivered = [
            sequence_number
            for sequence_number in self._carried_over
            if (item := self._unacked.get(sequence_number)) is not None
            and item.websocket_number == self._websocket_number
            and item.transmission_number < acknowledged.transmission_number
        ]
        for sequence_number in delivered:
            del self._unacked[sequence_number]
            self._carried_over.discard(sequence_number)
        if delivered:
            logger.debug("%s: the peer processed seq %s before the reconnect; no longer resending them", self.name, sorted(delivered))

    def _update_rto(self, sample: float) -> None:
        # The usual TCP estimator (RFC 6298 gains 1/8 and 1/4), capped at MAX_RTO.
        self.rtt_variation = 0.75 * self.rtt_variation + 0.25 * abs(self.rtt - sample)
        self.rtt = 0.875 * self.rtt + 0.125 * sample
        self.rto = min(MAX_RTO, self.rtt + max(CLOCK_GRANULARITY, 4 * self.rtt_variation))

    # -- resending ---------------------------------------------------------

    def resend_expired(self) -> int:
        """Resend unacknowledged messages older than the RTO, oldest first."""
        if self._ws is None:
            return 0
        now = time.monotonic()
        with self._state_lock:
            expired = [item for item in self._unacked.values() if now - item.sent_at > self.rto]
        expired = expired[:MAX_RESENDS_PER_CHECK]
        stalled = next((item for item in expired if item.resends >= self.max_resends), None)
        if stalled is not None:
            if not self._stalled and self.on_stall is not None:
                self._stalled = True
                self.on_stall(m.decode(stalled.frame).sequence_number)
            return 0
        sent = 0
        with self._send_lock:
            for outgoing in expired:
                if not self._transmit_locked(outgoing.frame, outgoing):
                    break
                outgoing.sent_at = time.monotonic()
                outgoing.resends += 1
                sent += 1
        self.resent_count += sent
        return sent

    def _resend_loop(self) -> None:
        while not self._closed.wait(RESEND_CHECK_INTERVAL):
            self.resend_expired()

    def unacked_count(self) -> int:
        with self._state_lock:
            return len(self._unacked)

    def wait_drained(self, timeout: float) -> bool:
        """Wait until every sent message is acknowledged; return False on timeout."""
        deadline = time.monotonic() + timeout
        with self._drained:
            while self._unacked and not self._closed.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._drained.wait(remaining)
            return not self._unacked
