"""Turning parsed arguments into engine objects."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ssmex.aws import AwsContext, AwsSettings


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


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + os.linesep)
    sys.stdout.flush()
