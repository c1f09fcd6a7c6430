"""ssmex ssh-proxy: bytes through AWS-StartSSHSession, and a real ssh client using it."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import socket
import subprocess
import threading

import pytest

from conftest import INSTANCE_ID
from everyday_support import REGION


def proxy(run_ssmex, endpoint, host="web-1", port="22", **kwargs):
    return run_ssmex("ssh-proxy", host, port, "--region", REGION, "--endpoint-url", endpoint, **kwargs)


def test_stdin_bytes_come_back_on_stdout(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "stdio")
    payload = b"SSH-2.0-test\r\n" + bytes(range(256)) * 64

    completed = subprocess.run(
        ssmex_command + ["ssh-proxy", "web-1", "22", "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url],
        input=payload,
        capture_output=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr.decode()
    assert completed.stdout == payload
    request = json.loads(standin.only_run()["argv"][4])
    assert request == {"Target": INSTANCE_ID, "DocumentName": "AWS-StartSSHSession", "Parameters": {"portNumber": ["22"]}}


def test_sighup_from_ssh_ends_session_quietly(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "stdio")
    process = subprocess.Popen(
        ssmex_command + ["ssh-proxy", "web-1", "22", "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        process.stdin.write(b"ping\n")
        process.stdin.flush()
        assert process.stdout.readline() == b"ping\n"
        # ssh sends its ProxyCommand SIGHUP when it exits.
        process.send_signal(signal.SIGHUP)
        process.wait(timeout=30)
        stderr = process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    assert process.returncode == 0, stderr
    assert "error" not in stderr
    assert [call.operation for call in emulator.calls if call.operation.endswith("Session")] == ["StartSession", "TerminateSession"]


def test_messages_go_to_stderr_only(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    completed = proxy(run_ssmex, ssm_endpoint.endpoint_url, host="no-such-box", input="")

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert "no-such-box" in completed.stderr


def test_ambiguous_host_never_prompts(run_ssmex, ssm_endpoint, ec2_endpoint, standin, emulator):
    from ssmex.emulator.api import EmulatedInstance

    emulator.add_instance(EmulatedInstance("i-0badc0ffee0000001", name="web-1"))

    completed = proxy(run_ssmex, ssm_endpoint.endpoint_url, input="1\n")

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert "matches 2 targets" in completed.stderr


@pytest.mark.parametrize("port", ["ssh", "0", "70000"])
def test_invalid_port_rejected(run_ssmex, ssm_endpoint, standin, emulator, port):
    completed = proxy(run_ssmex, ssm_endpoint.endpoint_url, port=port, input="")

    assert completed.returncode == 2
    assert "is not a port number" in completed.stderr
    assert emulator.calls == []


class BannerServer:
    """A loopback TCP server that sends an SSH identification line and records what it reads."""

    BANNER = b"SSH-2.0-ssmexTestServer\r\n"

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.sendall(self.BANNER)
            connection.settimeout(10)
            try:
                while b"\r\n" not in self.received:
                    data = connection.recv(4096)
                    if not data:
                        break
                    self.received += data
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client is installed")
def test_real_ssh_client_through_proxy(ssmex_command, ssm_endpoint, ec2_endpoint, standin, emulator, tmp_path, monkeypatch):
    server = BannerServer()
    monkeypatch.setenv("STANDIN_MODE", "stdio")
    monkeypatch.setenv("STANDIN_STDIO_CONNECT", f"127.0.0.1:{server.port}")
    proxy_command = " ".join(
        shlex.quote(part)
        for part in ssmex_command + ["ssh-proxy", "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url, "%h", "%p"]
    )
    try:
        completed = subprocess.run(
            [
                "ssh", "-v", "-F", "/dev/null",
                "-o", f"ProxyCommand={proxy_command}",
                "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no",
                "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
                "-o", "ConnectTimeout=20",
                "-p", "2222",
                "ec2-user@web-1", "true",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        server.thread.join(timeout=20)
    finally:
        server.close()

    assert "remote software version ssmexTestServer" in completed.stderr, completed.stderr
    assert server.received.startswith(b"SSH-2.0-OpenSSH")
    request = json.loads(standin.only_run()["argv"][4])
    assert request["Target"] == INSTANCE_ID
    assert request["Parameters"] == {"portNumber": ["2222"]}
