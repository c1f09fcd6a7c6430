"""ssmex rdp and ec2-rdp against the emulator, the stand-in plugin and a stand-in RDP client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

import pytest

from everyday_support import (
    REGION,
    WINDOWS_ID,
    WINDOWS_PASSWORD,
    EchoServer,
    install_rdp_client,
    read_until,
    stop_leftovers,
    wait_for,
    windows_instance,
    write_ed25519_key,
    write_key,
)
from ssmex import records
from ssmex.process import process_alive


@pytest.fixture
def windows(emulator):
    instance = windows_instance()
    emulator.add_instance(instance)
    return instance


@pytest.fixture
def rdp_client(tmp_path, monkeypatch):
    client = install_rdp_client(tmp_path / "rdp-client")
    monkeypatch.setenv("SSMEX_RDP_CLIENT", str(client.path))
    monkeypatch.setenv("STANDIN_RDP_RECORD", str(client.record_path))
    return client


@pytest.fixture
def key_file(tmp_path):
    return write_key(tmp_path / "windows-key.pem", "pkcs1")


def rdp_args(endpoint, key, *extra):
    return ["rdp", "win-1", "--key-file", str(key), "--region", REGION, "--endpoint-url", endpoint, *extra]


def assert_session_cleaned_up(emulator, standin):
    terminated = [call.body["SessionId"] for call in emulator.calls_of("TerminateSession")]
    started = [session_id for session_id, session in emulator.sessions.items()]
    assert terminated == started
    assert all(session.status == "Terminated" for session in emulator.sessions.values())
    for run in standin.runs():
        wait_for(lambda: not process_alive(run["pid"]), what=f"plugin pid {run['pid']} to end")
    assert list(records.load_all()) == []


def test_rdp_end_to_end_password_on_stdin(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, key_file):
    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file), env={"STANDIN_MODE": "port"})

    assert completed.returncode == 0, completed.stderr
    run = rdp_client.record()
    address = next(arg for arg in run["argv"] if arg.startswith("/v:"))
    port = int(address.rsplit(":", 1)[1])
    assert run["argv"] == ["/u:Administrator", f"/v:localhost:{port}", "/from-stdin:force"]
    assert port >= 33389
    assert run["stdin"] == f"\n{WINDOWS_PASSWORD}\n"
    assert run["echo"] is True, "the RDP client could not reach the instance through the port forward"
    request = json.loads(standin.only_run()["argv"][4])
    assert request["DocumentName"] == "AWS-StartPortForwardingSession"
    assert request["Parameters"] == {"portNumber": ["3389"], "localPortNumber": [str(port)]}
    assert WINDOWS_PASSWORD not in completed.stdout + completed.stderr
    assert_session_cleaned_up(emulator, standin)


def test_rdp_debug_log_hides_password(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, key_file):
    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file, "--debug"), env={"STANDIN_MODE": "port"})

    assert completed.returncode == 0, completed.stderr
    assert "GetPasswordData" in completed.stderr
    assert WINDOWS_PASSWORD not in completed.stdout + completed.stderr
    assert rdp_client.record()["stdin"].endswith(f"{WINDOWS_PASSWORD}\n")


def test_rdp_local_port_option(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, key_file):
    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file, "--local-port", "0", "--port", "3390"), env={"STANDIN_MODE": "port"})

    assert completed.returncode == 0, completed.stderr
    assert json.loads(standin.only_run()["argv"][4])["Parameters"]["portNumber"] == ["3390"]


def test_rdp_offline_instance_names_ping_status(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, rdp_client, key_file):
    emulator.add_instance(windows_instance(ping_status="ConnectionLost"))

    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file))

    assert completed.returncode == 6
    assert "ConnectionLost" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert emulator.calls_of("StartSession") == []
    assert not rdp_client.ran()


def test_rdp_linux_instance_rejected(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, rdp_client, key_file):
    emulator.add_instance(windows_instance(platform="Linux"))

    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file))

    assert completed.returncode == 2
    assert f"{WINDOWS_ID} runs Linux, not Windows" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert emulator.calls_of("StartSession") == []
    assert emulator.calls_of("GetPasswordData") == []


def test_rdp_client_failure_status_returned(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, key_file):
    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file), env={"STANDIN_MODE": "port", "STANDIN_RDP_EXIT": "7"})

    assert completed.returncode == 7
    assert "exited with status 7" in completed.stderr
    assert rdp_client.ran()
    assert_session_cleaned_up(emulator, standin)


def test_rdp_empty_password_not_available_yet(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, rdp_client, key_file):
    emulator.add_instance(windows_instance(password=""))

    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file))

    assert completed.returncode == 5
    assert "not available yet" in completed.stderr
    assert "try again in a few minutes" in completed.stderr
    assert emulator.calls_of("StartSession") == []


def test_rdp_ed25519_key_rejected(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, tmp_path):
    key = write_ed25519_key(tmp_path / "ed25519.pem")

    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key))

    assert completed.returncode == 2
    assert "Ed25519" in completed.stderr
    assert "RSA key pair" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert emulator.calls_of("StartSession") == []


def test_rdp_encrypted_key_without_terminal(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, tmp_path):
    key = write_key(tmp_path / "encrypted.pem", "pkcs8", passphrase="secret words")

    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key))

    assert completed.returncode == 2
    assert "encrypted" in completed.stderr
    assert "not a terminal" in completed.stderr
    assert emulator.calls_of("StartSession") == []


def test_rdp_wrong_key_reported(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = write_key(tmp_path / "other.pem", "pkcs1", key=rsa.generate_private_key(public_exponent=65537, key_size=2048))

    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, other))

    assert completed.returncode == 2
    assert "could not be decrypted" in completed.stderr
    assert emulator.calls_of("StartSession") == []


def test_rdp_taken_local_port(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, key_file):
    holder = EchoServer()
    try:
        completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file, "--local-port", str(holder.port)))
    finally:
        holder.close()

    assert completed.returncode == 2
    assert f"local port {holder.port}" in completed.stderr
    assert emulator.calls_of("StartSession") == []


def test_rdp_readiness_deadline_cleans_up(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, key_file):
    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file, "--ready-timeout", "1"), env={"STANDIN_MODE": "hang"})

    assert completed.returncode == 9
    assert "was not ready within 1 seconds" in completed.stderr
    assert not rdp_client.ran()
    assert_session_cleaned_up(emulator, standin)


def start_rdp_process(ssmex_command, endpoint, key, *extra, env=None):
    environment = dict(os.environ, STANDIN_MODE="port", **(env or {}))
    return subprocess.Popen(
        ssmex_command + rdp_args(endpoint, key, *extra),
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_rdp_interrupt_cleans_up(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, key_file, signal_number):
    process = start_rdp_process(ssmex_command, ssm_endpoint.endpoint_url, key_file, env={"STANDIN_RDP_MODE": "hang"})
    try:
        wait_for(rdp_client.ran, what="the RDP client to start")
        if signal_number == signal.SIGINT:
            # A terminal sends Ctrl+C to the whole foreground process group.
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        stop_leftovers(process, standin)

    assert process.returncode == 128 + signal_number, stderr.decode()
    assert b"Traceback" not in stderr
    assert WINDOWS_PASSWORD.encode() not in stdout + stderr
    assert_session_cleaned_up(emulator, standin)
    wait_for(lambda: not process_alive(rdp_client.record()["pid"]), what="the RDP client to end")


def test_rdp_no_launch_keeps_forward_until_ctrl_c(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator, windows, key_file):
    process = start_rdp_process(ssmex_command, ssm_endpoint.endpoint_url, key_file, "--no-launch")
    try:
        output = read_until(process.stdout, b"User:     Administrator\n")
        assert emulator.calls_of("TerminateSession") == []
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        stop_leftovers(process, standin)

    # Ctrl+C is the documented way to end it, so it is no error.
    assert process.returncode == 0, stderr.decode()
    assert b"error" not in stderr
    text = (output + stdout).decode()
    assert "Address:  localhost:" in text
    assert "User:     Administrator" in text
    assert WINDOWS_PASSWORD not in text + stderr.decode()
    assert_session_cleaned_up(emulator, standin)


def test_sessions_stop_all_spares_running_rdp(ssmex_command, run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, key_file):
    process = start_rdp_process(ssmex_command, ssm_endpoint.endpoint_url, key_file, env={"STANDIN_RDP_MODE": "hang"})
    try:
        wait_for(rdp_client.ran, what="the RDP client to start")
        [record] = records.load_all()
        listed = run_ssmex("sessions")
        spared = run_ssmex("sessions", "stop", "--all")
        spared_alive = process_alive(record.ProcessId)
        # Stopped by id, the forward ends under the client, and ssmex rdp reports it once the client exits.
        stopped = run_ssmex("sessions", "stop", record.SessionId)
        os.kill(rdp_client.record()["pid"], signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        stop_leftovers(process, standin)

    assert "in use" in listed.stdout
    assert spared.returncode == 0
    assert f"Left session {record.SessionId} running because ssmex (pid {process.pid}) is using it" in spared.stderr
    assert spared_alive
    assert stopped.returncode == 0, stopped.stderr
    assert process.returncode == 9
    assert b"The port forward ended while the RDP client ran" in stderr


def test_rdp_no_launch_show_password(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator, windows, key_file):
    process = start_rdp_process(ssmex_command, ssm_endpoint.endpoint_url, key_file, "--no-launch", "--show-password")
    try:
        output = read_until(process.stdout, b"Password: " + WINDOWS_PASSWORD.encode() + b"\n")
        os.killpg(process.pid, signal.SIGINT)
        process.communicate(timeout=60)
    finally:
        stop_leftovers(process, standin)

    assert f"Password: {WINDOWS_PASSWORD}\n" in output.decode()
    assert_session_cleaned_up(emulator, standin)


def ec2_rdp_args(port, key, *extra):
    return ["ec2-rdp", "win-1", "--key-file", str(key), "--region", REGION, "--port", str(port), *extra]


def test_ec2_rdp_uses_public_address(run_ssmex, ssm_endpoint, ec2_endpoint, emulator, windows, rdp_client, key_file):
    server = EchoServer()
    try:
        completed = run_ssmex(*ec2_rdp_args(server.port, key_file, "--endpoint-url", ssm_endpoint.endpoint_url))
    finally:
        server.close()

    assert completed.returncode == 0, completed.stderr
    run = rdp_client.record()
    assert run["argv"] == ["/u:Administrator", f"/v:127.0.0.1:{server.port}", "/from-stdin:force"]
    assert run["stdin"] == f"\n{WINDOWS_PASSWORD}\n"
    assert run["echo"] is True
    assert emulator.calls_of("StartSession") == []
    assert WINDOWS_PASSWORD not in completed.stdout + completed.stderr


def test_ec2_rdp_closed_port_reported(run_ssmex, ec2_endpoint, emulator, windows, rdp_client, key_file):
    # Bound but not listening: connections are refused and no other program can take the port.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        completed = run_ssmex(*ec2_rdp_args(closed.getsockname()[1], key_file))

    assert completed.returncode == 8
    assert "security group" in completed.stderr
    assert not rdp_client.ran()
    assert emulator.calls_of("GetPasswordData") == []


@pytest.mark.parametrize(
    "overrides,fragment",
    [({"state": "stopped"}, "is stopped, not running"), ({"public_ip": ""}, "has no public IP address")],
)
def test_ec2_rdp_unusable_instance(run_ssmex, ec2_endpoint, emulator, rdp_client, key_file, overrides, fragment):
    emulator.add_instance(windows_instance(**overrides))

    completed = run_ssmex("ec2-rdp", WINDOWS_ID, "--key-file", str(key_file), "--region", REGION)

    assert completed.returncode != 0
    assert fragment in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert not rdp_client.ran()


def test_rdp_passphrase_on_terminal_then_ctrl_c(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator, windows, tmp_path, monkeypatch):
    import fcntl
    import pty
    import termios

    from everyday_support import PASSPHRASE

    key = write_key(tmp_path / "encrypted.pem", "openssh", passphrase=PASSPHRASE)
    monkeypatch.setenv("STANDIN_MODE", "port")
    primary, secondary = pty.openpty()

    def attach_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        ssmex_command + rdp_args(ssm_endpoint.endpoint_url, key, "--no-launch"),
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        preexec_fn=attach_terminal,
    )
    os.close(secondary)
    try:
        shown = read_until(primary, b"Passphrase for ")
        os.write(primary, PASSPHRASE.encode() + b"\n")
        shown += read_until(primary, b"until you press Ctrl+C")
        # Ctrl+C typed on the terminal: the line discipline sends SIGINT to the foreground group.
        os.write(primary, b"\x03")
        process.wait(timeout=60)
    finally:
        stop_leftovers(process, standin)
        os.close(primary)

    text = shown.decode("utf-8", "replace")
    assert PASSPHRASE not in text
    assert "User:     Administrator" in text
    assert process.returncode == 0
    assert_session_cleaned_up(emulator, standin)


def test_ec2_rdp_no_launch_returns_at_once(run_ssmex, ec2_endpoint, emulator, windows, rdp_client, key_file):
    server = EchoServer()
    try:
        completed = run_ssmex(*ec2_rdp_args(server.port, key_file, "--no-launch", "--show-password"))
    finally:
        server.close()

    assert completed.returncode == 0, completed.stderr
    assert f"Address:  127.0.0.1:{server.port}\n" in completed.stdout
    assert f"Password: {WINDOWS_PASSWORD}\n" in completed.stdout
    assert not rdp_client.ran()


def test_powershell_request_runs_rdp(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, key_file):
    import base64

    request = {
        "command": "Start-SSMRDPClient",
        "parameters": {"InstanceId": "win-1", "PemFile": str(key_file), "Region": REGION, "EndpointUrl": ssm_endpoint.endpoint_url},
    }
    encoded = base64.b64encode(json.dumps(request).encode("utf-8")).decode("ascii")

    completed = run_ssmex("invoke", env={"SSMEX_REQUEST": encoded, "STANDIN_MODE": "port"})

    assert completed.returncode == 0, completed.stderr
    assert rdp_client.record()["stdin"] == f"\n{WINDOWS_PASSWORD}\n"
    assert rdp_client.record()["echo"] is True
    assert WINDOWS_PASSWORD not in completed.stdout + completed.stderr
    assert_session_cleaned_up(emulator, standin)


def test_show_password_needs_no_launch(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator, windows, rdp_client, key_file):
    completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file, "--show-password"))

    assert completed.returncode == 2
    assert "--show-password works only with --no-launch" in completed.stderr
    assert emulator.calls == []


def test_ec2_rdp_unknown_instance_id(run_ssmex, ec2_endpoint, emulator, rdp_client, key_file):
    completed = run_ssmex("ec2-rdp", "i-0000000000000dead", "--key-file", str(key_file), "--region", REGION)

    assert completed.returncode == 2
    assert "InvalidInstanceID.NotFound" in completed.stderr
    assert "check the instance id and the region" in completed.stderr
    assert not rdp_client.ran()


def test_rdp_native_client_forward(run_ssmex, ssm_endpoint, ec2_endpoint, emulator, windows, rdp_client, key_file):
    from ssmex.emulator.datachannel import start_data_channel_server

    echo = EchoServer()
    windows.port_map[3389] = ("127.0.0.1", echo.port)
    data_channel = start_data_channel_server(emulator)
    try:
        completed = run_ssmex(*rdp_args(ssm_endpoint.endpoint_url, key_file, "--client", "native"))
    finally:
        data_channel.close()
        echo.close()

    assert completed.returncode == 0, completed.stderr
    run = rdp_client.record()
    assert run["echo"] is True, "the RDP client could not reach the instance through the native port forward"
    assert run["stdin"] == f"\n{WINDOWS_PASSWORD}\n"
    assert [call.operation for call in emulator.calls if call.operation.endswith("Session")] == ["StartSession", "TerminateSession"]
    assert list(records.load_all()) == []
