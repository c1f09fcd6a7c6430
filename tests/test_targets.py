"""Targets by name: EC2 Name tags, managed node names, ambiguity and the picker."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import subprocess
import termios

import pytest

from conftest import INSTANCE_ID
from everyday_support import REGION, read_until
from ssmex.emulator.api import EmulatedInstance

TWIN_ID = "i-0badc0ffee0000001"
MANAGED_ID = "mi-0123456789abcdef0"


def start(run_ssmex, endpoint, *target):
    return run_ssmex("start-session", *target, "--region", REGION, "--endpoint-url", endpoint)


def started_target(standin) -> str:
    return json.loads(standin.only_run()["argv"][4])["Target"]


def test_name_tag_resolves_to_instance(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--target", "web-1")

    assert completed.returncode == 0, completed.stderr
    assert started_target(standin) == INSTANCE_ID
    describe = emulator.calls_of("DescribeInstances")[0].body
    assert describe["Filter.1.Name"] == "tag:Name"
    assert describe["Filter.1.Value.1"] == "web-1"
    assert describe["Filter.2.Name"] == "instance-state-name"
    assert describe["Filter.2.Value.1"] == "running"


def test_managed_node_name_resolves(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    emulator.add_instance(EmulatedInstance(MANAGED_ID, name="onprem-1"))

    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--target", "onprem-1")

    assert completed.returncode == 0, completed.stderr
    assert started_target(standin) == MANAGED_ID


@pytest.mark.parametrize("target", [INSTANCE_ID, "i-0123abcd", MANAGED_ID])
def test_ids_need_no_lookup(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, target):
    emulator.add_instance(EmulatedInstance(target))

    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--target", target)

    assert completed.returncode == 0, completed.stderr
    assert emulator.calls_of("DescribeInstances") == []
    assert started_target(standin) == target


def test_stopped_instance_name_not_matched(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    emulator.add_instance(EmulatedInstance(TWIN_ID, name="web-1", state="stopped"))

    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--target", "web-1")

    assert completed.returncode == 0, completed.stderr
    assert started_target(standin) == INSTANCE_ID


def test_ambiguous_name_lists_ids(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    emulator.add_instance(EmulatedInstance(TWIN_ID, name="web-1"))

    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--target", "web-1")

    assert completed.returncode == 2
    assert "matches 2 targets" in completed.stderr
    assert INSTANCE_ID in completed.stderr
    assert TWIN_ID in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert emulator.calls_of("StartSession") == []


def test_unknown_name_one_sentence(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--target", "no-such-box")

    assert completed.returncode == 2
    assert "No running instance or managed node named 'no-such-box'" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert emulator.calls_of("StartSession") == []


def test_local_ssm_with_default_ec2_refused(run_ssmex, ssm_endpoint, standin, emulator):
    # No EC2 endpoint is named, so botocore would send the name look-up to AWS.
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--target", "web-1")

    assert completed.returncode == 3
    assert f"The SSM endpoint {ssm_endpoint.endpoint_url} is on this machine, but EC2 calls would go to https://ec2." in completed.stderr
    assert "--ec2-endpoint-url" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert emulator.calls == []


def test_no_target_without_terminal(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 2
    assert "No target was given" in completed.stderr
    assert emulator.calls == []


def run_on_terminal(ssmex_command, arguments, answer: bytes):
    """Run ssmex with a pseudo-terminal as its controlling terminal and answer its question."""
    primary, secondary = pty.openpty()

    def attach_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        ssmex_command + arguments,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        preexec_fn=attach_terminal,
        close_fds=True,
    )
    os.close(secondary)
    try:
        shown = read_until(primary, b"Choose 1-")
        os.write(primary, answer)
        process.wait(timeout=60)
        rest = b""
        try:
            while True:
                chunk = os.read(primary, 4096)
                if not chunk:
                    break
                rest += chunk
        except OSError:
            pass
    finally:
        if process.poll() is None:
            process.kill()
        os.close(primary)
    return process.returncode, (shown + rest).decode("utf-8", "replace")


def test_ambiguous_name_picked_on_terminal(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator):
    emulator.add_instance(EmulatedInstance(TWIN_ID, name="web-1"))

    status, shown = run_on_terminal(
        ssmex_command, ["start-session", "--target", "web-1", "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url], b"x\n2\n"
    )

    assert status == 0, shown
    assert "Targets named 'web-1':" in shown
    assert "'x' is not one of the numbers shown" in shown
    assert started_target(standin) == TWIN_ID


def test_picker_lists_online_instances(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator):
    status, shown = run_on_terminal(
        ssmex_command, ["start-session", "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url], b"1\n"
    )

    assert status == 0, shown
    assert "Online instances:" in shown
    assert f"1) {INSTANCE_ID} web-1 (Linux)" in shown
    assert "offline-1" not in shown
    assert started_target(standin) == INSTANCE_ID
