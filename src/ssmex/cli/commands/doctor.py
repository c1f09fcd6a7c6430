"""ssmex doctor: what a session needs, checked and shown as a short table."""

from __future__ import annotations

import argparse

from ssmex import doctor
from ssmex.aws import AwsSettings
from ssmex.cli.context import plugin_option
from ssmex.errors import ExitCode


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "doctor",
        parents=[common],
        help="check the plugin, credentials, region, endpoint and permissions",
        description=(
            "Check what a session needs without starting one: the plugin and its known problems, the native "
            "client, where the credentials and region come from, the SSM endpoint, and a permission hint from "
            "DescribeInstanceInformation. Exits non-zero when something blocks a session. Never prints a secret."
        ),
    )
    plugin_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = AwsSettings(profile=args.profile, region=args.region, endpoint_url=args.endpoint_url, verify_ssl=not args.no_verify_ssl)
    checks = doctor.run_checks(settings, plugin_path=args.plugin)
    width = max(len(check.name) for check in checks)
    status_width = max(len(check.status) for check in checks)
    for check in checks:
        print(f"{check.name.ljust(width)}  {check.status.ljust(status_width)}  {check.detail}")
    return int(ExitCode.CONFIGURATION) if doctor.blocks_session(checks) else 0
