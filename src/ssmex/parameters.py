"""Parsing of the StartSession Parameters value: JSON, AWS CLI shorthand or file://."""

from __future__ import annotations

import json
import os
import re

from ssmex.errors import ExitCode, SsmexError

_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*=(.*)$", re.DOTALL)


def _invalid(detail: str) -> SsmexError:
    return SsmexError(
        f"Invalid --parameters: {detail}; use JSON such as "
        '\'{"portNumber":["3389"]}\' or shorthand such as portNumber=3389,localPortNumber=33389.',
        ExitCode.USAGE,
    )


def parse_parameters(text: str | None) -> dict[str, list[str]] | None:
    """Parse a --parameters value into a map of names to lists of strings.

    Accepts JSON (an object whose values are strings, numbers or lists of them), the
    AWS CLI shorthand (`key=value,key2=v1,v2` or `key=[v1,v2]`), or `file://PATH`
    holding either. Returns None for None.
    """
    if text is None:
        return None
    if text.startswith("file://"):
        path = os.path.expanduser(text[len("file://"):])
        try:
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read()
        except OSError as error:
            raise SsmexError(
                f"Cannot read --parameters file {path}: {error.strerror}; check the path after file://.",
                ExitCode.USAGE,
            ) from None
    stripped = text.strip()
    if not stripped:
        raise _invalid("the value is empty")
    if stripped.startswith("{"):
        return _from_json(stripped)
    return _from_shorthand(stripped)


def _from_json(text: str) -> dict[str, list[str]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise _invalid(f"JSON error at character {error.pos + 1}: {error.msg}") from None
    if not isinstance(value, dict):
        raise _invalid("the JSON value is not an object")
    return {str(name): _string_list(name, item) for name, item in value.items()}


def _string_list(name: str, value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    result = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise _invalid(f"the value of {name} must be a string or a list of strings")
        result.append(item if isinstance(item, str) else str(item))
    return result


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are outside quotes and brackets."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    depth = 0
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise _invalid("a ']' has no matching '['")
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quote:
        raise _invalid(f"a {quote} quote is not closed")
    if depth:
        raise _invalid("a '[' is not closed")
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _from_shorthand(text: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    name = None
    for part in _split_top_level(text):
        match = _KEY.match(part)
        if match and not part.lstrip().startswith(("'", '"')):
            name = match.group(1)
            value = match.group(2).strip()
            if value.startswith("[") and value.endswith("]"):
                inner = value[1:-1]
                result[name] = [_unquote(item) for item in _split_top_level(inner)] if inner.strip() else []
            else:
                result[name] = [_unquote(value)]
            continue
        if name is None:
            raise _invalid(f"{part.strip()!r} is not of the form name=value")
        # A part with no '=' continues the list of the name before it, as in the
        # AWS CLI shorthand: command=ls,-l gives ["ls", "-l"].
        result[name].append(_unquote(part))
    return result
