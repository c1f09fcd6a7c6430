"""ssmex invoke: the request in SSMEX_REQUEST, the JSON it prints and its errors."""

from __future__ import annotations

import base64
import json

import pytest

from conftest import ACCESS_KEY_ID, INSTANCE_ID, SECRET_ACCESS_KEY, SESSION_TOKEN
from ssmex.errors import SsmexError
from ssmex.request import Request, decode_request, encode_request

REGION = "us-east-1"


def encoded(document) -> str:
    text = document if isinstance(document, str) else json.dumps(document, ensure_ascii=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def invoke(run_ssmex, document, env=None):
    environment = {"SSMEX_REQUEST": document if isinstance(document, str) else encoded(document)}
    environment.update(env or {})
    return run_ssmex("invoke", env=environment)


# A document that may run in the background, unlike a shell.
BACKGROUND_COMMAND = {"DocumentName": "AWS-StartNonInteractiveCommand", "Parameter": {"command": "uptime"}}


def start_request(endpoint, **parameters):
    values = {"Target": INSTANCE_ID, "Region": REGION, "EndpointUrl": endpoint}
    values.update(parameters)
    return {"command": "Start-SSMSessionEx", "parameters": values}


def test_decode_request_reads_command_and_parameters():
    request = decode_request(encoded({"command": "Get-SSMSessionEx", "parameters": {"Debug": True}}))

    assert request == Request("Get-SSMSessionEx", {"Debug": True}, False)


def test_decode_request_accepts_byte_order_mark():
    raw = "\ufeff" + json.dumps({"Command": "Get-SSMSessionEx", "WhatIf": True})

    request = decode_request(base64.b64encode(raw.encode("utf-8")).decode("ascii"))

    assert request.command == "Get-SSMSessionEx"
    assert request.what_if is True


def test_decode_request_round_trips_encode_request():
    original = Request("Start-SSMSessionEx", {"Reason": 'a "quoted" naïve 日本 😀 C:\\dir\\'}, True)

    assert decode_request(encode_request(original)) == original


@pytest.mark.parametrize(
    "value,fragment",
    [
        (None, "is not set or empty"),
        ("   ", "is not set or empty"),
        ("not base64!", "is not valid base64"),
        (base64.b64encode(b"\xff\xfe{}").decode(), "does not decode to UTF-8 text"),
        (encoded("{\"command\": "), "does not decode to valid JSON"),
        (encoded("[1, 2]"), "not an object"),
        (encoded({"parameters": {}}), 'has no "command" string'),
        (encoded({"command": 7}), 'has no "command" string'),
        (encoded({"command": "Get-SSMSessionEx", "parameters": [1]}), '"parameters" value that is not an object'),
        (encoded({"command": "Get-SSMSessionEx", "whatIf": "yes"}), '"whatIf" value that is not true or false'),
        (encoded({"command": "Get-SSMSessionEx", "token": "x"}), "unknown key 'token'"),
    ],
)
def test_decode_request_rejects_malformed_value(value, fragment):
    with pytest.raises(SsmexError) as caught:
        decode_request(value)

    assert fragment in caught.value.message
    assert "SSMEX_REQUEST" in caught.value.message


@pytest.mark.parametrize(
    "value,fragment",
    [
        ("%%%", "is not valid base64"),
        (encoded("{oops}"), "does not decode to valid JSON"),
        (encoded({"command": "Start-Nothing"}), "unknown command 'Start-Nothing'"),
        (encoded({"command": "Start-SSMSessionEx", "parameters": {"Target": INSTANCE_ID, "Token": "x"}}), "has no parameter Token"),
        (encoded({"command": "Start-SSMSessionEx", "parameters": {"DocumentName": "AWS-StartSSHSession"}}), "needs -Target"),
        (encoded({"command": "Start-SSMSessionEx", "parameters": {"Target": INSTANCE_ID, "PassThru": "yes"}}), "must be true or false"),
        (encoded({"command": "Start-SSMSessionEx", "parameters": {"Target": INSTANCE_ID, "Parameter": "x"}}), "must be an object"),
    ],
)
def test_invoke_bad_request_one_sentence(run_ssmex, emulator, value, fragment):
    completed = invoke(run_ssmex, value)

    assert completed.returncode == 2
    assert fragment in completed.stderr
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith("error: ")
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""
    assert emulator.calls == []


def test_invoke_missing_variable_one_sentence(run_ssmex):
    completed = run_ssmex("invoke")

    assert completed.returncode == 2
    assert "SSMEX_REQUEST is not set or empty" in completed.stderr
    assert completed.stderr.count("\n") == 1


def test_invoke_start_passthru_prints_session_json(run_ssmex, ssm_endpoint, standin, emulator):
    request = start_request(
        ssm_endpoint.endpoint_url,
        DocumentName="AWS-StartPortForwardingSession",
        Parameter={"portNumber": 22, "localPortNumber": ["0"]},
        Reason='say "hi" to 日本 😀',
        PassThru=True,
    )

    completed = invoke(run_ssmex, request, env={"STANDIN_MODE": "port"})

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.isascii()
    session = json.loads(completed.stdout)
    emulated = emulator.sessions[session["SessionId"]]
    assert session["Target"] == INSTANCE_ID
    assert session["DocumentName"] == "AWS-StartPortForwardingSession"
    assert session["StreamUrl"].startswith("ws://")
    assert isinstance(session["ProcessId"], int)
    assert session["Alive"] is True
    assert emulated.parameters == {"portNumber": ["22"], "localPortNumber": ["0"]}
    assert emulated.reason == 'say "hi" to 日本 😀'
    assert emulated.token not in completed.stdout
    assert "TokenValue" not in completed.stdout

    stopped = invoke(run_ssmex, {"command": "Stop-SSMSessionEx", "parameters": {"SessionId": [session["SessionId"]]}})
    assert stopped.returncode == 0, stopped.stderr
    assert emulated.status == "Terminated"


def test_invoke_runs_foreground_without_passthru(run_ssmex, ssm_endpoint, standin, emulator):
    completed = invoke(run_ssmex, start_request(ssm_endpoint.endpoint_url))

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    assert run["argv"][1] == REGION
    assert run["argv"][5] == ssm_endpoint.endpoint_url
    assert [call.operation for call in emulator.calls] == ["StartSession"]


def test_invoke_uses_credentials_from_environment(run_ssmex, ssm_endpoint, standin, emulator, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    handed = {
        "AWS_ACCESS_KEY_ID": "AKIAFROMAWSTOOLS0001",
        "AWS_SECRET_ACCESS_KEY": "secret-from-aws-tools-do-not-print",
        "AWS_SESSION_TOKEN": "token-from-aws-tools-do-not-print",
    }

    completed = invoke(run_ssmex, start_request(ssm_endpoint.endpoint_url, Debug=True), env=handed)

    assert completed.returncode == 0, completed.stderr
    assert emulator.calls_of("StartSession")[0].access_key_id == "AKIAFROMAWSTOOLS0001"
    run = standin.only_run()
    for secret in (handed["AWS_SECRET_ACCESS_KEY"], handed["AWS_SESSION_TOKEN"]):
        assert secret not in completed.stdout
        assert secret not in completed.stderr
        assert secret not in " ".join(run["argv"])


def test_invoke_debug_output_redacts_secrets(run_ssmex, ssm_endpoint, standin, emulator):
    completed = invoke(run_ssmex, start_request(ssm_endpoint.endpoint_url, Debug=True, PassThru=True, **BACKGROUND_COMMAND), env={"STANDIN_MODE": "hang"})

    assert completed.returncode == 0, completed.stderr
    assert "DEBUG" in completed.stderr
    token = emulator.sessions[json.loads(completed.stdout)["SessionId"]].token
    for secret in (SECRET_ACCESS_KEY, SESSION_TOKEN, token):
        assert secret not in completed.stderr
        assert secret not in completed.stdout
    assert ACCESS_KEY_ID in completed.stderr
    invoke(run_ssmex, {"command": "Stop-SSMSessionEx", "parameters": {"All": True}})


def test_invoke_ssmex_error_one_sentence(run_ssmex, ssm_endpoint, standin, emulator):
    completed = invoke(run_ssmex, start_request(ssm_endpoint.endpoint_url, Target="i-0fedcba9876543210"))

    assert completed.returncode == 6
    assert completed.stderr.startswith("error: StartSession failed with TargetNotConnected")
    assert completed.stderr.count("\n") == 1
    assert completed.stdout == ""


def test_invoke_get_lists_background_sessions(run_ssmex, ssm_endpoint, standin):
    started = invoke(run_ssmex, start_request(ssm_endpoint.endpoint_url, PassThru=True, **BACKGROUND_COMMAND), env={"STANDIN_MODE": "hang"})
    assert started.returncode == 0, started.stderr

    listed = invoke(run_ssmex, {"command": "get-ssmsessionex"})

    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [row["SessionId"] for row in rows] == [json.loads(started.stdout)["SessionId"]]
    assert rows[0]["Alive"] is True
    invoke(run_ssmex, {"command": "Stop-SSMSessionEx", "parameters": {"All": True}})
    assert json.loads(invoke(run_ssmex, {"command": "Get-SSMSessionEx"}).stdout) == []


def test_invoke_what_if_renders_without_running(run_ssmex, ssm_endpoint, standin, emulator):
    request = start_request(
        ssm_endpoint.endpoint_url,
        Parameter={"portNumber": "3389"},
        Reason="it's -1 C:\\dir\\",
        ProfileName="ops",
    )
    request["whatIf"] = True

    completed = invoke(run_ssmex, request)

    assert completed.returncode == 0, completed.stderr
    rendered = json.loads(completed.stdout)
    assert rendered["Argv"] == [
        "ssmex",
        "start-session",
        f"--target={INSTANCE_ID}",
        '--parameters={"portNumber": ["3389"]}',
        "--reason=it's -1 C:\\dir\\",
        "--profile=ops",
        f"--region={REGION}",
        f"--endpoint-url={ssm_endpoint.endpoint_url}",
    ]
    assert rendered["CommandLine"].startswith("& 'ssmex' 'start-session' ")
    assert "'--reason=it''s -1 C:\\dir\\'" in rendered["CommandLine"]
    assert emulator.calls == []
    assert standin.runs() == []


def test_invoke_what_if_keeps_credentials_out(run_ssmex):
    request = {"command": "Start-SSMSessionEx", "parameters": {"Target": INSTANCE_ID}, "whatIf": True}

    completed = invoke(run_ssmex, request)

    assert completed.returncode == 0
    assert SECRET_ACCESS_KEY not in completed.stdout
    assert SESSION_TOKEN not in completed.stdout


def test_invoke_rdp_maps_to_rdp_command(run_ssmex):
    request = {
        "command": "Start-SSMRDPClient",
        "parameters": {"InstanceId": INSTANCE_ID, "PemFile": "C:\\keys\\admin key.pem", "Port": 3389, "LocalPort": "33389", "NoLaunch": True},
        "whatIf": True,
    }

    completed = invoke(run_ssmex, request)

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["Argv"][1:] == [
        "rdp",
        "--key-file=C:\\keys\\admin key.pem",
        "--port=3389",
        "--local-port=33389",
        "--no-launch",
        "--",
        INSTANCE_ID,
    ]


@pytest.mark.parametrize("client", ["native", "Native"])
def test_invoke_client_native_skips_plugin(run_ssmex, ssm_endpoint, standin, emulator, client):
    from ssmex.emulator.datachannel import start_data_channel_server

    server = start_data_channel_server(emulator)
    try:
        request = start_request(
            ssm_endpoint.endpoint_url, Client=client, DocumentName="AWS-StartNonInteractiveCommand", Parameter={"command": "whoami"}
        )
        completed = invoke(run_ssmex, request)
    finally:
        server.close()

    assert completed.returncode == 0, completed.stderr
    assert standin.runs() == []
    assert [session.status for session in emulator.sessions.values()] == ["Terminated"]


def test_invoke_ec2_endpoint_for_name_lookup(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, monkeypatch):
    # Only the request names the EC2 endpoint, as -Ec2EndpointUrl would.
    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2")
    request = start_request(ssm_endpoint.endpoint_url, Target="web-1", Ec2EndpointUrl=ec2_endpoint.endpoint_url)

    completed = invoke(run_ssmex, request)

    assert completed.returncode == 0, completed.stderr
    assert json.loads(standin.only_run()["argv"][4])["Target"] == INSTANCE_ID
