"""Redaction of tokens, secret keys and passwords from anything ssmex prints or logs."""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "<redacted>"

_secrets: set[str] = set()
_lock = threading.Lock()

# Secrets that appear in text ssmex did not write itself, such as botocore's debug log of
# a response body, before ssmex has seen the value. Each pattern keeps the key and hides
# the value.
_PATTERNS = [
    re.compile(
        r"""(?P<key>["']?(?:TokenValue|SecretAccessKey|SessionToken|Token|AccessKeySecret|"""
        r"""aws_secret_access_key|aws_session_token|PasswordData|Password)["']?\s*[:=]\s*(?:b(?=["']))?["']?)"""
        r"""(?P<value>[^"',\s}]+)""",
        re.IGNORECASE,
    ),
    re.compile(r"(?P<key>X-Amz-Security-Token['\"]?\s*[:=]\s*['\"]?b?['\"]?)(?P<value>[^'\",\s}]+)", re.IGNORECASE),
    re.compile(r"(?P<key>Signature=)(?P<value>[0-9a-f]{16,})"),
    # botocore's debug log prints the SigV4 signature alone on a line after "Signature:".
    re.compile(r"(?P<key>Signature:\s*)(?P<value>[0-9a-f]{64})"),
]


def register_secret(value: str | None) -> None:
    """Remember a secret so that redact() hides it wherever it appears."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return text with every registered secret and every known secret field hidden."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda match: match.group("key") + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record and redacts the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = redact(message)
        record.args = None
        return True
