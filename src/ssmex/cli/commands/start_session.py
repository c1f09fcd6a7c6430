"""ssmex start-session: what `aws ssm start-session` does, done right."""

from __future__ import annotations

import argparse

from ssmex import native, session
from ssmex.cli.context import (
    aws_context,
    client_option,
    credentials_option,
    ec2_endpoint_option,
    plugin_option,
    print_json,
    require_target_or_terminal,
    resolve_target,
)
from ssmex.parameters import parse_parameters

HELP = "start a session and run it with session-manager-plugin or the native client"


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "start-session",
        parents=[common],
        help=HELP,
        description=(
            "Call StartSession and hand the session to session-manager-plugin with the token in its "
            "environment, never on the command line, or run it with ssmex's native client. "
            "Waits for the session to end unless --pass-thru is given."
        ),
    )
    parser.add_argument(
        "--target",
        help="instance id (i-...), managed node id (mi-...) or Name tag value (default: pick on a terminal)",
    )
    parser.add_argument("--document-name", help="session document, such as AWS-StartPortForwardingSession (default: a shell)")
    parser.add_argument(
        "--parameters",
        help="document parameters: JSON, shorthand such as portNumber=3389,localPortNumber=33389, or file://PATH",
    )
    parser.add_argument("--reason", help="reason for the session, shown in the session history (1-256 characters)")
    plugin_option(parser)
    client_option(parser)
    ec2_endpoint_option(parser)
    credentials_option(parser)
    parser.add_argument(
        "--pass-thru",
        action="store_true",
        help="start the plugin in the background, print the session as JSON and exit",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=session.DEFAULT_READY_TIMEOUT,
        metavar="SECONDS",
        help="with --pass-thru, how long to wait for the plugin to be ready (default: %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    require_target_or_terminal(args.target, "--target")
    client = native.choose_client(args.client, args.plugin)
    parameters = parse_parameters(args.parameters)
    aws = aws_context(args)
    request = session.SessionRequest(
        target=resolve_target(args, aws, args.target),
        document_name=args.document_name,
        parameters=parameters,
        reason=args.reason,
    )
    if args.pass_thru:
        record = session.start_in_background(
            aws,
            request,
            plugin_path=args.plugin,
            ready_timeout=args.ready_timeout,
            credentials=args.credentials,
            client=client,
        )
        print_json(record.public())
        return 0
    if client == native.NATIVE:
        return session.run_with_native(aws, request)
    return session.run_with_plugin(aws, request, plugin_path=args.plugin, credentials=args.credentials)
