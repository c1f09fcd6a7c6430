"""Checks of everything a session needs, each reported without any secret.

No check calls StartSession: the permission hint comes from DescribeInstanceInformation,
which the same users are normally allowed to call.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

from ssmex.aws import AwsContext, AwsSettings, call_aws
from ssmex.errors import ExitCode, SsmexError
from ssmex.plugin import find_plugin, read_plugin

log = logging.getLogger("ssmex.doctor")

OK = "ok"
WARNING = "warning"
BLOCKING = "blocking"
INFO = "info"


@dataclass
class Check:
    """One row of the report: what was checked, its status and what was found."""

    name: str
    status: str
    detail: str


def native_client_available() -> bool:
    try:
        importlib.import_module("ssmex.datachannel")
    except ImportError:
        return False
    return True


def check_plugin(plugin_path: str | None, native_client: bool) -> Check:
    try:
        plugin = read_plugin(find_plugin(plugin_path))
    except SsmexError as error:
        # Without the plugin, a build with the native client can still start sessions.
        return Check("plugin", WARNING if native_client else BLOCKING, error.message)
    problems = plugin.warnings()
    detail = f"{plugin.version_label} at {plugin.path}"
    if problems:
        return Check("plugin", WARNING, detail + "; " + "; ".join(problems))
    return Check("plugin", OK, detail)


def check_aws(settings: AwsSettings) -> list[Check]:
    """Check region, credentials, endpoint and the permission hint, in that order."""
    try:
        aws = AwsContext(settings)
    except SsmexError as error:
        return [Check("region", BLOCKING, error.message)]
    checks = [Check("region", OK, f"{aws.region} (from {aws.region_origin})")]

    try:
        credentials = aws.check_credentials()
    except SsmexError as error:
        checks.append(Check("credentials", BLOCKING, error.message))
        return checks
    profile = f", profile {aws.profile} (from {aws.profile_origin})" if aws.profile else ""
    checks.append(Check("credentials", OK, f"found by botocore's {credentials.method} provider{profile}"))

    client = aws.ssm_client()
    endpoint = client.meta.endpoint_url
    try:
        response = call_aws("DescribeInstanceInformation", lambda: client.describe_instance_information(MaxResults=5))
    except SsmexError as error:
        if error.exit_code == ExitCode.NETWORK:
            checks.append(Check("endpoint", BLOCKING, error.message))
            return checks
        checks.append(Check("endpoint", OK, endpoint))
        if error.exit_code == ExitCode.ACCESS_DENIED:
            checks.append(
                Check(
                    "permission",
                    WARNING,
                    f"{error.message} Sessions need ssm:StartSession and ssm:TerminateSession, which this identity "
                    "may lack as well",
                )
            )
        else:
            checks.append(Check("permission", BLOCKING, error.message))
        return checks
    checks.append(Check("endpoint", OK, endpoint))
    count = len(response.get("InstanceInformationList") or [])
    checks.append(
        Check(
            "permission",
            OK,
            f"DescribeInstanceInformation is allowed ({count} managed node{'s' if count != 1 else ''} in the first page); "
            "StartSession itself was not tried",
        )
    )
    return checks


def run_checks(settings: AwsSettings, plugin_path: str | None = None) -> list[Check]:
    native = native_client_available()
    return [
        check_plugin(plugin_path, native),
        Check("native client", OK if native else INFO, "available" if native else "not in this build"),
        *check_aws(settings),
    ]


def blocks_session(checks: list[Check]) -> bool:
    return any(check.status == BLOCKING for check in checks)
