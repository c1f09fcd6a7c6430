"""Argument parsing and the one place where failures become exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import Sequence

import botocore

import ssmex
from ssmex.cli import commands
from ssmex.cli.output import configure_logging, print_error
from ssmex.errors import ExitCode, SsmexError, exit_code_for_signal
from ssmex.interrupts import TerminationSignal
from ssmex.redact import redact

log = logging.getLogger("ssmex.cli")


def version_text() -> str:
    frozen = "frozen executable" if getattr(sys, "frozen", False) else "Python package"
    return (
        f"ssmex {ssmex.__version__} (botocore {botocore.__version__}, Python "
        f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}, {frozen})"
    )


def aws_options() -> argparse.ArgumentParser:
    """Options every command that talks to AWS takes, with the AWS CLI's meanings."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("AWS options")
    group.add_argument("--profile", help="named profile from the AWS config files (default: AWS_PROFILE, then default)")
    group.add_argument("--region", help="AWS region, such as eu-west-1 (default: AWS_REGION, AWS_DEFAULT_REGION, the profile)")
    group.add_argument("--endpoint-url", help="SSM endpoint URL to use instead of the one botocore resolves")
    group.add_argument("--no-verify-ssl", action="store_true", help="do not verify TLS certificates of AWS endpoints")
    group.add_argument("--debug", action="store_true", help="log every step, botocore included, with secrets redacted")
    return parent


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the parser for one command, or for every command when command is None."""
    parser = argparse.ArgumentParser(
        prog="ssmex",
        description="Start AWS Systems Manager Session Manager sessions correctly from Windows, macOS and Linux.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    common = aws_options()
    for module in commands.load(None if command is None else [command]):
        module.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ssmex and return its exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in commands.COMMAND_MODULES:
        parser = build_parser(arguments[0])
    else:
        parser = build_parser()
        if arguments and not arguments[0].startswith("-"):
            from ssmex.cli import powershell_style

            if powershell_style.find_command(arguments[0]):
                return powershell_style.run_words(arguments, parser, main)
    args = parser.parse_args(arguments)
    debug = bool(getattr(args, "debug", False))
    configure_logging(debug)
    log.debug("%s", version_text())
    try:
        return int(args.handler(args))
    except SsmexError as error:
        if debug:
            log.debug("%s", redact(traceback.format_exc()))
        print_error(error.message)
        return int(error.exit_code)
    except TerminationSignal as stop:
        print_error(f"Stopped by {stop.name}.")
        return exit_code_for_signal(stop.number)
    except KeyboardInterrupt:
        print_error("Interrupted.")
        return int(ExitCode.INTERRUPTED)
    except Exception as error:  # the last line of defence: one sentence, traceback under --debug
        if debug:
            log.debug("%s", redact(traceback.format_exc()))
        print_error(
            f"ssmex failed unexpectedly ({type(error).__name__}: {redact(str(error))}); "
            "run again with --debug and report the output."
        )
        return int(ExitCode.ERROR)
