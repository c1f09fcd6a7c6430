"""The handoff checked against the official session-manager-plugin, when one is present.

Set SSMEX_TEST_PLUGIN to its path or put it on PATH; otherwise these tests are skipped.
"""

from __future__ import annotations

import json

import pytest

from conftest import INSTANCE_ID, REAL_PLUGIN, wait_until_gone
from ssmex.plugin import parse_version, read_plugin

pytestmark = pytest.mark.skipif(REAL_PLUGIN is None, reason="no official session-manager-plugin on PATH or in SSMEX_TEST_PLUGIN")


def test_real_plugin_version_parses():
    plugin = read_plugin(REAL_PLUGIN)

    assert plugin.version is not None
    assert plugin.version == parse_version(plugin.version_text)


def test_real_plugin_accepts_handoff(run_ssmex, ssm_endpoint, emulator):
    completed = run_ssmex(
        "start-session", "--target", INSTANCE_ID, "--region", "us-east-1", "--endpoint-url", ssm_endpoint.endpoint_url,
        "--plugin", REAL_PLUGIN, "--pass-thru", "--ready-timeout", "20",
        "--document-name", "AWS-StartNonInteractiveCommand", "--parameters", "command=uptime",
    )

    assert completed.returncode == 0, completed.stderr
    record = json.loads(completed.stdout)
    try:
        with open(record["LogFile"], encoding="utf-8") as handle:
            assert f"Starting session with SessionId: {record['SessionId']}" in handle.read()
    finally:
        stopped = run_ssmex("sessions", "stop", record["SessionId"])
    assert stopped.returncode == 0, stopped.stderr
    assert wait_until_gone(record["ProcessId"])
    assert emulator.sessions[record["SessionId"]].status == "Terminated"
