"""EC2 look-ups: instances by id or Name tag, their public address and password data.

The EC2 client uses the endpoint given explicitly (--ec2-endpoint-url) or else the one
botocore resolves, which honours AWS_ENDPOINT_URL_EC2 and `endpoint_url` in the profile.
"""

from __future__ import annotations

import logging
from typing import Any

from ssmex.aws import AwsContext, call_aws
from ssmex.errors import ExitCode, SsmexError

log = logging.getLogger("ssmex.ec2")


def ec2_client(aws: AwsContext, endpoint_url: str | None = None) -> Any:
    return aws.client("ec2", endpoint_url=endpoint_url)


def name_tag(instance: dict[str, Any]) -> str:
    for tag in instance.get("Tags") or []:
        if tag.get("Key") == "Name":
            return tag.get("Value") or ""
    return ""


def _instances(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [instance for reservation in response.get("Reservations") or [] for instance in reservation.get("Instances") or []]


def describe_instance(client: Any, instance_id: str) -> dict[str, Any]:
    """Return DescribeInstances' description of one instance."""
    response = call_aws("DescribeInstances", lambda: client.describe_instances(InstanceIds=[instance_id]))
    instances = _instances(response)
    if not instances:
        raise SsmexError(f"The instance {instance_id} was not found; check the id and the region.", ExitCode.USAGE)
    return instances[0]


def describe_filtered(client: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return every instance matching the filters, following NextToken."""
    result: list[dict[str, Any]] = []
    token = None
    while True:
        arguments: dict[str, Any] = {"Filters": filters}
        if token:
            arguments["NextToken"] = token
        response = call_aws("DescribeInstances", lambda: client.describe_instances(**arguments))
        result.extend(_instances(response))
        token = response.get("NextToken")
        if not token:
            return result


def running_by_name(client: Any, name: str) -> list[dict[str, Any]]:
    """Return the running instances whose Name tag is exactly name."""
    return describe_filtered(
        client,
        [{"Name": "tag:Name", "Values": [name]}, {"Name": "instance-state-name", "Values": ["running"]}],
    )


def public_address(instance: dict[str, Any]) -> str:
    """Return the instance's public IPv4 address, else its public DNS name, else ''."""
    return instance.get("PublicIpAddress") or instance.get("PublicDnsName") or ""


def password_data(client: Any, instance_id: str) -> str:
    """Return GetPasswordData's PasswordData: base64, or '' while Windows has not set it yet."""
    response = call_aws("GetPasswordData", lambda: client.get_password_data(InstanceId=instance_id))
    return response.get("PasswordData") or ""
