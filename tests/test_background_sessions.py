"""--pass-thru sessions, `ssmex sessions` listing and `ssmex sessions stop`."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from conftest import INSTANCE_ID
from ssmex.process import process_alive

REGION = "us-east-1"


def start_background(run_ssmex, endpoint, *extra, env=None):
    return run_ssmex(
        "start-session", "--target", INSTANCE_ID, "--region", REGION, "--endpoint-url", endpoint,
        "--document-name", "AWS-StartPortForwardingSession", "--parameters", "portNumber=22,localPortNumber=0",
        "--pass-thru", *extra, env=env,
    )


@pytest.fixture
def background(run_ssmex, ssm_endpoint, standin, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "port")
    started = []

    def start(*extra, env=None):
        completed = start_background(run_ssmex, ssm_endpoint.endpoint_url, *extra, env=env)
        if completed.returncode == 0:
            started.append(json.loads(completed.stdout))
        return completed

    yield start
    for record in started:
        if process_alive(record["ProcessId"]):
            os.kill(record["ProcessId"], 9)


def test_pass_thru_prints_record_and_returns(background, emulator, standin):
    completed = background()

    assert completed.returncode == 0, completed.stderr
    record = json.loads(completed.stdout)
    assert record["SessionId"] in emulator.sessions
    assert record["Target"] == INSTANCE_ID
    assert record["DocumentName"] == "AWS-StartPortForwardingSession"
    assert record["Alive"] is True
    assert process_alive(record["ProcessId"])
    assert set(record) >= {"SessionId", "Target", "DocumentName", "ProcessId", "LocalPort", "StartTime", "StreamUrl"}
    assert emulator.sessions[record["SessionId"]].token not in completed.stdout
    with socket.create_connection(("127.0.0.1", record["LocalPort"]), timeout=5) as connection:
        connection.sendall(b"ping")
        assert connection.recv(4) == b"ping"


def test_sessions_lists_alive_and_gone(background, run_ssmex):
    first = json.loads(background().stdout)
    second = json.loads(background().stdout)
    os.kill(second["ProcessId"], 9)
    deadline = time.monotonic() + 10
    while process_alive(second["ProcessId"]) and time.monotonic() < deadline:
        time.sleep(0.05)

    listed = run_ssmex("sessions", "--json")
    table = run_ssmex("sessions")

    rows = {row["SessionId"]: row for row in json.loads(listed.stdout)}
    assert rows[first["SessionId"]]["Alive"] is True
    assert rows[second["SessionId"]]["Alive"] is False
    assert first["SessionId"] in table.stdout
    assert table.stdout.split()[:4] == ["SessionId", "Target", "DocumentName", "Client"]
    assert "alive" in table.stdout
    assert "gone" in table.stdout


def test_sessions_stop_ends_plugin_and_session(background, run_ssmex, emulator):
    record = json.loads(background().stdout)

    completed = run_ssmex("sessions", "stop", record["SessionId"])

    assert completed.returncode == 0, completed.stderr
    deadline = time.monotonic() + 10
    while process_alive(record["ProcessId"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(record["ProcessId"])
    assert emulator.sessions[record["SessionId"]].status == "Terminated"
    assert json.loads(run_ssmex("sessions", "--json").stdout) == []


def test_sessions_stop_all(background, run_ssmex, emulator):
    records = [json.loads(background().stdout) for _ in range(2)]

    completed = run_ssmex("sessions", "stop", "--all")

    assert completed.returncode == 0, completed.stderr
    for record in records:
        assert emulator.sessions[record["SessionId"]].status == "Terminated"


def test_stop_unknown_session_is_one_sentence(run_ssmex):
    completed = run_ssmex("sessions", "stop", "emulator-nosuch")

    assert completed.returncode == 2
    assert "No background session emulator-nosuch is recorded" in completed.stderr


def test_plugin_that_never_gets_ready_is_ended(run_ssmex, ssm_endpoint, standin, emulator):
    completed = start_background(run_ssmex, ssm_endpoint.endpoint_url, "--ready-timeout", "1", env={"STANDIN_MODE": "hang"})

    assert completed.returncode == 9
    assert "not ready within 1 seconds" in completed.stderr
    run = standin.only_run()
    assert not process_alive(run["pid"])
    assert [call.operation for call in emulator.calls] == ["StartSession", "TerminateSession"]
    assert json.loads(run_ssmex("sessions", "--json").stdout) == []


def test_plugin_exiting_early_is_reported(run_ssmex, ssm_endpoint, standin, emulator):
    completed = start_background(run_ssmex, ssm_endpoint.endpoint_url, env={"STANDIN_MODE": "panic"})

    assert completed.returncode == 9
    assert "before the session was ready" in completed.stderr
    assert emulator.calls_of("TerminateSession")


@pytest.mark.parametrize("credentials", ["server", "environment"])
def test_failed_start_leaves_no_log(run_ssmex, ssm_endpoint, standin, emulator, credentials):
    completed = start_background(
        run_ssmex, ssm_endpoint.endpoint_url, "--credentials", credentials, "--debug", env={"STANDIN_MODE": "panic"}
    )

    assert completed.returncode == 9
    # The plugin's output is shown under --debug instead of being kept in the state folder.
    assert "background output: panic: runtime error" in completed.stderr
    assert list((Path(os.environ["SSMEX_STATE_DIR"]) / "sessions").glob("*.log")) == []


@pytest.mark.parametrize("document", [None, "SSM-SessionManagerRunShell", "AWS-StartInteractiveCommand"])
def test_pass_thru_rejects_interactive_documents(run_ssmex, ssm_endpoint, standin, emulator, document):
    extra = ["--document-name", document] if document else []

    completed = run_ssmex("start-session", "--target", INSTANCE_ID, "--region", REGION, "--endpoint-url",
                          ssm_endpoint.endpoint_url, "--pass-thru", *extra)

    assert completed.returncode == 2
    assert "--pass-thru cannot run" in completed.stderr
    assert emulator.calls == []
