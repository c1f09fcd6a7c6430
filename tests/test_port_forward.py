"""ssmex port-forward against the emulator and the stand-in plugin in port mode."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess

from conftest import INSTANCE_ID
from everyday_support import REGION, EchoServer, read_until, stop_leftovers, wait_for
from ssmex import records
from ssmex.process import process_alive


def forward_args(endpoint, *extra):
    return ["port-forward", "web-1", "--remote-port", "5432", "--region", REGION, "--endpoint-url", endpoint, *extra]


def echo_through(port: int, payload: bytes = b"through the tunnel") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(payload)
        connection.settimeout(10)
        return connection.recv(len(payload))


def test_pass_thru_returns_when_port_accepts(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    completed = run_ssmex(*forward_args(ssm_endpoint.endpoint_url, "--pass-thru"), env={"STANDIN_MODE": "port"})

    assert completed.returncode == 0, completed.stderr
    record = json.loads(completed.stdout)
    port = record["LocalPort"]
    assert f"localhost:{port} -> {INSTANCE_ID}:5432" in completed.stderr
    assert echo_through(port) == b"through the tunnel"
    request = json.loads(standin.only_run()["argv"][4])
    assert request["DocumentName"] == "AWS-StartPortForwardingSession"
    assert request["Parameters"] == {"portNumber": ["5432"], "localPortNumber": [str(port)]}

    stopped = run_ssmex("sessions", "stop", "--all", "--endpoint-url", ssm_endpoint.endpoint_url)
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: not process_alive(record["ProcessId"]), what="the background plugin to end")


def test_remote_host_uses_remote_document(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    completed = run_ssmex(
        *forward_args(ssm_endpoint.endpoint_url, "--pass-thru", "--remote-host", "db.internal.example"), env={"STANDIN_MODE": "port"}
    )

    assert completed.returncode == 0, completed.stderr
    port = json.loads(completed.stdout)["LocalPort"]
    assert f"localhost:{port} -> db.internal.example:5432" in completed.stderr
    request = json.loads(standin.only_run()["argv"][4])
    assert request["DocumentName"] == "AWS-StartPortForwardingSessionToRemoteHost"
    assert request["Parameters"]["host"] == ["db.internal.example"]
    for record in records.load_all():
        run_ssmex("sessions", "stop", record.SessionId, "--endpoint-url", ssm_endpoint.endpoint_url)


def test_taken_local_port_starts_nothing(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    holder = EchoServer()
    try:
        completed = run_ssmex(*forward_args(ssm_endpoint.endpoint_url, "--local-port", str(holder.port)))
    finally:
        holder.close()

    assert completed.returncode == 2
    assert f"The local port {holder.port} (from --local-port) is already in use" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert emulator.calls_of("StartSession") == []
    assert standin.runs() == []


def test_foreground_prints_line_then_ctrl_c(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator):
    process = subprocess.Popen(
        ssmex_command + forward_args(ssm_endpoint.endpoint_url),
        env=dict(os.environ, STANDIN_MODE="port"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        line = read_until(process.stderr, b":5432\n").decode()
        port = int(re.search(r"localhost:(\d+) -> ", line).group(1))
        assert echo_through(port) == b"through the tunnel"
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        stop_leftovers(process, standin)

    assert process.returncode == 0, stderr.decode()
    assert f"localhost:{port} -> {INSTANCE_ID}:5432" in line
    assert standin.only_run()["events"] == ["SIGINT"]
    assert b"Port " in stdout


def test_foreground_sighup_ends_session(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator):
    process = subprocess.Popen(
        ssmex_command + forward_args(ssm_endpoint.endpoint_url),
        env=dict(os.environ, STANDIN_MODE="port"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        read_until(process.stderr, b":5432\n")
        # The terminal window closing: only ssmex gets SIGHUP here, and passes it on.
        process.send_signal(signal.SIGHUP)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        stop_leftovers(process, standin)

    assert process.returncode == 129, stderr.decode()
    assert b"ssmex received SIGHUP and passed it to session-manager-plugin" in stderr
    assert not process_alive(standin.only_run()["pid"])
    assert [call.operation for call in emulator.calls if call.operation.endswith("Session")] == ["StartSession", "TerminateSession"]


def test_foreground_deadline_ends_session(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    completed = run_ssmex(*forward_args(ssm_endpoint.endpoint_url, "--ready-timeout", "1"), env={"STANDIN_MODE": "hang"})

    assert completed.returncode == 9
    assert "did not accept connections within 1 seconds" in completed.stderr
    assert "was terminated" in completed.stderr
    assert [call.operation for call in emulator.calls if call.operation.endswith("Session")] == ["StartSession", "TerminateSession"]
    wait_for(lambda: not process_alive(standin.only_run()["pid"]), what="the plugin to end")


def test_plugin_exit_before_ready_reported(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    completed = run_ssmex(*forward_args(ssm_endpoint.endpoint_url))

    assert completed.returncode == 9
    assert "exited with status 0 before local port" in completed.stderr
    assert len(emulator.calls_of("TerminateSession")) == 1


def test_remote_port_out_of_range(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    completed = run_ssmex("port-forward", INSTANCE_ID, "--remote-port", "70000", "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url)

    assert completed.returncode == 2
    assert "out of range" in completed.stderr
    assert emulator.calls == []
