"""ssmex rdp and ssmex ec2-rdp: Remote Desktop to a Windows instance in one command."""

from __future__ import annotations

import argparse
import sys

from ssmex import native, rdp, remote_desktop, session
from ssmex.cli.choose import terminal_passphrase_prompt
from ssmex.cli.context import (
    aws_context,
    client_option,
    credentials_option,
    ec2_endpoint_option,
    plugin_option,
    require_target_or_terminal,
    resolve_target,
)
from ssmex.errors import ExitCode, SsmexError


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", metavar="TARGET", help="instance id or Name tag value (default: pick on a terminal)")
    parser.add_argument("--key-file", required=True, metavar="PEM", help="private key of the instance's key pair (PEM or OpenSSH, RSA)")
    parser.add_argument("--port", type=int, default=remote_desktop.RDP_PORT, help="RDP port on the instance (default: %(default)s)")
    parser.add_argument("--no-launch", action="store_true", help="print the address and user instead of starting an RDP client")
    parser.add_argument("--show-password", action="store_true", help="with --no-launch, print the Administrator password too")
    ec2_endpoint_option(parser)


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "rdp",
        parents=[common],
        help="open Remote Desktop to a Windows instance through a Session Manager port forward",
        description=(
            "Forward a local port (the first free one from 33389) to the instance's RDP port, decrypt the "
            "Administrator password with --key-file, and start the RDP client with it. The password never goes "
            "on a command line. The forward and the session end when the client exits or on Ctrl+C. "
            f"Set {rdp.CLIENT_VARIABLE} to run another client the way xfreerdp is run."
        ),
    )
    _common_options(parser)
    parser.add_argument("--local-port", type=int, default=None, metavar="PORT", help="local port (default: the first free one from 33389)")
    plugin_option(parser)
    client_option(parser)
    credentials_option(parser)
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=session.DEFAULT_READY_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for the port forward to accept connections (default: %(default)s)",
    )
    parser.set_defaults(handler=run_rdp)

    public = subparsers.add_parser(
        "ec2-rdp",
        parents=[common],
        help="open Remote Desktop to a Windows instance at its public address",
        description=(
            "Look up the instance's public IP address or DNS name, check that its RDP port answers, decrypt the "
            "Administrator password with --key-file and start the RDP client with it."
        ),
    )
    _common_options(public)
    public.set_defaults(handler=run_ec2_rdp)


def _on_ready(args: argparse.Namespace, instance_id: str):
    def show(target: rdp.RdpTarget) -> None:
        if not args.no_launch:
            if args.handler is run_rdp:
                route = f"{target.address} -> {instance_id}:{args.port}"
            else:
                route = f"{target.address} ({instance_id})"
            print(f"{route}; starting the RDP client as {target.user}.", file=sys.stderr, flush=True)
            return
        print(f"Address:  {target.address}")
        print(f"User:     {target.user}")
        if args.show_password:
            print(f"Password: {target.password}")
        sys.stdout.flush()
        if args.handler is run_rdp:
            print("The port forward stays open until you press Ctrl+C.", file=sys.stderr, flush=True)

    return show


def _check_options(args: argparse.Namespace) -> None:
    if args.show_password and not args.no_launch:
        raise SsmexError("--show-password works only with --no-launch; add --no-launch or drop --show-password.", ExitCode.USAGE)


def run_rdp(args: argparse.Namespace) -> int:
    _check_options(args)
    require_target_or_terminal(args.target, "TARGET")
    client = native.choose_client(args.client, args.plugin)
    aws = aws_context(args)
    instance_id = resolve_target(args, aws, args.target)
    return remote_desktop.rdp_over_session(
        aws,
        instance_id,
        args.key_file,
        _on_ready(args, instance_id),
        prompt=terminal_passphrase_prompt(),
        remote_port=args.port,
        local_port=args.local_port,
        launch_client=not args.no_launch,
        plugin_path=args.plugin,
        ready_timeout=args.ready_timeout,
        ec2_endpoint_url=args.ec2_endpoint_url,
        credentials=args.credentials,
        session_client=client,
    )


def run_ec2_rdp(args: argparse.Namespace) -> int:
    _check_options(args)
    require_target_or_terminal(args.target, "TARGET")
    aws = aws_context(args)
    instance_id = resolve_target(args, aws, args.target, managed_nodes=False)
    return remote_desktop.rdp_to_public_address(
        aws,
        instance_id,
        args.key_file,
        _on_ready(args, instance_id),
        prompt=terminal_passphrase_prompt(),
        remote_port=args.port,
        launch_client=not args.no_launch,
        ec2_endpoint_url=args.ec2_endpoint_url,
    )
