"""ssmex start-session against the emulator's SSM endpoint and the stand-in plugin."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ACCESS_KEY_ID, INSTANCE_ID, SECRET_ACCESS_KEY, SESSION_TOKEN
from ssmex.plugin import standard_locations

REGION = "us-east-1"


def start(run_ssmex, endpoint, *extra, env=None):
    return run_ssmex("start-session", "--target", INSTANCE_ID, "--region", REGION, "--endpoint-url", endpoint, *extra, env=env)


def test_new_plugin_gets_response_in_environment(run_ssmex, ssm_endpoint, standin, emulator):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    session = emulator.sessions[run["response"]["SessionId"]]
    assert run["argv"][0] == "AWS_SSM_START_SESSION_RESPONSE"
    assert run["argv"][1:4] == [REGION, "StartSession", ""]
    assert json.loads(run["argv"][4]) == {"Target": INSTANCE_ID}
    assert run["argv"][5] == ssm_endpoint.endpoint_url
    assert list(json.loads(run["env"]["AWS_SSM_START_SESSION_RESPONSE"])) == ["SessionId", "TokenValue", "StreamUrl"]
    assert run["response"]["TokenValue"] == session.token
    assert session.token not in " ".join(run["argv"])
    assert [call.operation for call in emulator.calls] == ["StartSession"]


def test_old_plugin_gets_response_on_argv_with_warning(run_ssmex, ssm_endpoint, standin):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, env={"STANDIN_VERSION": "1.2.497.0"})

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    assert json.loads(run["argv"][0])["SessionId"] == run["response"]["SessionId"]
    assert "AWS_SSM_START_SESSION_RESPONSE" not in run["env"]
    assert "process list" in completed.stderr


def test_unparsable_plugin_version_falls_back_to_argv(run_ssmex, ssm_endpoint, standin):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, env={"STANDIN_VERSION": "dev-build"})

    assert completed.returncode == 0, completed.stderr
    assert standin.only_run()["argv"][0].startswith("{")
    assert "not a version" in completed.stderr


@pytest.mark.parametrize(
    "version,problem",
    [("1.2.688.0", "stalls"), ("1.2.331.0", "idle port"), ("1.2.707.0", "SSO token")],
)
def test_known_bad_plugin_versions_warned(run_ssmex, ssm_endpoint, standin, version, problem):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, env={"STANDIN_VERSION": version})

    assert completed.returncode == 0, completed.stderr
    assert problem in completed.stderr
    assert version in completed.stderr


def test_current_plugin_version_has_no_warning(run_ssmex, ssm_endpoint, standin):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, env={"STANDIN_VERSION": "1.2.814.0"})

    assert completed.returncode == 0
    assert "warning" not in completed.stderr


def test_request_json_keeps_model_order(run_ssmex, ssm_endpoint, standin):
    completed = start(
        run_ssmex,
        ssm_endpoint.endpoint_url,
        "--parameters",
        "portNumber=22,localPortNumber=0",
        "--reason",
        "déploiement 日本",
        "--document-name",
        "AWS-StartPortForwardingSession",
    )

    assert completed.returncode == 0, completed.stderr
    request = standin.only_run()["argv"][4]
    assert list(json.loads(request)) == ["Target", "DocumentName", "Reason", "Parameters"]
    assert json.loads(request)["Parameters"] == {"portNumber": ["22"], "localPortNumber": ["0"]}
    assert json.loads(request)["Reason"] == "déploiement 日本"


def write_profile(home, name, region="eu-west-1", key="AKIAPROFILEKEY000001"):
    section = "default" if name == "default" else f"profile {name}"
    with open(home / ".aws" / "config", "a") as handle:
        handle.write(f"[{section}]\nregion = {region}\n")
    with open(home / ".aws" / "credentials", "a") as handle:
        handle.write(f"[{name}]\naws_access_key_id = {key}\naws_secret_access_key = profile-secret-{name}\n")


def test_profile_flag_goes_to_slot_four(run_ssmex, ssm_endpoint, standin, emulator, aws_environment, monkeypatch):
    write_profile(aws_environment, "dev")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)

    completed = run_ssmex(
        "start-session", "--target", INSTANCE_ID, "--profile", "dev", "--endpoint-url", ssm_endpoint.endpoint_url,
        "--credentials", "profile",
    )

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    assert run["argv"][3] == "dev"
    assert run["argv"][1] == "eu-west-1"
    assert emulator.calls_of("StartSession")[0].access_key_id == "AKIAPROFILEKEY000001"
    assert emulator.calls_of("StartSession")[0].region == "eu-west-1"


def test_aws_profile_variable_is_not_passed_on(run_ssmex, ssm_endpoint, standin, aws_environment, monkeypatch):
    write_profile(aws_environment, "dev", region="ap-northeast-1")
    monkeypatch.setenv("AWS_PROFILE", "dev")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)

    completed = run_ssmex("start-session", "--target", INSTANCE_ID, "--endpoint-url", ssm_endpoint.endpoint_url)

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    assert run["argv"][3] == ""
    assert run["argv"][1] == "ap-northeast-1"


def test_no_profile_passes_empty_slot(run_ssmex, ssm_endpoint, standin):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 0
    assert standin.only_run()["argv"][3] == ""


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_region_from_environment(run_ssmex, ssm_endpoint, standin, emulator, monkeypatch, variable):
    monkeypatch.setenv(variable, "eu-central-1")

    completed = run_ssmex("start-session", "--target", INSTANCE_ID, "--endpoint-url", ssm_endpoint.endpoint_url)

    assert completed.returncode == 0, completed.stderr
    assert standin.only_run()["argv"][1] == "eu-central-1"
    assert emulator.calls_of("StartSession")[0].region == "eu-central-1"


def test_region_flag_wins_over_environment(run_ssmex, ssm_endpoint, standin, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-central-1")

    completed = start(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 0
    assert standin.only_run()["argv"][1] == REGION


def test_missing_region_stops_before_any_call(run_ssmex, ssm_endpoint, standin, emulator):
    completed = run_ssmex("start-session", "--target", INSTANCE_ID, "--endpoint-url", ssm_endpoint.endpoint_url)

    assert completed.returncode == 3
    assert "No AWS region is set" in completed.stderr
    assert "AWS_REGION" in completed.stderr
    assert "--region" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert emulator.calls == []


def test_unknown_profile_stops_before_any_call(run_ssmex, ssm_endpoint, standin, emulator):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--profile", "nosuch")

    assert completed.returncode == 3
    assert "'nosuch' (from --profile) was not found" in completed.stderr
    assert emulator.calls == []


def test_missing_credentials_stop_before_any_call(run_ssmex, ssm_endpoint, standin, emulator, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)

    completed = start(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 3
    assert "No AWS credentials were found" in completed.stderr
    # AWS_EC2_METADATA_DISABLED is set for every test, so the message must not claim that place.
    assert "instance metadata" not in completed.stderr
    assert emulator.calls == []
    assert standin.runs() == []


def test_invalid_endpoint_url_named(run_ssmex, standin):
    completed = start(run_ssmex, "not-a-url")

    assert completed.returncode == 3
    assert "The endpoint URL 'not-a-url' is invalid; use an http or https URL" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert standin.runs() == []


def test_endpoint_from_service_variable(run_ssmex, ssm_endpoint, standin, emulator, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", ssm_endpoint.endpoint_url)

    completed = run_ssmex("start-session", "--target", INSTANCE_ID, "--region", REGION)

    assert completed.returncode == 0, completed.stderr
    assert standin.only_run()["argv"][5] == ssm_endpoint.endpoint_url
    assert len(emulator.calls_of("StartSession")) == 1


def test_plugin_missing_starts_no_session(run_ssmex, ssm_endpoint, emulator, tmp_path, monkeypatch):
    if any(os.path.exists(path) for path in standard_locations()):
        pytest.skip("a session-manager-plugin is installed in a standard location on this machine")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    # auto would run the native client instead, so --client plugin requests the plugin.
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--client", "plugin")

    assert completed.returncode == 4
    assert "session-manager-plugin was not found" in completed.stderr
    assert "/usr/local/sessionmanagerplugin/bin/session-manager-plugin" in completed.stderr
    assert "https://docs.aws.amazon.com/" in completed.stderr
    assert emulator.calls == []


def test_plugin_not_executable_starts_no_session(run_ssmex, ssm_endpoint, emulator, tmp_path):
    plugin = tmp_path / "session-manager-plugin"
    plugin.write_text("#!/bin/sh\n")
    plugin.chmod(0o644)

    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--plugin", str(plugin))

    assert completed.returncode == 4
    assert "is not an executable file" in completed.stderr
    assert emulator.calls == []


def test_plugin_from_ssmex_plugin_variable(run_ssmex, ssm_endpoint, standin, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("SSMEX_PLUGIN", str(standin.path))

    completed = start(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 0, completed.stderr
    assert standin.only_run()["argv"][2] == "StartSession"


def test_plugin_vanishing_after_start_terminates_session(run_ssmex, ssm_endpoint, standin, emulator):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, env={"STANDIN_VANISH": "1"})

    assert completed.returncode == 4
    assert [call.operation for call in emulator.calls] == ["StartSession", "TerminateSession"]
    session_id = emulator.calls[1].body["SessionId"]
    assert emulator.sessions[session_id].status == "Terminated"
    assert f"session {session_id} was terminated" in completed.stderr


def test_plugin_crash_terminates_session(run_ssmex, ssm_endpoint, standin, emulator):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, env={"STANDIN_MODE": "panic"})

    assert completed.returncode == 9
    assert "exited with status 2" in completed.stderr
    assert [call.operation for call in emulator.calls] == ["StartSession", "TerminateSession"]


@pytest.mark.parametrize(
    "parameters,fragment",
    [
        ('{"portNumber": [', "JSON error"),
        ("=3389", "not of the form name=value"),
        ('{"portNumber": {"a": 1}}', "must be a string or a list of strings"),
        ("portNumber=[1,2", "'[' is not closed"),
        ("file:///nonexistent/params.json", "Cannot read --parameters file"),
    ],
)
def test_malformed_parameters_rejected(run_ssmex, ssm_endpoint, standin, emulator, parameters, fragment):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--parameters", parameters)

    assert completed.returncode == 2
    assert fragment in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert emulator.calls == []


@pytest.mark.parametrize(
    "parameters,fragment",
    [
        ("portNumber=22,localPortNumber", "portNumber has 2 values ('22', 'localPortNumber') but takes one"),
        ("portNumber=ssh", "portNumber 'ssh' is not a port number; use 1 to 65535."),
        ("portNumber=0", "portNumber '0' is not a port number; use 1 to 65535."),
        ("portNumber=22,localPortNumber=70000", "localPortNumber '70000' is not a port number; use 0 to 65535."),
    ],
)
def test_invalid_port_parameters_rejected(run_ssmex, ssm_endpoint, standin, emulator, parameters, fragment):
    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--document-name", "AWS-StartPortForwardingSession", "--parameters", parameters
    )

    assert completed.returncode == 2
    assert fragment in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert emulator.calls == []


def test_parameters_from_file(run_ssmex, ssm_endpoint, standin, tmp_path):
    path = tmp_path / "params.json"
    path.write_text('\ufeff{"portNumber": ["3389"], "localPortNumber": 0}', encoding="utf-8")

    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--document-name", "AWS-StartPortForwardingSession", "--parameters", f"file://{path}")

    assert completed.returncode == 0, completed.stderr
    assert json.loads(standin.only_run()["argv"][4])["Parameters"] == {"portNumber": ["3389"], "localPortNumber": ["0"]}


def test_taken_local_port_starts_no_session(run_ssmex, ssm_endpoint, standin, emulator):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        completed = start(
            run_ssmex, ssm_endpoint.endpoint_url, "--document-name", "AWS-StartPortForwardingSession",
            "--parameters", f"portNumber=22,localPortNumber={port}",
        )

    assert completed.returncode == 2
    assert f"local port {port}" in completed.stderr
    assert emulator.calls == []


@pytest.mark.parametrize(
    "target,code,exit_code,fragment",
    [
        ("i-0fedcba9876543210", None, 6, "TargetNotConnected"),
        (INSTANCE_ID, ("AccessDeniedException", "User is not authorized to perform ssm:StartSession"), 7, "ssm:StartSession"),
        (INSTANCE_ID, ("ExpiredTokenException", "The security token included in the request is expired"), 7, "expired"),
    ],
)
def test_aws_errors_become_one_sentence(run_ssmex, ssm_endpoint, standin, emulator, target, code, exit_code, fragment):
    if code:
        emulator.fail_next("StartSession", *code)

    completed = run_ssmex("start-session", "--target", target, "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url)

    assert completed.returncode == exit_code
    assert fragment in completed.stderr
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert standin.runs() == []


def test_invalid_document_reported(run_ssmex, ssm_endpoint, standin):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--document-name", "No-Such-Document")

    assert completed.returncode == 5
    assert "InvalidDocument" in completed.stderr
    assert "--document-name" in completed.stderr


def test_unreachable_endpoint_reported(run_ssmex, standin):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    completed = start(run_ssmex, f"http://127.0.0.1:{port}")

    assert completed.returncode == 8
    assert "could not be reached" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_debug_output_redacts_every_secret(run_ssmex, ssm_endpoint, standin, emulator):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--debug", env={"STANDIN_VERSION": "1.2.400.0"})

    assert completed.returncode == 0, completed.stderr
    token = standin.only_run()["response"]["TokenValue"]
    output = completed.stdout + completed.stderr
    assert "plugin command:" in completed.stderr
    assert "<redacted>" in completed.stderr
    for secret in (token, SECRET_ACCESS_KEY, SESSION_TOKEN):
        assert secret not in output
    assert ACCESS_KEY_ID in completed.stderr


def test_debug_shows_traceback_only_with_debug(run_ssmex, ssm_endpoint, standin, emulator):
    emulator.fail_next("StartSession", "InternalServerError", "boom")
    plain = start(run_ssmex, ssm_endpoint.endpoint_url)
    emulator.fail_next("StartSession", "InternalServerError", "boom")
    debug = start(run_ssmex, ssm_endpoint.endpoint_url, "--debug")

    assert "Traceback" not in plain.stderr
    assert "Traceback" in debug.stderr


def test_ctrl_c_reaches_plugin_not_ssmex(ssmex_command, ssm_endpoint, standin, emulator):
    environment = dict(os.environ, STANDIN_MODE="port")
    process = subprocess.Popen(
        ssmex_command + ["start-session", "--target", INSTANCE_ID, "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url,
                         "--document-name", "AWS-StartPortForwardingSession", "--parameters", "portNumber=22"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not standin.runs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert standin.runs(), "the plugin never started"
        output = b""
        while b"opened for sessionId" not in output and time.monotonic() < deadline:
            output += process.stdout.read1(4096)
        # A terminal sends Ctrl+C to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    assert process.returncode == 0, stderr.decode()
    assert standin.only_run()["events"] == ["SIGINT"]
    assert b"Terminate signal received" in output + stdout
    assert b"KeyboardInterrupt" not in stderr
    assert emulator.calls_of("TerminateSession") == []


def test_sigterm_to_ssmex_ends_plugin_and_session(ssmex_command, ssm_endpoint, standin, emulator):
    environment = dict(os.environ, STANDIN_MODE="port")
    process = subprocess.Popen(
        ssmex_command + ["start-session", "--target", INSTANCE_ID, "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url,
                         "--document-name", "AWS-StartPortForwardingSession", "--parameters", "portNumber=22"],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        output = b""
        while b"opened for sessionId" not in output and time.monotonic() < deadline:
            output += process.stdout.read1(4096)
        # Only ssmex gets the signal, as from `kill PID`.
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    assert process.returncode == 143
    assert stderr.decode().strip().splitlines()[-1].endswith("ssmex received SIGTERM and passed it to session-manager-plugin, so session "
                                                             f"{standin.only_run()['response']['SessionId']} was ended.")
    assert len(emulator.calls_of("TerminateSession")) == 1

