"""ssmex port-forward: forward a local port to a port on the target or on a host behind it."""

from __future__ import annotations

import argparse
import sys

from ssmex import forwarding, native, session
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


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "port-forward",
        parents=[common],
        help="forward a local port to a port on an instance, or on a host it can reach",
        description=(
            "Forward localhost:LOCAL_PORT to REMOTE_PORT on the target (AWS-StartPortForwardingSession), or on "
            "--remote-host as the target sees it (AWS-StartPortForwardingSessionToRemoteHost). The local port is "
            "checked before the session starts, and the forward counts as ready only when it accepts connections."
        ),
    )
    parser.add_argument("target", nargs="?", metavar="TARGET", help="instance id, managed node id or Name tag value (default: pick on a terminal)")
    parser.add_argument("--remote-port", type=int, required=True, metavar="PORT", help="port to reach on the target or remote host")
    parser.add_argument("--local-port", type=int, default=0, metavar="PORT", help="local port to listen on (default: 0, any free port)")
    parser.add_argument("--remote-host", metavar="HOST", help="host name or address to reach through the target, such as a database endpoint")
    parser.add_argument("--reason", help="reason for the session, shown in the session history (1-256 characters)")
    plugin_option(parser)
    client_option(parser)
    credentials_option(parser)
    ec2_endpoint_option(parser)
    parser.add_argument("--pass-thru", action="store_true", help="run the forward in the background, print it as JSON and exit once it is ready")
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=session.DEFAULT_READY_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for the local port to accept connections (default: %(default)s)",
    )
    parser.set_defaults(handler=run)


def _announce(local_port: int, target: str, remote_host: str | None, remote_port: int) -> None:
    print(f"localhost:{local_port} -> {remote_host or target}:{remote_port}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    require_target_or_terminal(args.target, "TARGET")
    client = native.choose_client(args.client, args.plugin)
    aws = aws_context(args)
    target = resolve_target(args, aws, args.target)
    local_port = forwarding.pick_local_port(args.local_port)
    request = forwarding.forwarding_request(target, args.remote_port, local_port, args.remote_host, args.reason)
    if args.pass_thru:
        record = forwarding.forward_in_background(
            aws,
            request,
            plugin_path=args.plugin,
            ready_timeout=args.ready_timeout,
            credentials=args.credentials,
            client=client,
        )
        _announce(record.LocalPort or local_port, target, args.remote_host, args.remote_port)
        print_json(record.public())
        return 0
    return forwarding.forward_in_foreground(
        aws,
        request,
        local_port,
        lambda port: _announce(port, target, args.remote_host, args.remote_port),
        plugin_path=args.plugin,
        ready_timeout=args.ready_timeout,
        credentials=args.credentials,
        client=client,
    )
