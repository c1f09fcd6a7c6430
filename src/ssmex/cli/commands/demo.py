"""ssmex demo: show a working session on this machine, with no AWS account."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="forward a port through a local Session Manager emulator; needs no AWS account",
        description=(
            "Start the Session Manager emulator and an echo server on 127.0.0.1, forward a local port "
            "to the emulated instance with ssmex's native client, send bytes through it and read them "
            "back, then end the session. It uses fake credentials and never reads your AWS config."
        ),
    )
    parser.add_argument("--debug", action="store_true", help="log every step, with secrets redacted")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ssmex import demo

    return demo.main(sys.stdout)
