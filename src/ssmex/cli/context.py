"""Turning parsed arguments into engine objects."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ssmex import targets
from ssmex.aws import AwsContext, AwsSettings
from ssmex.cli.choose import terminal_chooser
from ssmex.errors import ExitCode, SsmexError
from ssmex.handoff import ENVIRONMENT_VARIABLE, MODE_NAMES
from ssmex.native import CLIENT_NAMES
from ssmex.native import ENVIRONMENT_VARIABLE as CLIENT_VARIABLE


def aws_context(args: argparse.Namespace, **overrides: Any) -> AwsContext:
    settings = AwsSettings(
        profile=args.profile,
        region=args.region,
        endpoint_url=args.endpoint_url,
        verify_ssl=not args.no_verify_ssl,
    )
    for name, value in overrides.items():
        if value is not None:
            setattr(settings, name, value)
    return AwsContext(settings)


def plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        metavar="PATH",
        default=None,
        help="session-manager-plugin to run (default: SSMEX_PLUGIN, PATH, then the installers' locations)",
    )


def credentials_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--credentials",
        choices=MODE_NAMES,
        default=None,
        help=(
            "how session-manager-plugin gets credentials for the calls it makes during the session: "
            "server (default: ssmex serves its own, refreshed, on a loopback URL), profile (the profile "
            "name, as the AWS CLI does) or environment (frozen keys, which stop working when they expire); "
            f"default: {ENVIRONMENT_VARIABLE}, then server"
        ),
    )


def client_option(parser: argparse.ArgumentParser) -> None:
    # No choices=: a wrong value from the flag or SSMEX_CLIENT gets the same one-sentence error.
    parser.add_argument(
        "--client",
        metavar="|".join(CLIENT_NAMES),
        default=None,
        help=(
            "what runs the session: plugin (session-manager-plugin), native (ssmex's own client, no "
            "plugin needed) or auto (the plugin when it is found, else native); "
            f"default: {CLIENT_VARIABLE}, then auto"
        ),
    )


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + os.linesep)
    sys.stdout.flush()


def ec2_endpoint_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ec2-endpoint-url",
        metavar="URL",
        default=None,
        help="EC2 endpoint URL for Name tags, addresses and passwords (default: AWS_ENDPOINT_URL_EC2, then botocore's)",
    )


def resolve_target(
    args: argparse.Namespace, aws: AwsContext, text: str | None, interactive: bool = True, managed_nodes: bool = True
) -> str:
    """Turn TARGET (an id, a Name tag value or nothing) into an id, asking on a terminal when unclear."""
    if text is None or not targets.is_target_id(text):
        # A look-up is the first API call, so missing credentials are reported the usual way first.
        aws.check_credentials()
    chooser = terminal_chooser() if interactive else None
    return targets.resolve(aws, text, chooser, getattr(args, "ec2_endpoint_url", None), managed_nodes)


def require_target_or_terminal(text: str | None, option: str) -> None:
    """Reject a missing target before anything else when no terminal can show the picker."""
    if text is None and terminal_chooser() is None:
        raise SsmexError(
            f"No target was given and there is no terminal to pick one on; pass {option} with an instance id, "
            "a managed node id or a Name tag value.",
            ExitCode.USAGE,
        )
