"""Reading a PowerShell hashtable or array written as text, for -Parameter and -SessionId.

A shell without PowerShell hands `@{portNumber=3389; host='db'}` or `a,b` to ssmex as one
string. Only literals are read: bare words, numbers, quoted strings, `a,b` and `@(a,b)`
arrays. Variables, subexpressions and here-strings are rejected, never evaluated.
"""

from __future__ import annotations

from ssmex.errors import ExitCode, SsmexError
from ssmex.parameters import parse_parameters


def _invalid(name: str, detail: str) -> SsmexError:
    return SsmexError(
        f"Invalid -{name}: {detail}; write it as @{{portNumber=3389; localPortNumber=33389}} "
        "or portNumber=3389,localPortNumber=33389.",
        ExitCode.USAGE,
    )


def split_top_level(text: str, separators: str, name: str) -> list[str]:
    """Split text on separators that are outside quotes and brackets.

    Quoted parts keep their quotes; a doubled quote inside a quoted string is a literal
    quote, as in PowerShell.
    """
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    depth = 0
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            current.append(char)
            if char == quote:
                if index + 1 < len(text) and text[index + 1] == quote:
                    current.append(quote)
                    index += 1
                else:
                    quote = ""
            index += 1
            continue
        if char in "'\"":
            quote = char
        elif char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
            if depth < 0:
                raise _invalid(name, f"a {char!r} has no matching opening bracket")
        elif char in separators and depth == 0:
            parts.append("".join(current))
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    if quote:
        raise _invalid(name, f"a {quote} quote is not closed")
    if depth:
        raise _invalid(name, "a bracket is not closed")
    parts.append("".join(current))
    return parts


def literal(text: str, name: str) -> str:
    """Return the string a PowerShell literal stands for: a quoted string or a bare word."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        quote = text[0]
        inner = text[1:-1]
        if quote == '"' and ("$" in inner or "`" in inner):
            raise _invalid(name, f"{text} uses $ or a backtick, which ssmex does not expand; use single quotes")
        return inner.replace(quote * 2, quote)
    if not text:
        raise _invalid(name, "a value is empty")
    if text[0] in "$@(" or "`" in text:
        raise _invalid(name, f"{text} is an expression, which ssmex does not evaluate; write the value itself")
    return text


def array_literal(text: str, name: str) -> list[str]:
    """Return the strings of `a,b`, `@(a,b)` or a single value."""
    text = text.strip()
    if text.startswith("@(") and text.endswith(")"):
        inner = text[2:-1].strip()
        if not inner:
            return []
        text = inner
    return [literal(item, name) for item in split_top_level(text, ",", name)]


def hashtable_literal(text: str, name: str) -> dict[str, list[str]]:
    """Return the keys and string values of `@{key=value; key2=a,b}`."""
    inner = text.strip()[2:-1]
    result: dict[str, list[str]] = {}
    for entry in split_top_level(inner, ";\n", name):
        if not entry.strip():
            continue
        pieces = split_top_level(entry, "=", name)
        if len(pieces) != 2:
            raise _invalid(name, f"{entry.strip()!r} is not of the form key=value")
        key = literal(pieces[0], name)
        result[key] = array_literal(pieces[1], name)
    return result


def parse_parameter_text(text: str, name: str = "Parameter") -> dict[str, list[str]]:
    """Parse -Parameter text: a hashtable literal, JSON, or the AWS CLI shorthand."""
    stripped = text.strip()
    if stripped.startswith("@{") and stripped.endswith("}"):
        return hashtable_literal(stripped, name)
    parsed = parse_parameters(stripped)
    return parsed if parsed is not None else {}
