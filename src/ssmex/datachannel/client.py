"""A native Session Manager client: the plugin's side of the data channel.

`run_session` takes the SessionId, TokenValue and StreamUrl from StartSession
and a callable that performs ResumeSession. It runs the session in this
process the way session-manager-plugin 1.2.677.0 would. It supports port
forwarding (basic or smux mux mode), stdin/stdout forwarding, interactive
shells and command sessions.

Exit status: 0 when the session ends normally, the remote ExitCode for
command sessions that send one. Failures raise DataChannelError.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import json
import logging
import random
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, TextIO

import websockets.sync.client
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ssmex.datachannel import message as m
from ssmex.datachannel.channel import ReliableChannel
from ssmex.errors import ExitCode, SsmexError
from ssmex.interrupts import TerminationSignal
from ssmex.redact import register_secret

logger = logging.getLogger("ssmex.datachannel.client")

# The plugin release whose wire behaviour this client reproduces, sent as ClientVersion.
CLIENT_VERSION = "1.2.677.0"
MUX_MIN_AGENT_VERSION = "3.0.196.0"
SMUX_KEEPALIVE_OFF_AGENT_VERSION = "3.1.1511.0"

SESSION_TYPE_PORT = "Port"
# Payload types the agent encrypts once KMS encryption is on.
ENCRYPTED_PAYLOAD_TYPES = (m.PAYLOAD_OUTPUT, m.PAYLOAD_STDERR, m.PAYLOAD_EXIT_CODE)
SHELL_SESSION_TYPES = ("Standard_Stream", "InteractiveCommands", "NonInteractiveCommands")

# The plugin dials up to 7 times and resumes up to 6 times, starting near
# 100-200 ms and doubling.
CONNECT_ATTEMPTS = 7
RESUME_ATTEMPTS = 6
FIRST_BACKOFF = 0.1

ResumeSession = Callable[[], Optional[str]]

# websockets 17 warns unless callers of connect() opt into the direct-return form.
_CONNECT_EXTRA = (
    {"legacy": True} if "legacy" in inspect.signature(websockets.sync.client.connect).parameters else {}
)


class DataChannelError(SsmexError):
    """A session that failed: the message is one sentence for the user, with no token."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message, exit_code)


@dataclass
class SessionOptions:
    """Settings of a native session. The defaults suit an interactive user."""

    connect_timeout: float = 30.0
    # Dials of the StreamUrl before giving up. The plugin makes 7.
    connect_attempts: int = CONNECT_ATTEMPTS
    handshake_timeout: float = 60.0
    # How long to wait for outstanding messages to be acknowledged before exiting.
    drain_timeout: float = 10.0
    stdin: object = None
    stdout: object = None
    stderr: object = None
    # Stream for the plugin-like status lines. None means stdout, except in
    # stdin/stdout port sessions, whose stdout carries only tunnel bytes: there it is stderr.
    status: Optional[TextIO] = None
    install_signal_handlers: bool = True
    # Called with the bound TCP port, or the Unix socket path, once a port
    # session's local listener is open.
    on_listening: Optional[Callable[[object], None]] = None
    # The session's Target, needed only for the KMS encryption context.
    target: str = ""
    # Returns a botocore KMS client, for sessions whose agent requests KMS
    # encryption. None rejects KMS encryption in the handshake.
    kms_client_factory: Optional[Callable[[], object]] = None
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Handshake:
    session_type: Optional[str] = None
    properties: dict = field(default_factory=dict)
    agent_version: str = ""


def redact_token(text: str, token: Optional[str]) -> str:
    return text.replace(token, "<redacted>") if token else text


class NativeSession:
    """One session's data channel, from first dial to channel_closed."""

    def __init__(self, session_id: str, token_value: str, stream_url: str,
                 resume: ResumeSession, options: Optional[SessionOptions] = None):
        self.session_id = session_id
        self.stream_url = stream_url
        register_secret(token_value)
        self._token = token_value
        self._resume = resume
        self.options = options or SessionOptions()

        self.channel = ReliableChannel(outgoing_type=m.INPUT_STREAM_DATA, name=f"client-{session_id}")
        self.channel.on_stall = lambda sequence_number: self.fail(
            f"the service stopped acknowledging session {session_id} (message {sequence_number} was resent"
            f" {self.channel.max_resends} times); start a new session")
        self.handshake = Handshake()
        self.handler = None
        self._ws = None

        self._handshake_done = threading.Event()
        self._done = threading.Event()
        self._exit_code = 0
        self._error: Optional[str] = None
        self._closing_lines: list[str] = []
        self.remote_exit_code: Optional[int] = None
        # Set by the KMSEncryption action, used once the challenge succeeds.
        self._pending_cipher = None
        self.cipher = None
        # Signal handlers replaced while the session runs: signal number -> previous handler.
        self.restore_signals: dict = {}

    # -- output ------------------------------------------------------------

    @property
    def stdout(self):
        return self.options.stdout or sys.stdout

    @property
    def stderr(self):
        return self.options.stderr or sys.stderr

    def status_stream(self):
        if self.options.status is not None:
            return self.options.status
        if self.handler is not None and getattr(self.handler, "uses_stdout", False):
            return self.stderr
        return self.stdout

    def print_status(self, text: str, *, stream=None) -> None:
        stream = stream or self.status_stream()
        stream.write(text)
        stream.flush()

    # -- connection ----------------------------------------------------------

    def _opening_message(self) -> str:
        return json.dumps({
            "MessageSchemaVersion": "1.0",
            "RequestId": str(uuid.uuid4()),
            "TokenValue": self._token,
            "ClientId": self.options.client_id,
            "ClientVersion": CLIENT_VERSION,
        })

    def _dial(self):
        ws = websockets.sync.client.connect(
            self.stream_url,
            compression=None,
            open_timeout=self.options.connect_timeout,
            close_timeout=2,
            max_size=None,
            ping_interval=60,
            ping_timeout=60,
            **_CONNECT_EXTRA,
        )
        ws.send(self._opening_message())
        return ws

    def _dial_with_retries(self, attempts: int) -> None:
        delay = FIRST_BACKOFF
        last_error: Optional[BaseException] = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(delay * (1 + random.random()))
                delay = FIRST_BACKOFF if delay * 2 > 5 else delay * 2
            try:
                self._ws = self._dial()
                logger.debug("connected data channel for session %s", self.session_id)
                return
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as error:
                last_error = error
                logger.debug("dial %d of %d for session %s failed: %s", attempt + 1, attempts,
                             self.session_id, error)
            except InvalidURI as error:
                raise DataChannelError(f"StreamUrl is not a websocket URL: {error}") from None
        raise DataChannelError(
            f"could not connect to the StreamUrl of session {self.session_id} after {attempts} attempts"
            f" ({last_error}); check the network path to the Session Manager endpoint",
            ExitCode.NETWORK,
        )

    def _resume_and_reconnect(self) -> bool:
        """Resume after a lost websocket: new token, same StreamUrl, no new handshake."""
        self.channel.detach()
        delay = FIRST_BACKOFF
        for attempt in range(RESUME_ATTEMPTS):
            if self._done.is_set():
                return False
            time.sleep(delay * (1 + random.random()))
            delay = FIRST_BACKOFF if delay * 2 > 5 else delay * 2
            try:
                token = self._resume()
            except Exception as error:  # the caller's API client may raise anything
                logger.warning("ResumeSession for session %s failed (attempt %d of %d): %s",
                               self.session_id, attempt + 1, RESUME_ATTEMPTS,
                               redact_token(str(error), self._token))
                continue
            if token:
                register_secret(token)
            if not token:
                self._closing_lines.append(f"Session: {self.session_id} timed out.\n")
                self.finish(0)
                return False
            self._token = token
            try:
                self._ws = self._dial()
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as error:
                logger.warning("reconnect of session %s failed (attempt %d of %d): %s",
                               self.session_id, attempt + 1, RESUME_ATTEMPTS, error)
                continue
            logger.info("resumed session %s on a new websocket", self.session_id)
            self.channel.attach(self._ws)
            return True
        self.fail(f"lost the connection to session {self.session_id} and could not resume it"
                  f" after {RESUME_ATTEMPTS} attempts")
        return False

    # -- receiving -----------------------------------------------------------

    def _receive_loop(self) -> None:
        self.channel.mark_receiver_thread()
        # Websockets that closed before delivering a single frame, in a row. A
        # service that accepts the dial but then rejects every opening message
        # would otherwise make the client resume forever.
        empty_connections = 0
        while not self._done.is_set():
            ws = self._ws
            try:
                frame = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except (ConnectionClosed, OSError) as error:
                if self._done.is_set():
                    return
                empty_connections += 1
                if empty_connections > RESUME_ATTEMPTS:
                    self.fail(f"the service closed {empty_connections} websockets of session {self.session_id}"
                              f" in a row without sending anything (last: {error}); start a new session")
                    return
                logger.info("websocket of session %s closed (%s), resuming", self.session_id, error)
                if not self._resume_and_reconnect():
                    return
                continue

            empty_connections = 0
            if isinstance(frame, str):
                frame = frame.encode()
            try:
                self._handle_frame(frame)
            except m.MessageError as error:
                self.fail(f"received an invalid message from the service in session {self.session_id}: {error}")
                return
            except Exception as error:
                logger.exception("handling a message of session %s failed", self.session_id)
                self.fail(f"session {self.session_id} failed: {error}")
                return

    def _handle_frame(self, frame: bytes) -> None:
        message = m.decode_and_validate(frame)
        kind = message.message_type

        if kind == m.ACKNOWLEDGE:
            self.channel.handle_ack(message)
        elif kind == m.OUTPUT_STREAM_DATA:
            ready = self.channel.accept(message)
            if ready is None:
                return
            self.channel.send_ack(message)
            for in_order in ready:
                self._process(in_order)
        elif kind == m.CHANNEL_CLOSED:
            self._handle_channel_closed(message)
        elif kind in (m.START_PUBLICATION, m.PAUSE_PUBLICATION):
            logger.debug("ignored %s in session %s", kind, self.session_id)
        else:
            logger.debug("ignored message type %r in session %s", kind, self.session_id)

    def _handle_channel_closed(self, message: m.ClientMessage) -> None:
        try:
            output = json.loads(message.payload).get("Output", "") or ""
        except (ValueError, AttributeError):
            output = ""
        if output:
            self._closing_lines.append(f"\n\nSessionId: {self.session_id} : {output}\n\n")
        else:
            self._closing_lines.append(f"\n\nExiting session with sessionId: {self.session_id}.\n\n")
        self.finish(self.remote_exit_code or 0)

    def _process(self, message: m.ClientMessage) -> None:
        payload_type = message.payload_type
        if payload_type == m.PAYLOAD_HANDSHAKE_REQUEST:
            self._answer_handshake(message.payload)
        elif payload_type == m.PAYLOAD_HANDSHAKE_COMPLETE:
            self._complete_handshake(message.payload)
        elif payload_type == m.PAYLOAD_ENC_CHALLENGE_REQUEST:
            self._answer_challenge(message.payload)
        else:
            if self.cipher is not None and payload_type in ENCRYPTED_PAYLOAD_TYPES:
                message = dataclasses.replace(message, payload=self._decrypt(message))
            if self.handler is None:
                # Agents too old for the handshake start with Output: that makes a shell.
                self.handshake.session_type = "Standard_Stream"
                self._create_handler()
                self._handshake_done.set()
            self.handler.on_message(message)

    def _answer_handshake(self, payload: bytes) -> None:
        try:
            request = json.loads(payload)
            actions = request.get("RequestedClientActions") or []
            self.handshake.agent_version = str(request.get("AgentVersion", ""))
        except (ValueError, AttributeError) as error:
            raise m.MessageError(f"invalid HandshakeRequest payload: {error}") from None

        processed = []
        errors = []
        for action in actions:
            action_type = action.get("ActionType", "")
            parameters = action.get("ActionParameters") or {}
            if action_type == "SessionType":
                session_type = parameters.get("SessionType")
                if session_type == SESSION_TYPE_PORT or session_type in SHELL_SESSION_TYPES:
                    self.handshake.session_type = session_type
                    properties = parameters.get("Properties") or {}
                    self.handshake.properties = {key: str(value) for key, value in properties.items()}
                    processed.append(_action_result(action_type, 1, ""))
                else:
                    message = f"unknown session type {session_type!r}"
                    processed.append(_action_result(action_type, 2, message))
                    errors.append(message)
            elif action_type == "KMSEncryption":
                result, message = self._prepare_encryption(parameters)
                processed.append(_action_result(action_type, 1 if result else 2, message, result))
                if message:
                    errors.append(message)
            else:
                message = f"{action_type} is not supported by this client"
                processed.append(_action_result(action_type, 3, message))
                errors.append(message)

        response = {
            "ClientVersion": CLIENT_VERSION,
            "ProcessedClientActions": processed,
            "Errors": errors or None,
        }
        logger.debug("session %s handshake: agent %s, session type %s", self.session_id,
                     self.handshake.agent_version, self.handshake.session_type)
        self.channel.send_data(m.PAYLOAD_HANDSHAKE_RESPONSE, json.dumps(response).encode())

    def _prepare_encryption(self, parameters: dict) -> tuple[Optional[dict], str]:
        """Get a data key from KMS; return (ActionResult, "") or (None, error)."""
        from ssmex.datachannel import encryption

        try:
            encryption.require_aes_gcm()
        except SsmexError as error:
            # A build without the cryptography package still runs unencrypted sessions.
            self.fail(error.message)
            return None, "KMS encryption is not available in this client"

        key_id = parameters.get("KMSKeyId") or ""
        if self.options.kms_client_factory is None:
            return None, "KMS encryption was requested, but this client has no KMS client"
        try:
            ciphertext_key, plaintext_key = encryption.generate_data_key(
                self.options.kms_client_factory(), key_id, self.session_id, self.options.target)
            self._pending_cipher = encryption.PayloadCipher(plaintext_key, client_side=True)
        except Exception as error:  # botocore and KMS errors of every kind end up here
            logger.warning("KMS GenerateDataKey for session %s failed: %s", self.session_id, error)
            return None, f"KMS GenerateDataKey failed: {error}"
        return encryption.kms_action_result(ciphertext_key), ""

    def _decrypt(self, message: m.ClientMessage) -> bytes:
        from ssmex.datachannel import encryption

        try:
            return self.cipher.decrypt(message.payload)
        except encryption.EncryptionError as error:
            raise m.MessageError(f"seq {message.sequence_number}: {error}") from None

    def _answer_challenge(self, payload: bytes) -> None:
        from ssmex.datachannel import encryption

        if self._pending_cipher is None:
            raise m.MessageError("the service sent an encryption challenge without a KMSEncryption action")
        try:
            challenge = base64.b64decode(json.loads(payload)["Challenge"])
        except (ValueError, KeyError, TypeError) as error:
            raise m.MessageError(f"invalid EncChallengeRequest payload: {error}") from None
        try:
            plaintext = self._pending_cipher.decrypt(challenge)
        except encryption.EncryptionError as error:
            raise m.MessageError(f"encryption challenge failed: {error}") from None
        answer = base64.b64encode(self._pending_cipher.encrypt(plaintext)).decode()
        self.cipher = self._pending_cipher
        # Each 1024-byte chunk grows by the nonce and the GCM tag once encrypted.
        self.channel.max_payload = m.MAX_PAYLOAD_SIZE + encryption.NONCE_SIZE + 16
        self.channel.send_data(m.PAYLOAD_ENC_CHALLENGE_RESPONSE, json.dumps({"Challenge": answer}).encode())
        logger.info("session %s: KMS encryption enabled", self.session_id)

    def _complete_handshake(self, payload: bytes) -> None:
        try:
            complete = json.loads(payload)
            customer_message = complete.get("CustomerMessage") or ""
        except (ValueError, AttributeError):
            customer_message = ""
        if customer_message:
            self.print_status(customer_message + "\n", stream=self.stdout)
        if self.handshake.session_type is None:
            self._closing_lines.append("Cannot perform start session: unable to determine SessionType\n")
            self.finish(0)
            return
        self._create_handler()
        self._handshake_done.set()

    def _create_handler(self) -> None:
        from ssmex.datachannel import port, shell

        if self.handshake.session_type == SESSION_TYPE_PORT:
            self.handler = port.create_port_handler(self)
        else:
            self.handler = shell.ShellHandler(self)

    # -- used by handlers ----------------------------------------------------

    def send_output(self, data: bytes) -> None:
        cipher = self.cipher
        if cipher is None:
            self.channel.send_data(m.PAYLOAD_OUTPUT, data)
            return
        for start in range(0, len(data), m.MAX_PAYLOAD_SIZE):
            self.channel.send_data(m.PAYLOAD_OUTPUT, cipher.encrypt(data[start:start + m.MAX_PAYLOAD_SIZE]))

    def send_flag(self, flag: int) -> None:
        self.channel.send_data(m.PAYLOAD_FLAG, m.flag_payload(flag))

    def finish(self, exit_code: int = 0) -> None:
        if not self._done.is_set():
            self._exit_code = exit_code
            self._done.set()

    def fail(self, reason: str) -> None:
        if not self._done.is_set():
            # run() raises the reason as DataChannelError, and the caller reports it once.
            logger.debug("session %s failed: %s", self.session_id, reason)
            self._error = reason
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    # -- main ----------------------------------------------------------------

    def run(self) -> int:
        """Run the session to its end and return the exit status."""
        self.print_status(f"\nStarting session with SessionId: {self.session_id}\n", stream=self.stderr)
        self._dial_with_retries(self.options.connect_attempts)
        self.channel.attach(self._ws)
        self.channel.start()
        receiver = threading.Thread(target=self._receive_loop, name=f"client-{self.session_id}-recv",
                                    daemon=True)
        receiver.start()

        try:
            self._wait_for_handshake()
            if self.handler is not None and not self._done.is_set():
                self.handler.activate()
            self._wait_until_done()
        except KeyboardInterrupt as interrupt:
            if self.handshake.session_type != SESSION_TYPE_PORT or self.handler is None:
                raise
            if isinstance(interrupt, TerminationSignal):
                # SIGTERM or SIGHUP: end the session without the Ctrl+C status lines; the caller
                # reports the signal.
                self.terminate()
                raise
            self._interrupt_port_session()
        finally:
            self._shut_down()

        for line in self._closing_lines:
            self.print_status(line)
        if self._error is not None:
            raise DataChannelError(self._error)
        return self._exit_code

    def _wait_for_handshake(self) -> None:
        deadline = time.monotonic() + self.options.handshake_timeout
        while not self._handshake_done.is_set() and not self._done.is_set():
            if time.monotonic() > deadline:
                self.fail(f"timed out after {self.options.handshake_timeout:g} s waiting for the handshake"
                          f" of session {self.session_id}; check that the target's SSM Agent is online")
                return
            self._handshake_done.wait(0.2)

    def _wait_until_done(self) -> None:
        while not self._done.wait(0.2):
            pass

    def _interrupt_port_session(self) -> None:
        # NOTE: the plugin calls the TerminateSession API instead when the agent is
        # 2.3.722.0 or older. This client always sends the TerminateSession flag.
        self.print_status("Terminate signal received, exiting.\n")
        try:
            self.terminate()
        except KeyboardInterrupt:
            logger.debug("second interrupt: leaving session %s without waiting", self.session_id)
        self._closing_lines.append(f"\n\nExiting session with sessionId: {self.session_id}.\n\n")
        self._exit_code = 0

    def terminate(self) -> None:
        """Send TerminateSession, as the plugin does on Ctrl+C in a port session."""
        sender = threading.Thread(target=self.send_flag, args=(m.FLAG_TERMINATE_SESSION,),
                                  name=f"client-{self.session_id}-terminate", daemon=True)
        sender.start()
        # The flag is on its way once it is handed to the websocket; do not wait for an ack.
        sender.join(2.0)

    def _shut_down(self) -> None:
        self._done.set()
        if self.handler is not None:
            try:
                self.handler.stop()
            except Exception:
                logger.exception("stopping the handler of session %s failed", self.session_id)
        for number, previous in self.restore_signals.items():
            signal.signal(number, previous)
        self.restore_signals.clear()
        self.channel.close()
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except (OSError, ConnectionClosed):
                pass


def _action_result(action_type: str, status: int, error: str, result: Optional[dict] = None) -> dict:
    return {"ActionType": action_type, "ActionStatus": status, "ActionResult": result, "Error": error}


def botocore_resume(create_client: Callable[[], object], session_id: str) -> ResumeSession:
    """Return a resume callable that performs ResumeSession with a new SSM client each time.

    `create_client` should build a botocore "ssm" client from scratch, so each
    reconnect resolves credentials again instead of reusing expired ones.
    """
    def resume() -> Optional[str]:
        response = create_client().resume_session(SessionId=session_id)
        return response.get("TokenValue") or None

    return resume


def run_session(response: Mapping[str, str], resume: ResumeSession,
                options: Optional[SessionOptions] = None) -> int:
    """Run a Session Manager session natively and return its exit status.

    `response` is the StartSession response (SessionId, TokenValue and
    StreamUrl; key case is ignored, as the plugin does). `resume` performs
    ResumeSession for this SessionId and returns the new TokenValue, or None
    when the service returned none (the session timed out). It is called anew
    for every reconnect, so it should resolve credentials each time.

    Raises DataChannelError when the session cannot start or fails.
    """
    fields = {key.lower(): value for key, value in response.items()}
    missing = [name for name in ("SessionId", "TokenValue", "StreamUrl") if not fields.get(name.lower())]
    if missing:
        raise DataChannelError(f"the StartSession response lacks {', '.join(missing)}; it cannot start a session")
    session = NativeSession(fields["sessionid"], fields["tokenvalue"], fields["streamurl"], resume, options)
    return session.run()
