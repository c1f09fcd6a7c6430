"""Targets by id or by name: instance ids, managed node ids and Name tag values.

A name is looked up among running EC2 instances (tag:Name) and among managed nodes
(ComputerName or Name in DescribeInstanceInformation). The caller decides what happens
with several matches by passing a choose function, so the engine never reads a terminal.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ssmex import ec2
from ssmex.aws import AwsContext, call_aws
from ssmex.errors import ExitCode, SsmexError

log = logging.getLogger("ssmex.targets")

INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
MANAGED_NODE_ID = re.compile(r"^mi-[0-9a-f]{17}$")
# Bounds the DescribeInstanceInformation pages read while looking for a name.
MAX_PAGES = 20


@dataclass
class Candidate:
    """One instance or managed node a name or a picker could mean."""

    target: str
    name: str = ""
    detail: str = ""

    def label(self) -> str:
        parts = [self.target]
        if self.name:
            parts.append(self.name)
        if self.detail:
            parts.append(f"({self.detail})")
        return " ".join(parts)


# Picks one candidate: gets a title and the candidates, returns the chosen one.
Chooser = Callable[[str, "list[Candidate]"], Candidate]


def is_target_id(text: str) -> bool:
    return bool(INSTANCE_ID.match(text) or MANAGED_NODE_ID.match(text))


def instance_information(aws: AwsContext, filters: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Return DescribeInstanceInformation's list, following NextToken up to MAX_PAGES pages."""
    client = aws.ssm_client()
    result: list[dict[str, Any]] = []
    token = None
    for _ in range(MAX_PAGES):
        arguments: dict[str, Any] = {"MaxResults": 50}
        if filters:
            arguments["Filters"] = filters
        if token:
            arguments["NextToken"] = token
        response = call_aws("DescribeInstanceInformation", lambda: client.describe_instance_information(**arguments))
        result.extend(response.get("InstanceInformationList") or [])
        token = response.get("NextToken")
        if not token:
            break
    else:
        log.warning("read only the first %d pages of DescribeInstanceInformation", MAX_PAGES)
    return result


def _ec2_lookup(aws: AwsContext, ec2_endpoint_url: str | None, call: Callable[[Any], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run an EC2 look-up; without permission for it, log why and return nothing."""
    try:
        return call(ec2.ec2_client(aws, ec2_endpoint_url))
    except SsmexError as error:
        if error.exit_code != ExitCode.ACCESS_DENIED:
            raise
        log.warning("Name tags were not read because EC2 DescribeInstances was denied: %s", error)
        return []


def find_by_name(
    aws: AwsContext, name: str, ec2_endpoint_url: str | None = None, managed_nodes: bool = True
) -> list[Candidate]:
    """Return the running instances tagged Name=name and, with managed_nodes, the managed nodes called name."""
    found: dict[str, Candidate] = {}
    for instance in _ec2_lookup(aws, ec2_endpoint_url, lambda client: ec2.running_by_name(client, name)):
        state = (instance.get("State") or {}).get("Name", "")
        found[instance["InstanceId"]] = Candidate(instance["InstanceId"], name, state)
    for node in instance_information(aws) if managed_nodes else []:
        node_id = node.get("InstanceId", "")
        if not node_id.startswith("mi-") or node_id in found:
            continue
        if name in (node.get("ComputerName"), node.get("Name")):
            found[node_id] = Candidate(node_id, name, node.get("PingStatus", ""))
    return list(found.values())


def online_candidates(aws: AwsContext, ec2_endpoint_url: str | None = None) -> list[Candidate]:
    """Return the online managed nodes, named by their Name tag where EC2 shows one."""
    nodes = instance_information(aws, [{"Key": "PingStatus", "Values": ["Online"]}])
    instance_ids = [node["InstanceId"] for node in nodes if node.get("InstanceId", "").startswith("i-")]
    names: dict[str, str] = {}
    if instance_ids:
        described = _ec2_lookup(
            aws, ec2_endpoint_url, lambda client: ec2.describe_filtered(client, [{"Name": "instance-id", "Values": instance_ids}])
        )
        names = {instance["InstanceId"]: ec2.name_tag(instance) for instance in described}
    candidates = []
    for node in nodes:
        node_id = node["InstanceId"]
        name = names.get(node_id) or node.get("Name") or node.get("ComputerName") or ""
        if name == node_id:
            name = ""
        candidates.append(Candidate(node_id, name, node.get("PlatformType", "")))
    return sorted(candidates, key=lambda candidate: (candidate.name or "~", candidate.target))


def running_candidates(aws: AwsContext, ec2_endpoint_url: str | None = None) -> list[Candidate]:
    """Return the running EC2 instances with their Name tags."""
    instances = ec2.describe_filtered(
        ec2.ec2_client(aws, ec2_endpoint_url), [{"Name": "instance-state-name", "Values": ["running"]}]
    )
    candidates = [Candidate(instance["InstanceId"], ec2.name_tag(instance), instance.get("Platform", "")) for instance in instances]
    return sorted(candidates, key=lambda candidate: (candidate.name or "~", candidate.target))


def resolve(
    aws: AwsContext,
    text: str | None,
    choose: Optional[Chooser] = None,
    ec2_endpoint_url: str | None = None,
    managed_nodes: bool = True,
) -> str:
    """Turn an id, a name or nothing into one target id.

    With several matches, or with no text at all, choose picks one; without choose,
    a one-sentence SsmexError lists the matches or requests a target. Without
    managed_nodes, names are looked up among EC2 instances only and SSM is not called.
    """
    if text is not None and not text.strip():
        raise SsmexError("The target is empty; pass an instance id, a managed node id or a Name tag value.", ExitCode.USAGE)
    if text is not None and is_target_id(text):
        return text

    if text is None:
        if choose is None:
            raise SsmexError(
                "No target was given and there is no terminal to pick one on; pass an instance id, a managed node id "
                "or a Name tag value.",
                ExitCode.USAGE,
            )
        candidates = online_candidates(aws, ec2_endpoint_url) if managed_nodes else running_candidates(aws, ec2_endpoint_url)
        if not candidates:
            raise SsmexError(
                f"No managed node is online in {aws.region}; check the region, or the SSM Agent on your instances.",
                ExitCode.TARGET_NOT_CONNECTED,
            )
        return choose("Online instances", candidates).target

    candidates = find_by_name(aws, text, ec2_endpoint_url, managed_nodes)
    if not candidates:
        raise SsmexError(
            f"No running instance or managed node named {text!r} was found in {aws.region}; check the name and the "
            "region, or pass an instance id (i-...) or managed node id (mi-...).",
            ExitCode.USAGE,
        )
    if len(candidates) == 1:
        log.info("target %s is %s", text, candidates[0].target)
        return candidates[0].target
    if choose is None:
        listed = ", ".join(candidate.target for candidate in candidates)
        raise SsmexError(
            f"The name {text!r} matches {len(candidates)} targets ({listed}); pass one of these ids instead.",
            ExitCode.USAGE,
        )
    return choose(f"Targets named {text!r}", candidates).target
