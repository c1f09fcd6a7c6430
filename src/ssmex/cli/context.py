"""Turning parsed arguments into engine objects."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ssmex.aws import AwsContext, AwsSettings
from ssmex.handoff import ENVIRONMENT_VARIABLE, MODE_NAMES


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


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + os.linesep)
    sys.stdout.flush()
