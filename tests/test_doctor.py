"""ssmex doctor: the report's rows, its exit status, and that it never shows a secret."""

from __future__ import annotations

import os
import re

import pytest

from conftest import SECRET_ACCESS_KEY, SESSION_TOKEN
from everyday_support import REGION
from ssmex.plugin import standard_locations


def doctor(run_ssmex, endpoint, *extra, env=None):
    return run_ssmex("doctor", "--region", REGION, "--endpoint-url", endpoint, *extra, env=env)


def rows(output: str) -> dict[str, str]:
    """Map each check's name to "STATUS DETAIL" with the padding removed."""
    result = {}
    for line in output.splitlines():
        match = re.match(r"^(?P<name>.+?)\s{2,}(?P<status>ok|warning|blocking|info)\s+(?P<detail>.*)$", line)
        assert match, f"not a row of the report: {line!r}"
        result[match.group("name")] = f"{match.group('status')} {match.group('detail')}"
    return result


def test_healthy_setup_passes(run_ssmex, ssm_endpoint, standin, emulator):
    completed = doctor(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    table = rows(completed.stdout)
    assert table["plugin"].startswith("ok")
    assert "1.2.814.0" in table["plugin"]
    assert str(standin.path) in table["plugin"]
    assert "available" in table["native client"] or "not in this build" in table["native client"]
    assert table["credentials"].startswith("ok")
    assert "env" in table["credentials"]
    assert table["region"] == f"ok {REGION} (from --region)"
    assert table["endpoint"] == f"ok {ssm_endpoint.endpoint_url}"
    assert "DescribeInstanceInformation is allowed (2 managed nodes" in table["permission"]
    assert emulator.calls_of("StartSession") == []
    for secret in (SECRET_ACCESS_KEY, SESSION_TOKEN):
        assert secret not in completed.stdout + completed.stderr


def test_old_plugin_warned(run_ssmex, ssm_endpoint, standin):
    completed = doctor(run_ssmex, ssm_endpoint.endpoint_url, env={"STANDIN_VERSION": "1.2.688.0"})

    assert completed.returncode == 0
    assert rows(completed.stdout)["plugin"].startswith("warning")
    assert "stalls" in completed.stdout


def test_missing_plugin_blocks(run_ssmex, ssm_endpoint, tmp_path, monkeypatch):
    if any(os.path.exists(path) for path in standard_locations()):
        pytest.skip("a session-manager-plugin is installed in a standard location on this machine")
    monkeypatch.setenv("PATH", str(tmp_path))

    completed = doctor(run_ssmex, ssm_endpoint.endpoint_url)

    table = rows(completed.stdout)
    if "available" in table["native client"]:
        assert table["plugin"].startswith("warning")
    else:
        assert completed.returncode != 0
        assert table["plugin"].startswith("blocking")
        assert "session-manager-plugin was not found" in table["plugin"]


def test_access_denied_is_a_hint(run_ssmex, ssm_endpoint, standin, emulator):
    emulator.fail_next("DescribeInstanceInformation", "AccessDeniedException", "User is not authorized to perform ssm:DescribeInstanceInformation")

    completed = doctor(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 0
    permission = rows(completed.stdout)["permission"]
    assert permission.startswith("warning")
    assert "AccessDeniedException" in permission
    assert "ssm:StartSession" in permission


def test_missing_credentials_block(run_ssmex, ssm_endpoint, standin, emulator, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)

    completed = doctor(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 3
    assert rows(completed.stdout)["credentials"].startswith("blocking")
    assert emulator.calls == []


def test_missing_region_blocks(run_ssmex, ssm_endpoint, standin):
    completed = run_ssmex("doctor", "--endpoint-url", ssm_endpoint.endpoint_url)

    assert completed.returncode == 3
    assert rows(completed.stdout)["region"].startswith("blocking")


def test_unreachable_endpoint_blocks(run_ssmex, standin):
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    completed = doctor(run_ssmex, f"http://127.0.0.1:{port}")

    assert completed.returncode == 3
    table = rows(completed.stdout)
    assert table["endpoint"].startswith("blocking")
    assert "could not be reached" in table["endpoint"]
    assert "permission" not in table
