"""A loopback HTTP server that hands ssmex's AWS credentials to session-manager-plugin.

The plugin resolves credentials itself for the calls it makes during a session
(ResumeSession, TerminateSession, KMS). Give it AWS_CONTAINER_CREDENTIALS_FULL_URI and
AWS_CONTAINER_AUTHORIZATION_TOKEN, an empty profile argument and no other credentials,
and its AWS SDK fetches them from this server in the container credential format. It
fetches again whenever its cached ones are within 5 minutes of their Expiration
(observed with a plugin built on aws-sdk-go 1.54.10). So a prompt, an SSO login or a
credential process runs once, in ssmex, and every refresh after that happens here.
"""

from __future__ import annotations

import datetime
import hmac
import http.server
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from ssmex.redact import register_secret

log = logging.getLogger("ssmex.credserver")

LOOPBACK = "127.0.0.1"
CREDENTIALS_PATH = "/ssmex/credentials"
# The Expiration sent for long-term keys and for credentials whose expiry ssmex cannot
# know, so the plugin fetches the same keys again hourly.
# NOTE: Expiration is always sent because it is not known which aws-sdk-go releases
# accept a response without one.
UNKNOWN_EXPIRY_INTERVAL = datetime.timedelta(hours=1)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso8601(moment: datetime.datetime) -> str:
    """Format a moment as RFC 3339 in UTC, the form Go's time.Time accepts in JSON."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ServedCredentials:
    """One response of the server: the keys and, when known, their expiry."""

    access_key: str
    secret_key: str
    token: str | None
    expiry: datetime.datetime | None

    def container_response(self, now: datetime.datetime) -> dict[str, str]:
        """Return the container credential provider's JSON body for these keys."""
        expiry = self.expiry or now + UNKNOWN_EXPIRY_INTERVAL
        body = {"AccessKeyId": self.access_key, "SecretAccessKey": self.secret_key}
        if self.token:
            body["Token"] = self.token
        body["Expiration"] = iso8601(expiry)
        return body


class CredentialsUnavailable(Exception):
    """No usable credentials to return; the message states why, without secrets."""


class RefreshingSource:
    """Credentials from a botocore credentials object, refreshed by botocore as expiry nears."""

    refreshable = True

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials
        self._lock = threading.Lock()

    def current(self) -> ServedCredentials:
        with self._lock:
            try:
                frozen = self.credentials.get_frozen_credentials()
            except Exception as error:  # botocore raises many types from a refresh
                raise CredentialsUnavailable(f"refreshing the credentials failed: {error}") from None
            # RefreshableCredentials keeps its expiry in a private attribute; plain
            # Credentials (long-term keys) have none.
            expiry = getattr(self.credentials, "_expiry_time", None)
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        return ServedCredentials(frozen.access_key, frozen.secret_key, frozen.token, expiry)

    def expiry(self) -> datetime.datetime | None:
        return getattr(self.credentials, "_expiry_time", None)


class FrozenSource:
    """Credentials that ssmex cannot refresh: served as they are until they expire."""

    refreshable = False

    def __init__(self, credentials: ServedCredentials) -> None:
        self.credentials = credentials
        register_secret(credentials.secret_key)
        register_secret(credentials.token)

    def current(self) -> ServedCredentials:
        expiry = self.credentials.expiry
        if expiry is not None and expiry <= utc_now():
            raise CredentialsUnavailable(
                f"the credentials expired at {iso8601(expiry)} and ssmex cannot refresh them without a prompt"
            )
        return self.credentials

    def expiry(self) -> datetime.datetime | None:
        return self.credentials.expiry


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "CredentialServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # The request line contains no secret, and the Authorization header is never logged.
        log.debug("credential server: %s", format % args)

    def _send(self, status: int, body: bytes = b"", content_type: str | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _authorized(self) -> bool:
        presented = self.headers.get("Authorization", "")
        return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), self.server.token.encode("ascii"))

    def _handle(self) -> None:
        if not self._authorized():
            self.server.note_rejected(self.client_address)
            self._send(401)
            return
        if self.command != "GET":
            self._send(405)
            return
        if self.path.split("?", 1)[0] != CREDENTIALS_PATH:
            self._send(404)
            return
        try:
            served = self.server.source.current()
        except CredentialsUnavailable as error:
            self.server.note_failure(str(error))
            body = json.dumps({"code": "CredentialsUnavailable", "message": f"ssmex: {error}"}).encode("utf-8")
            self._send(503, body, "application/json")
            return
        self.server.note_served(served)
        body = json.dumps(served.container_response(utc_now())).encode("utf-8")
        self._send(200, body, "application/json")

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle
    do_HEAD = _handle


class CredentialServer(http.server.ThreadingHTTPServer):
    """The credential endpoint for one plugin: 127.0.0.1, a random port and a random token.

    Every request must carry the token as its Authorization header, compared in constant
    time; any other request gets 401 with an empty body.
    """

    daemon_threads = True
    # On Windows SO_REUSEADDR would let another process bind the same port.
    allow_reuse_address = False

    def __init__(self, source: RefreshingSource | FrozenSource) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.source = source
        self.token = secrets.token_urlsafe(32)
        register_secret(self.token)
        self.served_count = 0
        self.rejected_count = 0
        self._last_access_key: str | None = None
        self._last_failure: str | None = None
        self._count_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}{CREDENTIALS_PATH}"

    def note_served(self, served: ServedCredentials) -> None:
        with self._count_lock:
            self.served_count += 1
            changed = served.access_key != self._last_access_key
            self._last_access_key = served.access_key
            self._last_failure = None
        expiry = iso8601(served.expiry) if served.expiry else "no known expiry"
        if changed:
            log.info("credential server handed the plugin access key id %s (%s)", served.access_key, expiry)
        else:
            log.debug("credential server handed the plugin access key id %s again (%s)", served.access_key, expiry)

    def note_failure(self, reason: str) -> None:
        with self._count_lock:
            repeated = reason == self._last_failure
            self._last_failure = reason
        # The plugin requests credentials again before each signing, so log a failure once until it changes.
        if repeated:
            log.debug("credential server still has no credentials: %s", reason)
        else:
            log.warning("the plugin asked for credentials, but %s; its ResumeSession calls will fail", reason)

    def note_rejected(self, client: tuple) -> None:
        with self._count_lock:
            self.rejected_count += 1
            first = self.rejected_count == 1
        if first:
            log.warning("credential server rejected a request from %s:%s without the right token", client[0], client[1])
        else:
            log.debug("credential server rejected request %d without the right token", self.rejected_count)

    def start(self) -> "CredentialServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="ssmex-credential-server", daemon=True)
        self._thread.start()
        log.debug("credential server listening on %s", self.url)
        return self

    def close(self) -> None:
        # shutdown() waits for serve_forever() to return, so it would block forever on a
        # server that was never started.
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()
        log.debug("credential server closed after %d responses with credentials", self.served_count)

    def __enter__(self) -> "CredentialServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
