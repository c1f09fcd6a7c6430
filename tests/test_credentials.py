"""How session-manager-plugin gets credentials: the credential server, the three modes and
the background supervisor, checked with the stand-in plugin calling ResumeSession."""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ACCESS_KEY_ID, INSTANCE_ID, SECRET_ACCESS_KEY, SESSION_TOKEN, TESTS
from ssmex import handoff, records, supervisor
from ssmex.aws import AwsContext, AwsSettings
from ssmex.credserver import CredentialServer, FrozenSource, ServedCredentials
from ssmex.process import process_alive

REGION = "us-east-1"
DEFAULT_KEY = "AKIADEFAULTPROFILE01"
PORT_DOCUMENT = ("--document-name", "AWS-StartPortForwardingSession", "--parameters", "portNumber=22")
KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def wait_for(condition, timeout: float = 30, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} seconds waiting for {what}")


class CredentialProcess:
    """A credential_process profile whose process prints a new key on every run."""

    def __init__(self, home: Path, state: Path, profile: str = "proc", lifetime: float = 60) -> None:
        state.mkdir(parents=True, exist_ok=True)
        self.state = state
        self.profile = profile
        self.set_lifetime(lifetime)
        command = f"{sys.executable} {TESTS / 'credential_process.py'} {state}"
        with open(home / ".aws" / "config", "a", encoding="utf-8") as handle:
            handle.write(f"[profile {profile}]\nregion = {REGION}\ncredential_process = {command}\n")

    def set_lifetime(self, seconds: float) -> None:
        (self.state / "lifetime").write_text(str(seconds))

    def runs(self) -> list[dict]:
        path = self.state / "runs.log"
        if not path.exists():
            return []
        result = []
        for line in path.read_text().splitlines():
            number, key, expiration, parent = line.split()
            expiry = datetime.datetime.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
            result.append({"number": int(number), "key": key, "expiry": expiry, "parent": int(parent)})
        return result

    def run_of(self, key: str) -> dict:
        matches = [run for run in self.runs() if run["key"] == key]
        assert len(matches) == 1, f"{key} was printed {len(matches)} times"
        return matches[0]


@pytest.fixture
def no_key_variables(monkeypatch):
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def credential_process(aws_environment, tmp_path, no_key_variables) -> CredentialProcess:
    return CredentialProcess(aws_environment, tmp_path / "process")


def start(run_ssmex, endpoint, *extra, env=None):
    return run_ssmex("start-session", "--target", INSTANCE_ID, "--region", REGION, "--endpoint-url", endpoint, *extra, env=env)


def fetch(url: str, token: str | None, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
    if token is not None:
        request.add_header("Authorization", token)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as reply:
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def served_keys(expiry=None) -> ServedCredentials:
    return ServedCredentials("AKIASERVEDKEY0000001", "served-secret-do-not-print", "served-token-do-not-print", expiry)


# The credential server on its own.


def test_server_answers_right_token_in_container_format():
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    with CredentialServer(FrozenSource(served_keys(expiry))) as server:
        status, body, headers = fetch(server.url, server.token)

    assert status == 200
    document = json.loads(body)
    assert document["AccessKeyId"] == "AKIASERVEDKEY0000001"
    assert document["SecretAccessKey"] == "served-secret-do-not-print"
    assert document["Token"] == "served-token-do-not-print"
    assert document["Expiration"] == expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("presented", [None, "", "wrong-token", "TOKEN-prefix", "TOKEN-suffix", "Bearer TOKEN"])
def test_server_wrong_token_gets_bare_401(presented):
    with CredentialServer(FrozenSource(served_keys())) as server:
        token = None if presented is None else presented.replace("TOKEN", server.token)
        if presented == "TOKEN-prefix":
            token = server.token[:-1]
        if presented == "TOKEN-suffix":
            token = server.token + "x"
        responses = [fetch(server.url, token, method) for method in ("GET", "POST")]
        other_path = fetch(server.url.rsplit("/", 1)[0] + "/other", token)

    for status, body, _ in responses + [other_path]:
        assert status == 401
        assert body == b""
    assert server.served_count == 0
    assert server.rejected_count == 3


def test_server_binds_loopback_only():
    with CredentialServer(FrozenSource(served_keys())) as server:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        assert server.url.startswith(f"http://127.0.0.1:{port}/")
        # Another loopback address reaches a socket bound to 0.0.0.0 but not one bound to 127.0.0.1.
        with socket.socket() as probe:
            probe.settimeout(5)
            assert probe.connect_ex(("127.0.0.2", port)) != 0
        assert fetch(server.url, server.token)[0] == 200


def test_server_reports_expired_frozen_credentials():
    expired = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    with CredentialServer(FrozenSource(served_keys(expired))) as server:
        status, body, _ = fetch(server.url, server.token)

    assert status == 503
    assert b"expired" in body
    assert b"served-secret" not in body


# The modes, through the CLI, the emulator and the stand-in plugin.


def test_server_mode_resumes_with_refreshed_keys(run_ssmex, ssm_endpoint, standin, emulator, credential_process):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--profile", "proc", env={"STANDIN_RESUMES": "2"})

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    resumes = run["resumes"]
    assert [resume["status"] for resume in resumes] == [200, 200]
    assert [resume["source"] for resume in resumes] == ["container", "container"]
    signers = [call.access_key_id for call in emulator.calls_of("ResumeSession")]
    assert signers == [resume["access_key_id"] for resume in resumes]
    start_key = emulator.calls_of("StartSession")[0].access_key_id
    assert len({start_key, *signers}) == 3, f"StartSession {start_key}, ResumeSession {signers}"
    process_runs = credential_process.runs()
    # Each key expires within a minute, so each fetch by the plugin is one refresh in ssmex.
    assert [process_run["key"] for process_run in process_runs[-2:]] == signers
    assert resumes[-1]["container_fetches"] == 2
    ssmex_pid = {process_run["parent"] for process_run in process_runs}
    assert len(ssmex_pid) == 1, "the credential process ran outside ssmex"
    assert run["pid"] not in ssmex_pid


def test_server_mode_environment_hides_other_credentials(run_ssmex, ssm_endpoint, standin, emulator, aws_environment, monkeypatch):
    (aws_environment / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = {DEFAULT_KEY}\naws_secret_access_key = default-secret\n"
    )
    monkeypatch.setenv("AWS_SECURITY_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(aws_environment / "token"))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::000000000000:role/web")
    monkeypatch.setenv("SSMEX_TEST_PASSTHROUGH", "kept")

    completed = start(run_ssmex, ssm_endpoint.endpoint_url, env={"STANDIN_RESUMES": "1"})

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    environment = run["env"]
    for name in KEY_VARIABLES + ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        assert name not in environment, name
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        assert Path(environment[name]).read_text() == "", name
        assert environment[name] != os.environ[name]
    assert environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:")
    assert environment["SSMEX_TEST_PASSTHROUGH"] == "kept"
    assert run["argv"][3] == ""
    assert run["resumes"][0]["source"] == "container"
    assert emulator.calls_of("ResumeSession")[0].access_key_id == ACCESS_KEY_ID


def test_server_mode_ignores_profile_argument(run_ssmex, ssm_endpoint, standin, emulator, credential_process):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--profile", "proc", env={"STANDIN_RESUMES": "1"})

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    assert run["argv"][3] == ""
    assert "AWS_PROFILE" not in run["env"]
    assert run["resumes"][0]["source"] == "container"


def test_server_token_stays_out_of_argv_and_debug(run_ssmex, ssm_endpoint, standin, credential_process):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--profile", "proc", "--debug", env={"STANDIN_RESUMES": "1"})

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    token = run["env"]["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    assert len(token) >= 32
    assert token not in " ".join(run["argv"])
    output = completed.stdout + completed.stderr
    assert token not in output
    assert "process-secret-" not in output
    assert "process-token-" not in output
    assert "credentials reach session-manager-plugin by server (the default" in completed.stderr
    assert "credential server handed the plugin access key id AKIAPROC" in completed.stderr


def test_profile_mode_keeps_aws_cli_environment(run_ssmex, ssm_endpoint, standin, emulator, monkeypatch):
    monkeypatch.setenv("SSMEX_TEST_PASSTHROUGH", "kept")
    monkeypatch.setenv("STANDIN_RESUMES", "1")

    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--credentials", "profile")

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    expected = {name: value for name, value in os.environ.items() if name != "AWS_SSM_START_SESSION_RESPONSE"}
    received = {name: value for name, value in run["env"].items() if name != "AWS_SSM_START_SESSION_RESPONSE"}
    assert received == expected
    assert run["argv"][3] == ""
    assert run["resumes"][0]["source"] == "environment"
    assert emulator.calls_of("ResumeSession")[0].access_key_id == ACCESS_KEY_ID


def test_profile_mode_from_variable_passes_profile(run_ssmex, ssm_endpoint, standin, emulator, credential_process, monkeypatch):
    monkeypatch.setenv("SSMEX_CREDENTIALS", "profile")

    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--profile", "proc", "--debug", env={"STANDIN_RESUMES": "1"})

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    assert run["argv"][3] == "proc"
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in run["env"]
    assert run["resumes"][0]["source"] == "profile"
    assert "by profile (from SSMEX_CREDENTIALS)" in completed.stderr
    # The plugin ran the credential process itself, as it does after the AWS CLI.
    assert run["pid"] in {process_run["parent"] for process_run in credential_process.runs()}


def test_environment_mode_puts_frozen_keys_with_warning(run_ssmex, ssm_endpoint, standin, emulator, credential_process):
    credential_process.set_lifetime(3600)

    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--profile", "proc", "--credentials", "environment", env={"STANDIN_RESUMES": "1"}
    )

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    environment = run["env"]
    key = environment["AWS_ACCESS_KEY_ID"]
    process_run = credential_process.run_of(key)
    assert environment["AWS_SECRET_ACCESS_KEY"] == f"process-secret-{process_run['number']}-do-not-print"
    assert environment["AWS_SESSION_TOKEN"] == f"process-token-{process_run['number']}-do-not-print"
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in environment
    assert run["argv"][3] == ""
    assert run["resumes"][0]["source"] == "environment"
    assert emulator.calls_of("ResumeSession")[0].access_key_id == key
    expiry = process_run["expiry"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"expire at {expiry}" in completed.stderr
    assert "process-secret-" not in completed.stderr


def test_environment_credentials_expiry_is_stated(run_ssmex, ssm_endpoint, standin, monkeypatch):
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=50)
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", expiry.strftime("%Y-%m-%dT%H:%M:%SZ"))

    completed = start(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 0, completed.stderr
    assert f"expire at {expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}" in completed.stderr
    assert "AWS_ACCESS_KEY_ID" in completed.stderr


def test_unknown_expiry_is_stated_for_environment_mode(run_ssmex, ssm_endpoint, standin):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--credentials", "environment")

    assert completed.returncode == 0, completed.stderr
    assert "cannot know when the plugin's temporary credentials expire" in completed.stderr


def test_long_term_keys_get_no_expiry_warning(run_ssmex, ssm_endpoint, standin, monkeypatch):
    monkeypatch.delenv("AWS_SESSION_TOKEN")

    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--credentials", "environment")

    assert completed.returncode == 0, completed.stderr
    assert "warning" not in completed.stderr


def test_invalid_mode_variable_rejected(run_ssmex, ssm_endpoint, standin, emulator, monkeypatch):
    monkeypatch.setenv("SSMEX_CREDENTIALS", "keys")

    completed = start(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 2
    assert "SSMEX_CREDENTIALS='keys' is not a credential mode" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert emulator.calls == []


# Choosing the mode, in process.


def write_mfa_profiles(home: Path) -> None:
    with open(home / ".aws" / "config", "a", encoding="utf-8") as handle:
        handle.write(
            "[profile base]\nregion = us-east-1\n"
            "[profile admin]\nrole_arn = arn:aws:iam::000000000000:role/admin\nsource_profile = base\n"
            "mfa_serial = arn:aws:iam::000000000000:mfa/alice\nregion = us-east-1\n"
            "[profile chained]\nrole_arn = arn:aws:iam::000000000000:role/chained\nsource_profile = admin\nregion = us-east-1\n"
        )


@pytest.mark.parametrize("profile", ["admin", "chained"])
def test_mfa_role_credentials_are_frozen(aws_environment, profile):
    from botocore.credentials import RefreshableCredentials

    write_mfa_profiles(aws_environment)
    aws = AwsContext(AwsSettings(profile=profile))
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=55)
    credentials = RefreshableCredentials(
        "AKIAROLEKEY000000001", "role-secret", "role-token", expiry, refresh_using=lambda: pytest.fail("refreshed"), method="assume-role"
    )

    choice = handoff.choose(aws, credentials)

    assert choice.mode is handoff.CredentialMode.SERVER
    assert isinstance(choice.source, FrozenSource)
    assert "arn:aws:iam::000000000000:mfa/alice" in choice.frozen_because
    assert choice.expiry() == expiry
    warning = handoff.expiry_warning(choice, background=True)
    assert expiry.strftime("%Y-%m-%dT%H:%M:%SZ") in warning


def test_describe_for_doctor_names_mode_and_reason(aws_environment, monkeypatch):
    monkeypatch.setenv("AWS_REGION", REGION)
    aws = AwsContext(AwsSettings())

    default = handoff.describe_for_doctor(aws)
    chosen = handoff.describe_for_doctor(aws, "environment")

    assert default.startswith("credentials reach session-manager-plugin by server (the default")
    assert "botocore method env" in default
    assert chosen.startswith("credentials reach session-manager-plugin by environment (from --credentials)")
    assert "expiry unknown" in chosen


def test_supervisor_command_in_frozen_executable(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)

    assert supervisor.supervisor_command() == [sys.executable, "supervise"]


def test_supervisor_command_from_python(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)

    assert supervisor.supervisor_command() == [sys.executable, "-m", "ssmex", "supervise"]


# Background sessions under the supervisor.


def start_background(run_ssmex, endpoint, *extra, env=None):
    completed = start(run_ssmex, endpoint, "--pass-thru", *PORT_DOCUMENT, *extra, env=dict({"STANDIN_MODE": "port"}, **(env or {})))
    assert completed.returncode == 0, completed.stderr
    return completed, json.loads(completed.stdout)


def request_resume(trigger: Path, standin, count: int) -> dict:
    """Make the stand-in call ResumeSession and return the count-th call's result."""

    def resumes() -> list[dict]:
        runs = standin.runs()
        return runs[0].get("resumes", []) if runs else []

    trigger.touch()
    wait_for(lambda: len(resumes()) >= count, what=f"resume {count}")
    return resumes()[count - 1]


def stop_session(run_ssmex, session_id):
    completed = run_ssmex("sessions", "stop", session_id)
    assert completed.returncode == 0, completed.stderr
    return completed


def test_port_forward_outlives_its_first_credentials(run_ssmex, ssm_endpoint, standin, emulator, credential_process, tmp_path):
    credential_process.set_lifetime(3)
    trigger = tmp_path / "resume-now"

    completed, record = start_background(run_ssmex, ssm_endpoint.endpoint_url, "--profile", "proc", env={"STANDIN_RESUME_TRIGGER": str(trigger)})

    supervisor_pid = record["ProcessId"]
    plugin_pid = record["PluginProcessId"]
    try:
        assert record["Supervised"] is True
        assert supervisor_pid != plugin_pid
        assert standin.only_run()["pid"] == plugin_pid
        # The command that started the session has exited; its supervisor and plugin live on.
        assert process_alive(supervisor_pid)
        assert process_alive(plugin_pid)
        start_key = emulator.calls_of("StartSession")[0].access_key_id
        start_expiry = credential_process.run_of(start_key)["expiry"]
        wait_for(lambda: datetime.datetime.now(datetime.timezone.utc) > start_expiry, what="the first credentials to expire")
        emulator.expire_access_key(start_key)

        first = request_resume(trigger, standin, 1)
        second = request_resume(trigger, standin, 2)

        signers = [call.access_key_id for call in emulator.calls_of("ResumeSession")]
        # Shown with pytest -s: which key signed each call, and which process printed it.
        for call in emulator.calls:
            printed_by = "supervisor" if credential_process.run_of(call.access_key_id)["parent"] == supervisor_pid else "ssmex start-session"
            print(f"{call.operation} {call.status} signed by {call.access_key_id} (from {printed_by})")
        assert [first["status"], second["status"]] == [200, 200], (first, second)
        assert signers == [first["access_key_id"], second["access_key_id"]]
        assert start_key not in signers
        assert signers[0] != signers[1]
        for key in signers:
            assert credential_process.run_of(key)["parent"] == supervisor_pid
        with socket.create_connection(("127.0.0.1", record["LocalPort"]), timeout=10) as connection:
            connection.sendall(b"still forwarding")
            assert connection.recv(64) == b"still forwarding"
        session_log = Path(record["LogFile"]).read_text()
        server_token = standin.only_run()["env"]["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        assert "credential server handed the plugin access key id AKIAPROC" in session_log
        assert "process-secret-" not in session_log
        assert "process-token-" not in session_log
        assert server_token not in session_log
        assert emulator.sessions[record["SessionId"]].token not in session_log
    finally:
        stopped = run_ssmex("sessions", "stop", record["SessionId"])

    assert stopped.returncode == 0, stopped.stderr
    assert not process_alive(supervisor_pid)
    assert not process_alive(plugin_pid)
    terminate_calls = emulator.calls_of("TerminateSession")
    assert len(terminate_calls) == 1
    assert terminate_calls[0].status == 200
    assert terminate_calls[0].access_key_id not in (start_key, *signers)
    assert credential_process.run_of(terminate_calls[0].access_key_id)["parent"] == supervisor_pid
    print(f"TerminateSession {terminate_calls[0].status} signed by {terminate_calls[0].access_key_id} (from supervisor)")
    assert emulator.sessions[record["SessionId"]].status == "Terminated"
    assert records.find(record["SessionId"]) is None


def test_supervisor_stops_on_stop_file(run_ssmex, ssm_endpoint, standin, emulator):
    completed, record = start_background(run_ssmex, ssm_endpoint.endpoint_url)
    supervisor_pid = record["ProcessId"]
    plugin_pid = record["PluginProcessId"]
    try:
        # The Windows stop request, exercised here on POSIX.
        Path(supervisor.stop_file(record["SessionId"])).touch()
        wait_for(lambda: not process_alive(supervisor_pid), what="the supervisor to exit")
    finally:
        if process_alive(supervisor_pid):
            os.kill(supervisor_pid, signal.SIGKILL)
        if process_alive(plugin_pid):
            os.kill(plugin_pid, signal.SIGKILL)

    assert not process_alive(plugin_pid)
    saved = records.find(record["SessionId"])
    assert saved.extra["Terminated"] is True
    assert [call.access_key_id for call in emulator.calls_of("TerminateSession")] == [ACCESS_KEY_ID]
    listed = json.loads(run_ssmex("sessions", "list", "--json").stdout)
    assert [row["Alive"] for row in listed] == [False]
    stop_session(run_ssmex, record["SessionId"])
    assert len(emulator.calls_of("TerminateSession")) == 1
    assert records.find(record["SessionId"]) is None


def test_supervisor_exits_with_its_plugin(run_ssmex, ssm_endpoint, standin, emulator):
    completed, record = start_background(run_ssmex, ssm_endpoint.endpoint_url)
    supervisor_pid = record["ProcessId"]

    os.kill(record["PluginProcessId"], signal.SIGINT)
    wait_for(lambda: not process_alive(supervisor_pid), what="the supervisor to exit")

    saved = records.find(record["SessionId"])
    assert saved.extra["PluginExitStatus"] == 0
    assert "Terminated" not in saved.extra
    assert not saved.alive


def test_supervisor_serves_frozen_environment_credentials(run_ssmex, ssm_endpoint, standin, emulator, tmp_path, monkeypatch):
    expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", expiry)
    trigger = tmp_path / "resume-now"

    completed, record = start_background(run_ssmex, ssm_endpoint.endpoint_url, env={"STANDIN_RESUME_TRIGGER": str(trigger)})
    try:
        resume = request_resume(trigger, standin, 1)
    finally:
        stop_session(run_ssmex, record["SessionId"])

    assert f"expire at {expiry}" in completed.stderr
    assert record["CredentialsExpire"] == expiry
    assert resume["status"] == 200
    assert resume["access_key_id"] == ACCESS_KEY_ID
    assert SECRET_ACCESS_KEY not in completed.stdout + completed.stderr


def test_background_profile_mode_runs_plugin_directly(run_ssmex, ssm_endpoint, standin, emulator):
    completed, record = start_background(run_ssmex, ssm_endpoint.endpoint_url, "--credentials", "profile")
    try:
        assert record["ProcessId"] == standin.only_run()["pid"]
        assert "Supervised" not in record
    finally:
        stop_session(run_ssmex, record["SessionId"])

    assert len(emulator.calls_of("TerminateSession")) == 1


def test_supervisor_failure_ends_session(run_ssmex, ssm_endpoint, standin, emulator):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--pass-thru", *PORT_DOCUMENT, env={"STANDIN_MODE": "panic"})

    assert completed.returncode == 9
    assert "exited with status 2" in completed.stderr
    assert "was terminated" in completed.stderr
    assert [call.operation for call in emulator.calls] == ["StartSession", "TerminateSession"]
    assert list(records.load_all()) == []


def test_supervise_command_hidden_and_checks_input(run_ssmex):
    listed = run_ssmex("--help")
    completed = run_ssmex("supervise", input="not json")

    assert "supervise" not in listed.stdout
    assert completed.returncode == 2
    assert json.loads(completed.stdout) == {"ok": False, "message": "the ssmex supervisor received no valid handoff on its standard input"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux ends the plugin with its killed supervisor")
def test_killed_supervisor_takes_plugin_along(run_ssmex, ssm_endpoint, standin):
    completed, record = start_background(run_ssmex, ssm_endpoint.endpoint_url)
    plugin_pid = record["PluginProcessId"]

    os.kill(record["ProcessId"], signal.SIGKILL)

    try:
        wait_for(lambda: not process_alive(plugin_pid), what="the plugin to end with its supervisor")
    finally:
        if process_alive(plugin_pid):
            os.kill(plugin_pid, signal.SIGKILL)


def test_server_mode_keeps_profile_ca_bundle(run_ssmex, ssm_endpoint, standin, aws_environment, tmp_path):
    bundle = tmp_path / "corporate-ca.pem"
    bundle.write_text("")
    with open(aws_environment / ".aws" / "config", "a", encoding="utf-8") as handle:
        handle.write(f"[default]\nca_bundle = {bundle}\n")

    completed = start(run_ssmex, ssm_endpoint.endpoint_url)

    assert completed.returncode == 0, completed.stderr
    assert standin.only_run()["env"]["AWS_CA_BUNDLE"] == str(bundle)
