"""ssmex supervise: the hidden command that runs a background session's supervisor.

`ssmex start-session --pass-thru` starts it detached and writes the session to its
standard input. Users never run it themselves, so it is left out of the command list.
"""

from __future__ import annotations

import argparse

from ssmex import supervisor


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    # No help= keeps the command out of `ssmex --help`.
    parser = subparsers.add_parser("supervise", description="Supervise one background session (internal).")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return supervisor.main()
