"""ssmex sessions: list background sessions and stop them."""

from __future__ import annotations

import argparse
import logging
import sys

from ssmex import records, session
from ssmex.cli.context import aws_context, print_json
from ssmex.errors import ExitCode, SsmexError

log = logging.getLogger("ssmex.cli")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "sessions",
        parents=[common],
        help="list background sessions started with --pass-thru, or stop them",
        description="List the sessions started in the background, alive or gone, or stop them.",
    )
    parser.add_argument("action", nargs="?", choices=["list", "stop"], default="list", help="list (default) or stop")
    parser.add_argument("session_ids", nargs="*", metavar="SESSION_ID", help="sessions to stop")
    parser.add_argument("--all", action="store_true", help="with stop: stop every recorded session")
    parser.add_argument("--json", action="store_true", help="with list: print JSON instead of a table")
    parser.set_defaults(handler=run)


def _table(rows: list[dict]) -> str:
    columns = ["SessionId", "Target", "DocumentName", "Client", "ProcessId", "LocalPort", "StartTime", "State"]
    values = [[str(row.get(column) if row.get(column) is not None else "-") for column in columns] for row in rows]
    widths = [max([len(column)] + [len(value[index]) for value in values]) for index, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(widths[index]) for index, column in enumerate(columns)).rstrip()]
    for value in values:
        lines.append("  ".join(cell.ljust(widths[index]) for index, cell in enumerate(value)).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        if args.session_ids or args.all:
            raise SsmexError("`ssmex sessions list` takes no session ids; use `ssmex sessions stop ID`.", ExitCode.USAGE)
        loaded = list(records.load_all())
        rows = [record.public() for record in loaded]
        if args.json:
            print_json(rows)
            return 0
        if not rows:
            print("No background sessions.")
            return 0
        for record, row in zip(loaded, rows):
            if not row["Alive"]:
                row["State"] = "gone"
            elif record.holder:
                row["State"] = "in use"
            else:
                row["State"] = "alive"
        print(_table(rows))
        return 0

    if args.all and args.session_ids:
        raise SsmexError("Name the sessions to stop or pass --all, not both.", ExitCode.USAGE)
    if not args.all and not args.session_ids:
        raise SsmexError("Name the sessions to stop, or pass --all; see `ssmex sessions list`.", ExitCode.USAGE)
    targets = list(records.load_all()) if args.all else []
    if args.all and not targets:
        print("No background sessions.", file=sys.stderr)
    for record in [record for record in targets if record.holder]:
        print(
            f"Left session {record.SessionId} running because ssmex (pid {record.holder}) is using it; end that command, "
            "or name the session to stop it anyway.",
            file=sys.stderr,
        )
        targets.remove(record)
    for session_id in args.session_ids:
        record = records.find(session_id)
        if record is None:
            raise SsmexError(f"No background session {session_id} is recorded; see `ssmex sessions list`.", ExitCode.USAGE)
        targets.append(record)
    failures = 0
    for record in targets:
        aws = aws_context(args, profile=record.Profile, region=record.Region, endpoint_url=args.endpoint_url or record.Endpoint)
        if session.stop_background(record, aws):
            print(f"Stopped session {record.SessionId}.", file=sys.stderr)
        else:
            failures += 1
            print(f"Stopped the process of session {record.SessionId}, but TerminateSession failed.", file=sys.stderr)
    return int(ExitCode.AWS_ERROR) if failures else 0
