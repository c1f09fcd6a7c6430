"""Decoding of a request handed over in an environment variable.

Callers that cannot pass structured values on a command line intact, such as Windows
PowerShell 5.1, put the request in SSMEX_REQUEST as base64 of UTF-8 JSON:

    {"command": "Start-SSMSessionEx", "parameters": {"Target": "i-0123456789abcdef0"}, "whatIf": false}

base64 survives every way of passing a value to a child process, and the JSON may start
with a UTF-8 byte order mark because Windows PowerShell 5.1 writes one.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from ssmex.errors import ExitCode, SsmexError

REQUEST_VARIABLE = "SSMEX_REQUEST"
EXAMPLE = '{"command": "Get-SSMSessionEx"}'


@dataclass
class Request:
    """A command name, its parameters by name, and whether only to show what would run."""

    command: str
    parameters: dict[str, Any] = field(default_factory=dict)
    what_if: bool = False


def _invalid(detail: str) -> SsmexError:
    return SsmexError(
        f"{REQUEST_VARIABLE} {detail}; set it to base64 of UTF-8 JSON such as {EXAMPLE}.",
        ExitCode.USAGE,
    )


def decode_request(encoded: str | None) -> Request:
    """Decode and check the value of SSMEX_REQUEST.

    Raises SsmexError with one sentence when the value is missing, is not base64, not
    UTF-8, not JSON, or not an object with a string "command" and an object "parameters".
    Top-level keys are matched case-insensitively.
    """
    if encoded is None or not encoded.strip():
        raise _invalid("is not set or empty")
    try:
        raw = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("is not valid base64") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _invalid(f"does not decode to UTF-8 text (invalid byte at offset {error.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise _invalid(f"does not decode to valid JSON (character {error.pos + 1}: {error.msg})") from None
    if not isinstance(value, dict):
        raise _invalid("decodes to JSON that is not an object")

    members = {str(name).lower(): item for name, item in value.items()}
    unknown = sorted(set(members) - {"command", "parameters", "whatif"})
    if unknown:
        raise _invalid(f"has the unknown key {unknown[0]!r}; the keys are command, parameters and whatIf")
    command = members.get("command")
    if not isinstance(command, str) or not command.strip():
        raise _invalid('has no "command" string')
    parameters = members.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise _invalid('has a "parameters" value that is not an object')
    what_if = members.get("whatif", False)
    if not isinstance(what_if, bool):
        raise _invalid('has a "whatIf" value that is not true or false')
    return Request(command=command.strip(), parameters=parameters, what_if=what_if)


def encode_request(request: Request) -> str:
    """Encode a request the way the PowerShell module does, for tests and other callers."""
    document = {"command": request.command, "parameters": request.parameters, "whatIf": request.what_if}
    return base64.b64encode(json.dumps(document, ensure_ascii=False).encode("utf-8")).decode("ascii")
