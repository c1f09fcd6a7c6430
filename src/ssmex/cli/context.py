"""Turning parsed arguments into engine objects."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ssmex.aws import AwsContext, AwsSettings
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
