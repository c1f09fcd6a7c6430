"""ssmex ssh-proxy: the ProxyCommand for ssh, through AWS-StartSSHSession.

Standard output carries nothing but the tunnel's bytes: ssmex writes every message to
standard error, and never prompts, because standard input belongs to ssh.
"""

from __future__ import annotations

import argparse
import logging
import signal

from ssmex import native, session
from ssmex.cli.context import aws_context, client_option, credentials_option, ec2_endpoint_option, plugin_option, resolve_target
from ssmex.errors import ExitCode, SsmexError
from ssmex.interrupts import TerminationSignal

log = logging.getLogger("ssmex.cli.ssh_proxy")

SSH_DOCUMENT = "AWS-StartSSHSession"


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "ssh-proxy",
        parents=[common],
        help="connect ssh's standard input and output to a port on an instance (ProxyCommand)",
        description=(
            "For ssh's ProxyCommand: ProxyCommand ssmex ssh-proxy %h %p. HOST is an instance id, a managed node "
            "id or a Name tag value; PORT is the SSH port on the instance."
        ),
    )
    parser.add_argument("host", metavar="HOST", help="instance id, managed node id or Name tag value (ssh's %%h)")
    parser.add_argument("port", metavar="PORT", help="SSH port on the instance (ssh's %%p)")
    plugin_option(parser)
    client_option(parser)
    credentials_option(parser)
    ec2_endpoint_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.port.isdigit() or not 1 <= int(args.port) <= 65535:
        raise SsmexError(f"The port {args.port!r} is not a port number; use 1 to 65535.", ExitCode.USAGE)
    client = native.choose_client(args.client, args.plugin)
    aws = aws_context(args)
    target = resolve_target(args, aws, args.host, interactive=False)
    request = session.SessionRequest(target=target, document_name=SSH_DOCUMENT, parameters={"portNumber": [str(int(args.port))]})
    # ssh sends its ProxyCommand SIGHUP when it exits, so SIGHUP is the normal end here: the
    # session is ended as for any signal, but quietly, because ssh's terminal is the user's.
    try:
        if client == native.NATIVE:
            return session.run_with_native(aws, request)
        return session.run_with_plugin(aws, request, plugin_path=args.plugin, credentials=args.credentials)
    except TerminationSignal as stop:
        if stop.number != getattr(signal, "SIGHUP", None):
            raise
    except SsmexError as error:
        if error.exit_code != ExitCode.HANGUP:
            raise
    log.debug("ssh ended the proxy with SIGHUP; the session was ended")
    return ExitCode.OK
