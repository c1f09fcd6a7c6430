"""ssmex invoke: run the request the PowerShell module puts in SSMEX_REQUEST.

Nothing structured travels on the command line, so the result is the same in Windows
PowerShell 5.1 and in every $PSNativeCommandArgumentPassing mode of PowerShell 7.
Results are JSON on stdout, written in ASCII with \\u escapes so that any console code
page decodes them unchanged. Errors are one sentence on stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import sys

from ssmex.cli import powershell_style
from ssmex.cli.context import print_json
from ssmex.errors import ExitCode, SsmexError
from ssmex.quoting import render_command
from ssmex.redact import redact
from ssmex.request import REQUEST_VARIABLE, decode_request

_ESCAPE_HANDLER = "ssmex-json-escape"


def _json_escape(error: UnicodeError) -> tuple[str, int]:
    """Write characters ASCII cannot encode as JSON escapes, surrogate pairs included."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    characters = error.object[error.start:error.end]
    return "".join(json.dumps(character)[1:-1] for character in characters), error.end


codecs.register_error(_ESCAPE_HANDLER, _json_escape)


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help=f"run the request in {REQUEST_VARIABLE} and print JSON (used by the PowerShell module)",
        description=(
            f"Read a request from {REQUEST_VARIABLE} (base64 of UTF-8 JSON with command, parameters and "
            "whatIf), run the matching command and print its result as JSON. The commands are the "
            "PowerShell module's: Start-SSMSessionEx, Get-SSMSessionEx, Stop-SSMSessionEx, "
            "Start-SSMRDPClient and Start-EC2RDPClient."
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ssmex.cli.app import build_parser, main

    request = decode_request(os.environ.get(REQUEST_VARIABLE))
    command = powershell_style.find_command(request.command)
    if command is None:
        names = ", ".join(known.name for known in powershell_style.COMMANDS)
        raise SsmexError(
            f"{REQUEST_VARIABLE} names the unknown command {request.command!r}; use one of {names}.",
            ExitCode.USAGE,
        )
    bound = powershell_style.bind_request(command, request.parameters)
    arguments = powershell_style.ssmex_arguments(command, bound)

    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        sys.stdout.flush()
        reconfigure(encoding="ascii", errors=_ESCAPE_HANDLER)
    if request.what_if or bound.get("WhatIf"):
        argv = [powershell_style.program_name(), *arguments]
        print_json({"Command": command.name, "Argv": argv, "CommandLine": redact(render_command(argv, "powershell"))})
        return int(ExitCode.OK)
    powershell_style.require_available(command, build_parser())
    return main(arguments)
