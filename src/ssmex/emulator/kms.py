"""A stand-in for the KMS GenerateDataKey call, on 127.0.0.1, for KMS-encrypted sessions.

Real KMS returns a data key and its encrypted form, and the agent later calls
KMS Decrypt on that form. Here the "encrypted form" is an opaque random id
that this object maps back to the key, which is all the emulator needs.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import os
import threading
from typing import Any, Optional

logger = logging.getLogger("ssmex.emulator.kms")


class FakeKms(http.server.ThreadingHTTPServer):
    """JSON 1.1 endpoint that serves TrentService.GenerateDataKey and records each call."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _KmsHandler)
        self._keys: dict[bytes, bytes] = {}
        # EncryptionContext of every GenerateDataKey call, oldest first.
        self.contexts: list[dict] = []
        self.lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "FakeKms":
        self._thread = threading.Thread(target=self.serve_forever, name="ssmex-emulator-kms", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    def generate_data_key(self, body: dict[str, Any]) -> dict[str, Any]:
        size = int(body.get("NumberOfBytes") or 32)
        plaintext = os.urandom(size)
        blob = b"emulated-kms-blob:" + os.urandom(16)
        with self.lock:
            self._keys[blob] = plaintext
            self.contexts.append(dict(body.get("EncryptionContext") or {}))
        return {
            "CiphertextBlob": base64.b64encode(blob).decode(),
            "Plaintext": base64.b64encode(plaintext).decode(),
            "KeyId": f"arn:aws:kms:us-east-1:000000000000:key/{body.get('KeyId', '')}",
        }

    def plaintext_for(self, blob: bytes) -> Optional[bytes]:
        """Return the data key behind a CiphertextBlob, as KMS Decrypt would."""
        with self.lock:
            return self._keys.get(blob)


class _KmsHandler(http.server.BaseHTTPRequestHandler):
    server: FakeKms
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("kms %s", format % args)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        target = self.headers.get("X-Amz-Target", "")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        if target == "TrentService.GenerateDataKey" and isinstance(body, dict):
            status, reply = 200, self.server.generate_data_key(body)
        else:
            status, reply = 400, {"__type": "UnsupportedOperationException",
                                  "message": f"The emulated KMS does not implement {target!r}."}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
