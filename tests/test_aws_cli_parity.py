"""The handoff ssmex makes equals the one `aws ssm start-session` makes, for the same inputs.

Both run against the same deterministic emulator endpoint, so SessionId and TokenValue
repeat, and the stand-in plugin records what each handed it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import INSTANCE_ID
from ssmex.ports import first_free_port

AWS = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")

pytestmark = pytest.mark.skipif(AWS is None, reason="the awscli package is not installed")

CASES = {
    "shell": [],
    "port forward shorthand": ["--document-name", "AWS-StartPortForwardingSession", "--parameters", "portNumber=3389,localPortNumber={free_port}"],
    "remote host json": [
        "--document-name", "AWS-StartPortForwardingSessionToRemoteHost",
        "--parameters", '{"host":["db.internal"],"portNumber":["5432"],"localPortNumber":["0"]}',
        "--reason", "schema migration, ticket 42",
    ],
    "command with list": ["--document-name", "AWS-StartInteractiveCommand", "--parameters", "command=top,-b"],
}


def run_both(run_ssmex, emulator, standin, arguments, extra_env=None):
    common = ["--target", INSTANCE_ID, *arguments]
    environment = dict(os.environ, **(extra_env or {}))
    aws = subprocess.run([AWS, "ssm", "start-session", *common], env=environment, capture_output=True, text=True, timeout=120)
    assert aws.returncode == 0, aws.stderr
    aws_run = standin.only_run()
    for name in os.listdir(standin.record_dir):
        os.remove(standin.record_dir / name)
    emulator.reset()

    # The AWS CLI passes the profile name, which is ssmex's profile credential mode.
    ours = run_ssmex("start-session", *common, "--credentials", "profile", env=extra_env)
    assert ours.returncode == 0, ours.stderr
    return aws_run, standin.only_run()


@pytest.mark.parametrize("case", list(CASES))
def test_handoff_matches_aws_cli(run_ssmex, ssm_endpoint, emulator, standin, case):
    free_port = first_free_port(40000)
    arguments = ["--region", "us-east-1", "--endpoint-url", ssm_endpoint.endpoint_url]
    arguments += [argument.replace("{free_port}", str(free_port)) for argument in CASES[case]]

    aws_run, our_run = run_both(run_ssmex, emulator, standin, arguments)

    assert our_run["argv"] == aws_run["argv"]
    assert our_run["env"]["AWS_SSM_START_SESSION_RESPONSE"] == aws_run["env"]["AWS_SSM_START_SESSION_RESPONSE"]


def test_handoff_with_profile_matches_aws_cli(run_ssmex, ssm_endpoint, emulator, standin, aws_environment):
    with open(aws_environment / ".aws" / "config", "a") as handle:
        handle.write("[profile ops]\nregion = eu-west-3\n")
    with open(aws_environment / ".aws" / "credentials", "a") as handle:
        handle.write("[ops]\naws_access_key_id = AKIAOPSPROFILE000001\naws_secret_access_key = ops-secret\n")
    arguments = ["--profile", "ops", "--endpoint-url", ssm_endpoint.endpoint_url]

    aws_run, our_run = run_both(run_ssmex, emulator, standin, arguments)

    assert our_run["argv"] == aws_run["argv"]
    assert our_run["argv"][3] == "ops"


def test_old_plugin_handoff_matches_aws_cli(run_ssmex, ssm_endpoint, emulator, standin):
    arguments = ["--region", "us-east-1", "--endpoint-url", ssm_endpoint.endpoint_url]

    aws_run, our_run = run_both(run_ssmex, emulator, standin, arguments, extra_env={"STANDIN_VERSION": "1.2.400.0"})

    assert our_run["argv"] == aws_run["argv"]
    assert our_run["argv"][0].startswith('{"SessionId": ')
