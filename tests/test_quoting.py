"""Command-line rendering for POSIX sh, the Windows C runtime, cmd.exe and PowerShell."""

import shlex
import subprocess

import pytest

from ssmex.quoting import quote_msvcrt, render_command

# Pairs of (argv element, command line) from the Microsoft C runtime rules.
MSVCRT_CASES = [
    ('{"name":"x","n":1}', '{\\"name\\":\\"x\\",\\"n\\":1}'),
    ('{"name": "a b"}', '"{\\"name\\": \\"a b\\"}"'),
    ('a\\"b', 'a\\\\\\"b'),
    ("C:\\Program Files\\", '"C:\\Program Files\\\\"'),
    ("C:\\dir\\", "C:\\dir\\"),
    ("", '""'),
    ("naïve 日本 😀", '"naïve 日本 😀"'),
    ("a&b|c<d>e^f%PATH%", "a&b|c<d>e^f%PATH%"),
]


@pytest.mark.parametrize("argument,expected", MSVCRT_CASES)
def test_msvcrt_quoting_table(argument, expected):
    assert quote_msvcrt(argument) == expected


@pytest.mark.parametrize("argument", [case[0] for case in MSVCRT_CASES] + ['\\\\"\\', "tab\there", 'end\\\\'])
def test_msvcrt_quoting_matches_list2cmdline(argument):
    assert quote_msvcrt(argument) == subprocess.list2cmdline([argument])


def split_msvcrt(line: str) -> list:
    """Split a command line with the Microsoft C runtime rules (for arguments after argv[0])."""
    arguments, current, in_quotes, index, started = [], [], False, 0, False
    while index < len(line):
        char = line[index]
        if char == "\\":
            run = 0
            while index < len(line) and line[index] == "\\":
                run += 1
                index += 1
            if index < len(line) and line[index] == '"':
                current.append("\\" * (run // 2))
                if run % 2:
                    current.append('"')
                    index += 1
            else:
                current.append("\\" * run)
            started = True
            continue
        if char == '"':
            in_quotes = not in_quotes
            started = True
        elif char in " \t" and not in_quotes:
            if started:
                arguments.append("".join(current))
                current, started = [], False
        else:
            current.append(char)
            started = True
        index += 1
    if started:
        arguments.append("".join(current))
    return arguments


def test_msvcrt_round_trip_of_plugin_argv():
    argv = [
        "C:\\Program Files\\Amazon\\SessionManagerPlugin\\bin\\session-manager-plugin.exe",
        '{"SessionId": "a-1", "TokenValue": "t\\\\", "StreamUrl": "wss://x/y?a=b&c=d"}',
        "us-east-1",
        "StartSession",
        "",
        '{"Target": "i-0123456789abcdef0", "Parameters": {"command": ["echo \\"hi\\" 日本"]}}',
        "https://ssm.us-east-1.amazonaws.com",
    ]
    assert split_msvcrt(render_command(argv, "msvcrt")) == argv


def test_sh_rendering_round_trips():
    argv = ["plugin", '{"a": "b c"}', "", "it's"]
    assert shlex.split(render_command(argv, "sh")) == argv


def test_cmd_rendering_escapes_metacharacters():
    assert render_command(["x", "a&b"], "cmd") == "x a^&b"
    assert render_command(["x", '{"a":1}'], "cmd") == 'x {\\^"a\\^":1}'


def test_powershell_rendering_quotes_single_quotes():
    assert render_command(["C:\\p.exe", "it's", ""], "powershell") == "& 'C:\\p.exe' 'it''s' ''"


def test_unknown_style_rejected():
    with pytest.raises(ValueError, match="unknown command line style"):
        render_command(["x"], "fish")
