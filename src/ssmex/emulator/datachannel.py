"""The emulator's data channel: the AWS side of the StreamUrl websocket, on 127.0.0.1.

`DataChannelServer(emulator).start()` listens on a free loopback port and sets
`emulator.data_channel_url`, so every StreamUrl the emulator's API returns
points here. For each websocket it checks the opening message's TokenValue
against the session registry, sends the handshake built from the session's
document and parameters, then acknowledges, orders and de-duplicates the
client's messages and resends its own, as the protocol requires of the
service. Session state outlives a websocket, so a client that resumes with the
token from ResumeSession carries on where it stopped.

A bad input (wrong token, unknown session, malformed frame) closes only the
websocket it came on, with the reason logged and kept in `rejections`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import logging
import os
import secrets
import socket
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Optional

import websockets.sync.server
from websockets.exceptions import ConnectionClosed

from ssmex.datachannel import message as m
from ssmex.datachannel.channel import ReliableChannel
from ssmex.emulator import responders

if TYPE_CHECKING:
    # Imported where KMS encryption is used, so the emulator runs without the cryptography package.
    from ssmex.datachannel import encryption

logger = logging.getLogger("ssmex.emulator.datachannel")

OPENING_TIMEOUT = 10.0
MUX_MIN_AGENT_VERSION = "3.0.196.0"
# How long a session waits for its last messages to be acknowledged before channel_closed.
CLOSE_DRAIN_TIMEOUT = 2.0
CLOSE_CODE_POLICY = 1008
CLOSE_CODE_PROTOCOL = 1002
# Payload types the agent encrypts, and expects encrypted, once KMS encryption is on.
ENCRYPTED_PAYLOAD_TYPES = (m.PAYLOAD_OUTPUT, m.PAYLOAD_STDERR, m.PAYLOAD_EXIT_CODE)


@dataclasses.dataclass
class DataChannelFaults:
    """Fault switches, shared by every session on the server; 0 or None turns one off."""

    # Drop the websocket (abruptly, no close frame) after this many client
    # stream-data messages arrived on it. Fires once, then resets to None.
    drop_websocket_after: Optional[int] = None
    # Send each acknowledge this many seconds late.
    ack_delay: float = 0.0
    # Do not acknowledge every Nth client stream-data message.
    lose_ack_every: int = 0
    # Treat every Nth new client stream-data message as lost: no ack, not processed.
    lose_input_every: int = 0
    # Leave out the first transmission of every Nth service message, so it arrives by resend.
    lose_output_every: int = 0
    # Send every Nth service message twice.
    duplicate_output_every: int = 0
    # Remote ports whose connections are refused.
    refused_ports: set = dataclasses.field(default_factory=set)


class ConnectionRejected(Exception):
    """A reason to close one websocket."""

    def __init__(self, reason: str, code: int = CLOSE_CODE_POLICY):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class SessionChannel:
    """The service's side of one session's data channel, across websockets."""

    def __init__(self, server: "DataChannelServer", session):
        self.server = server
        self.session = session
        self.session_id = session.session_id
        self.reliable = ReliableChannel(outgoing_type=m.OUTPUT_STREAM_DATA, name=f"emulator-{self.session_id}")
        self.reliable.peer_skips_duplicate_acks = True
        faults = server.faults
        self.reliable.skip_first_send = lambda seq: bool(faults.lose_output_every) and seq % faults.lose_output_every == faults.lose_output_every - 1
        self.reliable.send_twice = lambda seq: bool(faults.duplicate_output_every) and seq % faults.duplicate_output_every == faults.duplicate_output_every - 1
        self.reliable.on_stall = lambda sequence_number: self.end_session(
            f"the client stopped acknowledging (message {sequence_number})")
        self.reliable.start()

        self.instance = server.emulator.instances.get(session.target)
        self.agent_version = getattr(self.instance, "agent_version", None) or "3.3.1142.0"
        self.session_type, self.properties = self._session_type()
        self.responder = None
        self.handshake_sent = False
        self.handshake_complete = False
        self.ended = threading.Event()
        self.ws = None
        self._lock = threading.Lock()
        self._input_count = 0
        self._ack_count = 0
        self._lost_inputs: set[int] = set()
        # Client stream-data messages that arrived again after they were processed or buffered.
        self.duplicates_received = 0
        self.sizes: list[tuple[int, int]] = []
        self._pending_cipher: Optional[encryption.PayloadCipher] = None
        self._challenge = b""
        self.cipher: Optional[encryption.PayloadCipher] = None
        self.flags: list[int] = []

    # -- handshake ---------------------------------------------------------

    def _session_type(self) -> tuple[str, dict]:
        document = self.session.document_name or "SSM-SessionManagerRunShell"
        parameters = self.session.parameters or {}
        get = lambda name, default="": responders.first_parameter(parameters, name, default)
        if document in ("AWS-StartPortForwardingSession", "AWS-StartPortForwardingSessionToRemoteHost"):
            properties = {"portNumber": get("portNumber", "80"), "type": "LocalPortForwarding",
                          "localPortNumber": get("localPortNumber", "0")}
            if get("host"):
                properties["host"] = get("host")
            if get("localUnixSocket"):
                properties["localUnixSocket"] = get("localUnixSocket")
                properties["localConnectionType"] = "unix"
            return "Port", properties
        if document == "AWS-StartSSHSession":
            return "Port", {"portNumber": get("portNumber", "22")}
        if document == "AWS-StartInteractiveCommand":
            return "InteractiveCommands", {}
        if document == "AWS-StartNonInteractiveCommand":
            return "NonInteractiveCommands", {}
        return "Standard_Stream", {}

    @property
    def kms_enabled(self) -> bool:
        return self.server.kms is not None and bool(self.server.kms_key_id)

    def send_handshake_request(self) -> None:
        actions = [{
            "ActionType": "SessionType",
            "ActionParameters": {"SessionType": self.session_type, "Properties": self.properties},
        }]
        if self.kms_enabled:
            actions.append({"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": self.server.kms_key_id}})
        request = {"AgentVersion": self.agent_version, "RequestedClientActions": actions}
        self.handshake_sent = True
        self._handshake_started = time.monotonic()
        self.reliable.send_data(m.PAYLOAD_HANDSHAKE_REQUEST, json.dumps(request).encode())

    def _complete_handshake(self, payload: bytes) -> None:
        if self.handshake_complete:
            return
        try:
            response = json.loads(payload)
            actions = response.get("ProcessedClientActions") or []
        except (ValueError, AttributeError) as error:
            raise m.MessageError(f"invalid HandshakeResponse payload: {error}") from None
        failed = [action for action in actions if action.get("ActionStatus") != 1]
        if failed:
            logger.warning("session %s: client reported failed handshake actions: %s", self.session_id,
                           [action.get("ActionType") for action in failed])

        if self.kms_enabled:
            from ssmex.datachannel import encryption

            try:
                self._send_challenge(actions)
            except encryption.EncryptionError as error:
                logger.warning("session %s: KMS encryption failed: %s", self.session_id, error)
                self.end_session(f"KMS encryption failed: {error}")
            return
        self._send_handshake_complete()

    def _send_challenge(self, actions: list) -> None:
        from ssmex.datachannel import encryption

        kms_actions = [action for action in actions if action.get("ActionType") == "KMSEncryption"]
        if not kms_actions or kms_actions[0].get("ActionStatus") != 1:
            raise encryption.EncryptionError("the client did not accept the KMSEncryption action")
        try:
            blob = base64.b64decode(kms_actions[0]["ActionResult"]["KMSCipherTextKey"])
        except (KeyError, TypeError, ValueError) as error:
            raise encryption.EncryptionError(f"invalid KMSEncryption result: {error}") from None
        data_key = self.server.kms.plaintext_for(blob)
        if data_key is None:
            raise encryption.EncryptionError("KMSCipherTextKey is not a data key the emulated KMS issued")

        self._pending_cipher = encryption.PayloadCipher(data_key, client_side=False)
        self._challenge = os.urandom(64)
        challenge = base64.b64encode(self._pending_cipher.encrypt(self._challenge)).decode()
        self.reliable.send_data(m.PAYLOAD_ENC_CHALLENGE_REQUEST, json.dumps({"Challenge": challenge}).encode())

    def _check_challenge(self, payload: bytes) -> None:
        if self._pending_cipher is None or self.handshake_complete:
            return
        from ssmex.datachannel import encryption

        try:
            answer = base64.b64decode(json.loads(payload)["Challenge"])
            matches = self._pending_cipher.decrypt(answer) == self._challenge
        except (ValueError, KeyError, TypeError, encryption.EncryptionError) as error:
            raise m.MessageError(f"invalid EncChallengeResponse: {error}") from None
        if not matches:
            logger.warning("session %s: the client's encryption challenge response is invalid", self.session_id)
            self.end_session("KMS encryption failed: the encryption challenge was answered wrongly")
            return
        self.cipher = self._pending_cipher
        self.reliable.max_payload = m.MAX_PAYLOAD_SIZE + encryption.NONCE_SIZE + 16
        logger.info("session %s: KMS encryption enabled", self.session_id)
        self._send_handshake_complete()

    def _send_handshake_complete(self) -> None:
        elapsed = int((time.monotonic() - self._handshake_started) * 1e9)
        self.reliable.send_data(m.PAYLOAD_HANDSHAKE_COMPLETE,
                                json.dumps({"HandshakeTimeToComplete": elapsed, "CustomerMessage": ""}).encode())
        self.handshake_complete = True
        self.responder = self._create_responder()
        self.responder.start()

    def _create_responder(self):
        if self.session_type == "Port":
            destination = lambda: responders.resolve_destination(self.instance, self.session.parameters or {},
                                                                 self.server.faults.refused_ports)
            if self.properties.get("type") != "LocalPortForwarding":
                return responders.BasicPortResponder(self, destination, eager=True)
            if m.version_greater_than(self.agent_version, MUX_MIN_AGENT_VERSION):
                return responders.MuxPortResponder(self, destination)
            return responders.BasicPortResponder(self, destination)
        hostname = getattr(self.instance, "name", "") or "ip-127-0-0-1"
        command = responders.first_parameter(self.session.parameters or {}, "command")
        return responders.ShellResponder(self, session_type=self.session_type, hostname=hostname, command=command)

    # -- used by responders ------------------------------------------------

    def send_data(self, payload_type: int, payload: bytes) -> None:
        if self.ended.is_set():
            return
        cipher = self.cipher
        if cipher is None or payload_type not in ENCRYPTED_PAYLOAD_TYPES:
            self.reliable.send_data(payload_type, payload)
            return
        for start in range(0, max(len(payload), 1), m.MAX_PAYLOAD_SIZE):
            self.reliable.send_data(payload_type, cipher.encrypt(payload[start:start + m.MAX_PAYLOAD_SIZE]))

    def end_session(self, output: str = "") -> None:
        """Mark the session terminated and send channel_closed once the last messages are acknowledged."""
        if self.ended.is_set():
            return
        self.ended.set()
        emulator = self.server.emulator
        with emulator.lock:
            if self.session.status == "Connected":
                self.session.status = "Terminated"
                self.session.end_date = datetime.datetime.now(datetime.timezone.utc).timestamp()
        threading.Thread(target=self._close_channel, args=(output,), name=f"emulator-{self.session_id}-close",
                         daemon=True).start()

    def _close_channel(self, output: str) -> None:
        # Called on its own thread, because acks arrive on the websocket's thread.
        self.reliable.wait_drained(CLOSE_DRAIN_TIMEOUT)
        frame = m.encode(m.CHANNEL_CLOSED, 0, 0, m.channel_closed_payload(
            self.session_id, output, destination_id=self.session.target))
        self.reliable.send_raw(frame)
        logger.info("session %s: sent channel_closed", self.session_id)
        if self.responder is not None:
            self.responder.stop()
        self.reliable.close()

    # -- websocket ---------------------------------------------------------

    def attach(self, ws) -> None:
        with self._lock:
            previous, self.ws = self.ws, ws
        if previous is not None and previous is not ws:
            logger.info("session %s: a new websocket replaces the previous one", self.session_id)
            _abort(previous)
        self.reliable.attach(ws)
        if not self.handshake_sent:
            self.send_handshake_request()

    def detach(self, ws) -> None:
        with self._lock:
            if self.ws is ws:
                self.ws = None
        self.reliable.detach(ws)

    def drop_websocket(self) -> bool:
        """Drop the current websocket as a failing network would; return False when none is attached."""
        with self._lock:
            ws = self.ws
        if ws is None:
            return False
        logger.info("session %s: fault: dropped the websocket on request", self.session_id)
        self.detach(ws)
        _abort(ws)
        return True

    def handle_frame(self, ws, frame: bytes) -> None:
        message = m.decode_and_validate(frame, strict_length=True)
        if message.message_type == m.ACKNOWLEDGE:
            self.reliable.handle_ack(message)
            return
        if message.message_type != m.INPUT_STREAM_DATA:
            logger.debug("session %s: ignored message type %r", self.session_id, message.message_type)
            return

        faults = self.server.faults
        sequence_number = message.sequence_number
        is_new = not self.reliable.is_buffered_or_duplicate(sequence_number)
        if not is_new:
            self.duplicates_received += 1
        if is_new and sequence_number not in self._lost_inputs:
            self._input_count += 1
            if faults.lose_input_every and self._input_count % faults.lose_input_every == 0:
                self._lost_inputs.add(sequence_number)
                logger.debug("session %s: fault: lost input seq %d", self.session_id, sequence_number)
                return

        ready = self.reliable.accept(message)
        if ready is None:
            return

        self._ack_count += 1
        if faults.lose_ack_every and self._ack_count % faults.lose_ack_every == 0:
            logger.debug("session %s: fault: lost the ack of seq %d", self.session_id, sequence_number)
        else:
            self.reliable.send_ack(message, delay=faults.ack_delay)

        for in_order in ready:
            self._process(in_order)

    def _process(self, message: m.ClientMessage) -> None:
        payload_type = message.payload_type
        if payload_type == m.PAYLOAD_HANDSHAKE_RESPONSE:
            self._complete_handshake(message.payload)
        elif payload_type == m.PAYLOAD_ENC_CHALLENGE_RESPONSE:
            self._check_challenge(message.payload)
        elif payload_type == m.PAYLOAD_FLAG:
            flag = m.parse_flag(message.payload)
            self.flags.append(flag)
            if flag == m.FLAG_TERMINATE_SESSION:
                logger.info("session %s: client sent TerminateSession", self.session_id)
                self.end_session()
            elif flag == m.FLAG_DISCONNECT_TO_PORT and self.responder is not None:
                self.responder.on_disconnect()
        elif payload_type == m.PAYLOAD_SIZE:
            try:
                size = json.loads(message.payload)
                cols, rows = int(size["cols"]), int(size["rows"])
            except (ValueError, KeyError, TypeError) as error:
                raise m.MessageError(f"invalid Size payload: {error}") from None
            self.sizes.append((cols, rows))
            if isinstance(self.responder, responders.ShellResponder):
                self.responder.on_size(cols, rows)
        elif payload_type == m.PAYLOAD_OUTPUT:
            if self.responder is None:
                logger.debug("session %s: dropped Output sent before the handshake completed", self.session_id)
                return
            payload = message.payload
            if self.cipher is not None:
                from ssmex.datachannel import encryption

                try:
                    payload = self.cipher.decrypt(payload)
                except encryption.EncryptionError as error:
                    raise m.MessageError(f"seq {message.sequence_number}: {error}") from None
            self.responder.on_output(payload)
        else:
            logger.debug("session %s: ignored payload type %d", self.session_id, payload_type)


def _abort(ws) -> None:
    """Drop a websocket without a close frame, as a failing network would."""
    try:
        ws.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class DataChannelServer:
    """A loopback websocket server that plays the AWS side of every emulated session."""

    def __init__(self, emulator, port: int = 0):
        self.emulator = emulator
        self.faults = DataChannelFaults()
        # Set both to make every new session request KMS encryption.
        self.kms = None
        self.kms_key_id: Optional[str] = None
        self.channels: dict[str, SessionChannel] = {}
        # Reasons for every websocket closed because of bad input, oldest first.
        self.rejections: list[str] = []
        self._lock = threading.Lock()
        self._server = websockets.sync.server.serve(
            self._handle_connection, "127.0.0.1", port, compression=None, max_size=1 << 20,
            open_timeout=OPENING_TIMEOUT, close_timeout=2,
        )
        self.port = self._server.socket.getsockname()[1]
        self._thread: Optional[threading.Thread] = None
        emulator.add_listener(self._on_emulator_event)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> "DataChannelServer":
        self.emulator.data_channel_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, name="ssmex-emulator-datachannel",
                                        daemon=True)
        self._thread.start()
        logger.info("data-channel server listening on %s", self.url)
        return self

    def close(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            channels = list(self.channels.values())
        for channel in channels:
            if channel.responder is not None:
                channel.responder.stop()
            channel.reliable.close()

    def __enter__(self) -> "DataChannelServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _on_emulator_event(self, event: str, session) -> None:
        if event != "terminate":
            return
        with self._lock:
            channel = self.channels.get(session.session_id)
        if channel is not None:
            channel.end_session()

    def channel_for(self, session_id: str) -> Optional[SessionChannel]:
        with self._lock:
            return self.channels.get(session_id)

    # -- per websocket -----------------------------------------------------

    def _handle_connection(self, ws) -> None:
        peer = "%s:%s" % ws.remote_address[:2] if ws.remote_address else "unknown peer"
        channel: Optional[SessionChannel] = None
        try:
            channel = self._open(ws)
            self._serve(ws, channel)
        except ConnectionRejected as rejection:
            self._reject(ws, peer, channel, rejection)
        except m.MessageError as error:
            self._reject(ws, peer, channel, ConnectionRejected(f"invalid message: {error}", CLOSE_CODE_PROTOCOL))
        except ConnectionClosed:
            pass
        finally:
            if channel is not None:
                channel.detach(ws)

    def _reject(self, ws, peer: str, channel: Optional[SessionChannel], rejection: ConnectionRejected) -> None:
        session = channel.session_id if channel is not None else "no session"
        text = f"{rejection.reason} ({session}, from {peer})"
        with self._lock:
            self.rejections.append(text)
        logger.warning("closed a data-channel websocket: %s", text)
        try:
            ws.close(rejection.code, rejection.reason[:120])
        except (ConnectionClosed, OSError):
            pass

    def _open(self, ws) -> SessionChannel:
        try:
            opening = ws.recv(timeout=OPENING_TIMEOUT)
        except TimeoutError:
            raise ConnectionRejected(f"no opening message within {OPENING_TIMEOUT:g} s") from None
        if not isinstance(opening, str):
            raise ConnectionRejected("the opening message is not a TEXT frame", CLOSE_CODE_PROTOCOL)
        try:
            body = json.loads(opening)
            token = body["TokenValue"]
        except (ValueError, KeyError, TypeError):
            raise ConnectionRejected("the opening message is not JSON with a TokenValue", CLOSE_CODE_PROTOCOL) from None
        if not isinstance(token, str):
            raise ConnectionRejected("TokenValue in the opening message is not a string", CLOSE_CODE_PROTOCOL)

        session_id = _session_id_from_path(ws.request.path if ws.request else "")
        with self.emulator.lock:
            session = self.emulator.sessions.get(session_id)
        if session is None:
            raise ConnectionRejected(f"unknown session {session_id!r}")
        if not secrets.compare_digest(session.token.encode(), token.encode()):
            raise ConnectionRejected(f"wrong TokenValue for session {session_id}")
        if session.status != "Connected":
            raise ConnectionRejected(f"session {session_id} is {session.status}")

        with self._lock:
            channel = self.channels.get(session_id)
            if channel is None:
                channel = SessionChannel(self, session)
                self.channels[session_id] = channel
        if channel.ended.is_set():
            raise ConnectionRejected(f"session {session_id} has ended")
        logger.info("session %s: client connected", session_id)
        channel.attach(ws)
        return channel

    def _serve(self, ws, channel: SessionChannel) -> None:
        channel.reliable.mark_receiver_thread()
        received = 0
        while True:
            frame = ws.recv()
            if isinstance(frame, str):
                frame = frame.encode()
            channel.handle_frame(ws, frame)
            received += 1

            limit = self.faults.drop_websocket_after
            if limit is not None and received >= limit:
                self.faults.drop_websocket_after = None
                logger.info("session %s: fault: dropped the websocket after %d messages", channel.session_id,
                            received)
                channel.detach(ws)
                _abort(ws)
                return


def _session_id_from_path(path: str) -> str:
    # StreamUrl paths end in /v1/data-channel/<SessionId>, followed by a query string.
    parsed = urllib.parse.urlsplit(path)
    return parsed.path.rstrip("/").rsplit("/", 1)[-1]


def start_data_channel_server(emulator, port: int = 0) -> DataChannelServer:
    """Start the data-channel server for `emulator` and point its StreamUrls at it."""
    return DataChannelServer(emulator, port).start()
