"""The emulator's state and its SSM API: JSON 1.1 over HTTP on 127.0.0.1.

It serves StartSession, ResumeSession, TerminateSession, DescribeSessions and
DescribeInstanceInformation. It records every call with the access key id that signed
it, and fails calls on request, so tests see what a client really sent.
"""

from __future__ import annotations

import datetime
import http.server
import itertools
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("ssmex.emulator")

DEFAULT_AGENT_VERSION = "3.3.1142.0"
SESSION_DOCUMENTS = (
    "SSM-SessionManagerRunShell",
    "AWS-StartPortForwardingSession",
    "AWS-StartPortForwardingSessionToRemoteHost",
    "AWS-StartSSHSession",
    "AWS-StartInteractiveCommand",
    "AWS-StartNonInteractiveCommand",
)

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<access_key>[A-Za-z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request, ?SignedHeaders=(?P<headers>[a-z0-9;-]+), ?Signature=[0-9a-f]{64}$"
)


@dataclass
class EmulatedInstance:
    """A managed node the emulator pretends to be connected to."""

    instance_id: str
    name: str = ""
    ping_status: str = "Online"
    platform: str = "Linux"
    agent_version: str = DEFAULT_AGENT_VERSION
    # Remote port → the loopback address the emulator dials on the instance's behalf.
    port_map: dict[int, tuple[str, int]] = field(default_factory=dict)
    # Remote host → loopback address, for forwarding to a remote host.
    host_map: dict[str, str] = field(default_factory=dict)
    # What the EC2 API shows (ssmex.emulator.ec2): the instance state, its public address,
    # and for Windows instances the key pair's public key (PEM) and the Administrator
    # password that GetPasswordData returns encrypted to that key.
    state: str = "running"
    public_ip: str = ""
    public_dns: str = ""
    key_name: str = ""
    key_public_pem: str = ""
    password: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "InstanceId": self.instance_id,
            "PingStatus": self.ping_status,
            "LastPingDateTime": datetime.datetime.now(datetime.timezone.utc).timestamp(),
            "AgentVersion": self.agent_version,
            "PlatformType": self.platform,
            "PlatformName": "Microsoft Windows Server 2022 Datacenter" if self.platform == "Windows" else "Amazon Linux",
            "ResourceType": "ManagedInstance" if self.instance_id.startswith("mi-") else "EC2Instance",
            "ComputerName": self.name or self.instance_id,
            "Name": self.name,
        }


@dataclass
class EmulatedSession:
    """A session the emulator started; the token changes on every ResumeSession."""

    session_id: str
    token: str
    target: str
    document_name: str
    parameters: dict[str, list[str]]
    reason: str | None
    owner_access_key: str
    status: str = "Connected"
    start_date: float = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).timestamp())
    end_date: float | None = None


@dataclass
class RecordedCall:
    """One API call as the emulator received it."""

    operation: str
    access_key_id: str | None
    region: str | None
    body: dict[str, Any]
    status: int


class EmulatorApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class Emulator:
    """Shared state of the emulator: instances, sessions, recorded calls and faults."""

    def __init__(self, instances: list[EmulatedInstance] | None = None, deterministic: bool = False) -> None:
        self.instances: dict[str, EmulatedInstance] = {instance.instance_id: instance for instance in instances or []}
        self.sessions: dict[str, EmulatedSession] = {}
        self.calls: list[RecordedCall] = []
        # Base of every StreamUrl; the data-channel server sets it when it starts.
        self.data_channel_url = "ws://127.0.0.1:9"
        self.lock = threading.RLock()
        self._listeners: list[Callable[[str, EmulatedSession], None]] = []
        self._forced_errors: dict[str, list[EmulatorApiError]] = {}
        self._answer_delays: dict[str, list[float]] = {}
        self._expired_keys: set[str] = set()
        self._counter = itertools.count(1)
        self._deterministic = deterministic

    def reset(self) -> None:
        """Forget sessions and calls, and number new sessions from the start again."""
        with self.lock:
            self.sessions.clear()
            self.calls.clear()
            self._forced_errors.clear()
            self._answer_delays.clear()
            self._counter = itertools.count(1)

    def add_instance(self, instance: EmulatedInstance) -> None:
        with self.lock:
            self.instances[instance.instance_id] = instance

    def add_listener(self, listener: Callable[[str, EmulatedSession], None]) -> None:
        """Call listener(event, session) on "start", "resume" and "terminate"."""
        self._listeners.append(listener)

    def fail_next(self, operation: str, code: str, message: str, status: int = 400) -> None:
        """Make the next call of operation fail with this AWS error."""
        with self.lock:
            self._forced_errors.setdefault(operation, []).append(EmulatorApiError(code, message, status))

    def delay_next(self, operation: str, seconds: float) -> None:
        """Make the next call of operation do its work at once but send its response after seconds."""
        with self.lock:
            self._answer_delays.setdefault(operation, []).append(seconds)

    def expire_access_key(self, access_key: str) -> None:
        """Reject every later call signed by access_key with 403 ExpiredTokenException."""
        with self.lock:
            self._expired_keys.add(access_key)

    def calls_of(self, operation: str) -> list[RecordedCall]:
        with self.lock:
            return [call for call in self.calls if call.operation == operation]

    def stream_url(self, session_id: str) -> str:
        return f"{self.data_channel_url}/v1/data-channel/{session_id}?role=publish_subscribe&cell-number=1"

    def session_for_token(self, token: str) -> EmulatedSession | None:
        with self.lock:
            for session in self.sessions.values():
                if secrets.compare_digest(session.token, token):
                    return session
        return None

    def _notify(self, event: str, session: EmulatedSession) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, session)
            except Exception:
                log.exception("emulator listener failed on %s of session %s", event, session.session_id)

    def _new_token(self) -> str:
        if self._deterministic:
            return f"emulator-token-{next(self._counter):04d}"
        return secrets.token_urlsafe(48)

    def _new_session_id(self) -> str:
        if self._deterministic:
            return f"emulator-{next(self._counter):017x}"
        return f"emulator-{secrets.token_hex(9)[:17]}"

    # The operations. Each takes the request body and returns the response body.

    def handle(self, operation: str, body: dict[str, Any], access_key: str | None) -> dict[str, Any]:
        with self.lock:
            if access_key in self._expired_keys:
                raise EmulatorApiError("ExpiredTokenException", "The security token included in the request is expired", 403)
            forced = self._forced_errors.get(operation)
            if forced:
                raise forced.pop(0)
            delays = self._answer_delays.get(operation)
            delay = delays.pop(0) if delays else 0.0
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise EmulatorApiError("UnknownOperationException", f"The emulator does not implement {operation}.")
        response = handler(body, access_key)
        if delay:
            time.sleep(delay)
        return response

    def _op_StartSession(self, body: dict[str, Any], access_key: str | None) -> dict[str, Any]:
        target = body.get("Target")
        if not isinstance(target, str) or not target:
            raise EmulatorApiError("ValidationException", "1 validation error detected: Value null at 'target'.")
        document = body.get("DocumentName") or "SSM-SessionManagerRunShell"
        if document not in SESSION_DOCUMENTS:
            raise EmulatorApiError("InvalidDocument", f"Document {document} does not exist in your account.")
        with self.lock:
            instance = self.instances.get(target)
            if instance is None or instance.ping_status != "Online":
                raise EmulatorApiError("TargetNotConnected", f"{target} is not connected.")
            session = EmulatedSession(
                session_id=self._new_session_id(),
                token=self._new_token(),
                target=target,
                document_name=document,
                parameters=dict(body.get("Parameters") or {}),
                reason=body.get("Reason"),
                owner_access_key=access_key or "",
            )
            self.sessions[session.session_id] = session
        log.info("session %s started for %s with %s", session.session_id, target, document)
        self._notify("start", session)
        return {"SessionId": session.session_id, "TokenValue": session.token, "StreamUrl": self.stream_url(session.session_id)}

    def _session(self, body: dict[str, Any]) -> EmulatedSession:
        session_id = body.get("SessionId")
        with self.lock:
            session = self.sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None:
            raise EmulatorApiError("DoesNotExistException", f"Session {session_id} does not exist.")
        return session

    def _op_ResumeSession(self, body: dict[str, Any], access_key: str | None) -> dict[str, Any]:
        session = self._session(body)
        with self.lock:
            if session.status != "Connected":
                # For a session that has ended, the service returns no token.
                return {"SessionId": session.session_id}
            session.token = self._new_token()
        log.info("session %s resumed", session.session_id)
        self._notify("resume", session)
        return {"SessionId": session.session_id, "TokenValue": session.token, "StreamUrl": self.stream_url(session.session_id)}

    def _op_TerminateSession(self, body: dict[str, Any], access_key: str | None) -> dict[str, Any]:
        session_id = body.get("SessionId")
        with self.lock:
            session = self.sessions.get(session_id) if isinstance(session_id, str) else None
            if session is not None and session.status != "Terminated":
                session.status = "Terminated"
                session.end_date = datetime.datetime.now(datetime.timezone.utc).timestamp()
            else:
                session = None
        if session is not None:
            log.info("session %s terminated", session.session_id)
            self._notify("terminate", session)
        return {"SessionId": session_id}

    def _op_DescribeSessions(self, body: dict[str, Any], access_key: str | None) -> dict[str, Any]:
        state = body.get("State")
        if state not in ("Active", "History"):
            raise EmulatorApiError("ValidationException", "State must be Active or History.")
        with self.lock:
            sessions = [
                session for session in self.sessions.values() if (session.status == "Connected") == (state == "Active")
            ]
        for session_filter in body.get("Filters") or []:
            key, value = session_filter.get("key"), session_filter.get("value")
            if key == "Target":
                sessions = [session for session in sessions if session.target == value]
            elif key == "SessionId":
                sessions = [session for session in sessions if session.session_id == value]
        return {
            "Sessions": [
                {
                    "SessionId": session.session_id,
                    "Target": session.target,
                    "Status": session.status,
                    "StartDate": session.start_date,
                    **({"EndDate": session.end_date} if session.end_date else {}),
                    "DocumentName": session.document_name,
                    "Owner": f"arn:aws:iam::000000000000:user/{session.owner_access_key}",
                    **({"Reason": session.reason} if session.reason else {}),
                }
                for session in sessions
            ]
        }

    def _op_DescribeInstanceInformation(self, body: dict[str, Any], access_key: str | None) -> dict[str, Any]:
        with self.lock:
            instances = list(self.instances.values())
        for instance_filter in body.get("Filters") or []:
            values = instance_filter.get("Values") or []
            key = instance_filter.get("Key")
            if key == "InstanceIds":
                instances = [instance for instance in instances if instance.instance_id in values]
            elif key == "PingStatus":
                instances = [instance for instance in instances if instance.ping_status in values]
            elif key == "PlatformTypes":
                instances = [instance for instance in instances if instance.platform in values]
        for instance_filter in body.get("InstanceInformationFilterList") or []:
            values = instance_filter.get("valueSet") or []
            if instance_filter.get("key") == "InstanceIds":
                instances = [instance for instance in instances if instance.instance_id in values]
        return {"InstanceInformationList": [instance.describe() for instance in instances]}


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "SsmApiServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("api %s", format % args)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", secrets.token_hex(16))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._reply(status, {"__type": code, "message": message})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        target_header = self.headers.get("X-Amz-Target", "")
        emulator = self.server.emulator
        if not target_header.startswith("AmazonSSM."):
            self._error(400, "UnknownOperationException", f"Unknown target {target_header!r}.")
            return
        operation = target_header.split(".", 1)[1]
        match = _AUTHORIZATION.match(self.headers.get("Authorization", ""))
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        if match is None:
            status, reply = 403, {"__type": "MissingAuthenticationTokenException", "message": "Missing or malformed SigV4 Authorization header."}
        elif match.group("service") != "ssm":
            status, reply = 403, {"__type": "InvalidSignatureException", "message": f"Credential scope names service {match.group('service')}, not ssm."}
        elif not isinstance(body, dict):
            status, reply = 400, {"__type": "SerializationException", "message": "The body is not a JSON object."}
        else:
            try:
                status, reply = 200, emulator.handle(operation, body, match.group("access_key"))
            except EmulatorApiError as error:
                status, reply = error.status, {"__type": error.code, "message": error.message}
        with emulator.lock:
            emulator.calls.append(
                RecordedCall(
                    operation=operation,
                    access_key_id=match.group("access_key") if match else None,
                    region=match.group("region") if match else None,
                    body=body if isinstance(body, dict) else {},
                    status=status,
                )
            )
        log.debug("api %s signed by %s -> %d", operation, match.group("access_key") if match else "nobody", status)
        self._reply(status, reply)


class LoopbackHttpServer(http.server.ThreadingHTTPServer):
    """A threaded HTTP server for one emulated AWS endpoint, bound to 127.0.0.1 only."""

    daemon_threads = True
    thread_name = "ssmex-emulator-http"

    def __init__(self, emulator: Emulator, handler: type, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.emulator = emulator
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self):
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SsmApiServer(LoopbackHttpServer):
    """The emulator's SSM endpoint, bound to 127.0.0.1 only."""

    thread_name = "ssmex-emulator-api"

    def __init__(self, emulator: Emulator, port: int = 0) -> None:
        super().__init__(emulator, _Handler, port)
