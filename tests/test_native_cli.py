"""start-session with --client: the choice between the plugin and the native client, and
native sessions run by the ssmex command against the emulator's SSM API and data channel."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import INSTANCE_ID, SECRET_ACCESS_KEY, SESSION_TOKEN
from ssmex.emulator.datachannel import start_data_channel_server
from ssmex.emulator.harness import EchoServer
from ssmex.plugin import standard_locations
from ssmex.process import process_alive

REGION = "us-east-1"


@pytest.fixture
def data_channel(emulator, ssm_endpoint):
    server = start_data_channel_server(emulator)
    yield server
    server.close()


@pytest.fixture
def no_plugin(tmp_path, monkeypatch):
    """A PATH with no session-manager-plugin on it (the interpreter stays reachable by its full path)."""
    if any(os.path.exists(path) for path in standard_locations()):
        pytest.skip("a session-manager-plugin is installed in a standard location on this machine")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def start(run_ssmex, endpoint, *extra, env=None, input=None):
    return run_ssmex(
        "start-session", "--target", INSTANCE_ID, "--region", REGION, "--endpoint-url", endpoint, *extra,
        env=env, input=input,
    )


def read_line_containing(stream, text: str, timeout: float = 30) -> str:
    """Return the first line of a child's text output that contains text, reading on a thread for the deadline."""
    import queue
    import threading

    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if not line:
            break
        if text in line:
            return line
    raise AssertionError(f"no line containing {text!r} within {timeout} s")


def operations(emulator):
    return [call.operation for call in emulator.calls]


def test_auto_picks_native_without_plugin(run_ssmex, ssm_endpoint, data_channel, emulator, no_plugin):
    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--document-name", "AWS-StartNonInteractiveCommand",
        "--parameters", "command=echo native", "--debug",
    )

    assert completed.returncode == 0, completed.stderr
    assert "native" in completed.stdout
    assert "client auto (from the default): using the native client, because session-manager-plugin was not found" in completed.stderr
    assert operations(emulator) == ["StartSession"]


def test_auto_picks_plugin_on_path(run_ssmex, ssm_endpoint, data_channel, standin, emulator):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--debug")

    assert completed.returncode == 0, completed.stderr
    assert f"using session-manager-plugin, because it was found at {standin.path}" in completed.stderr
    assert len(standin.runs()) == 1


def test_client_variable_picks_native(run_ssmex, ssm_endpoint, data_channel, standin, emulator):
    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--document-name", "AWS-StartNonInteractiveCommand",
        "--parameters", "command=echo from-native", "--debug", env={"SSMEX_CLIENT": "native"},
    )

    assert completed.returncode == 0, completed.stderr
    assert "from-native" in completed.stdout
    assert "using the native client (from SSMEX_CLIENT)" in completed.stderr
    assert standin.runs() == []


def test_client_flag_wins_over_variable(run_ssmex, ssm_endpoint, data_channel, standin):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, "--client", "plugin", env={"SSMEX_CLIENT": "native"})

    assert completed.returncode == 0, completed.stderr
    assert len(standin.runs()) == 1


@pytest.mark.parametrize(
    "arguments,env,origin",
    [
        (["--client", "fast"], {}, "--client"),
        ([], {"SSMEX_CLIENT": "builtin"}, "SSMEX_CLIENT"),
    ],
)
def test_invalid_client_is_usage_error(run_ssmex, ssm_endpoint, emulator, arguments, env, origin):
    completed = start(run_ssmex, ssm_endpoint.endpoint_url, *arguments, env=env)

    assert completed.returncode == 2
    assert f"(from {origin}) is invalid; use auto, plugin or native." in completed.stderr
    assert "Traceback" not in completed.stderr
    assert emulator.calls == []


@pytest.mark.parametrize("status", [0, 3, 42])
def test_native_command_returns_remote_exit_code(run_ssmex, ssm_endpoint, data_channel, emulator, status):
    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--client", "native",
        "--document-name", "AWS-StartNonInteractiveCommand", "--parameters", f"command=exit {status}",
    )

    assert completed.returncode == status, completed.stderr
    assert operations(emulator) == ["StartSession"]


def test_native_shell_reads_piped_stdin(run_ssmex, ssm_endpoint, data_channel, emulator):
    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--client", "native", input="echo piped-line\nwhoami\nexit 5\n",
    )

    assert completed.returncode == 5, completed.stderr
    assert "piped-line" in completed.stdout
    assert "ssm-user" in completed.stdout


def test_native_failure_terminates_session(run_ssmex, ssm_endpoint, data_channel, emulator, tmp_path):
    # The local listener cannot bind in a folder that does not exist, so the client fails
    # after StartSession.
    socket_path = tmp_path / "missing-folder" / "forward.sock"
    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--client", "native",
        "--document-name", "AWS-StartPortForwardingSession",
        "--parameters", json.dumps({"portNumber": ["22"], "localUnixSocket": [str(socket_path)]}),
    )

    assert completed.returncode == 1
    assert operations(emulator) == ["StartSession", "TerminateSession"]
    session_id = next(iter(emulator.sessions))
    assert f"so session {session_id} was terminated." in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    "signal_number,exit_code,calls",
    [
        # Ctrl+C: the TerminateSession flag alone ends the session, as with the plugin.
        (signal.SIGINT, 0, ["StartSession"]),
        (signal.SIGTERM, 143, ["StartSession", "TerminateSession"]),
    ],
)
def test_native_port_ends_on_signal(ssmex_command, ssm_endpoint, data_channel, emulator, signal_number, exit_code, calls):
    echo = EchoServer()
    emulator.instances[INSTANCE_ID].port_map[22] = ("127.0.0.1", echo.port)
    process = subprocess.Popen(
        ssmex_command + [
            "start-session", "--target", INSTANCE_ID, "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url,
            "--client", "native", "--document-name", "AWS-StartPortForwardingSession",
            "--parameters", "portNumber=22,localPortNumber=0",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    try:
        line = read_line_containing(process.stdout, "opened for sessionId")
        port = int(line.split()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(b"ping")
            assert connection.recv(4) == b"ping"
        process.send_signal(signal_number)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        echo.close()

    assert process.returncode == exit_code
    assert operations(emulator) == calls
    channel = data_channel.channel_for(next(iter(emulator.sessions)))
    assert channel.flags, "the client sent no TerminateSession flag"
    assert next(iter(emulator.sessions.values())).status == "Terminated"


def test_native_debug_output_has_no_secrets(run_ssmex, ssm_endpoint, data_channel, emulator):
    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--client", "native", "--debug",
        "--document-name", "AWS-StartNonInteractiveCommand", "--parameters", "command=whoami",
    )

    assert completed.returncode == 0, completed.stderr
    token = next(iter(emulator.sessions.values())).token
    for secret in (token, SECRET_ACCESS_KEY, SESSION_TOKEN):
        assert secret not in completed.stdout + completed.stderr


def test_native_pass_thru_and_stop(run_ssmex, ssm_endpoint, data_channel, emulator):
    echo = EchoServer()
    emulator.instances[INSTANCE_ID].port_map[22] = ("127.0.0.1", echo.port)
    try:
        completed = start(
            run_ssmex, ssm_endpoint.endpoint_url, "--client", "native", "--pass-thru",
            "--document-name", "AWS-StartPortForwardingSession", "--parameters", "portNumber=22,localPortNumber=0",
        )
        assert completed.returncode == 0, completed.stderr
        record = json.loads(completed.stdout)
        try:
            assert record["Client"] == "native"
            assert record["Alive"] is True
            with socket.create_connection(("127.0.0.1", record["LocalPort"]), timeout=10) as connection:
                connection.sendall(b"background")
                received = b""
                while len(received) < 10:
                    chunk = connection.recv(10 - len(received))
                    if not chunk:
                        break
                    received += chunk
            assert received == b"background"

            stopped = run_ssmex("sessions", "stop", record["SessionId"])
        finally:
            if process_alive(record["ProcessId"]):
                os.kill(record["ProcessId"], 9)
    finally:
        echo.close()

    assert stopped.returncode == 0, stopped.stderr
    assert operations(emulator) == ["StartSession", "TerminateSession"]
    assert not process_alive(record["ProcessId"])
    listed = run_ssmex("sessions", "list", "--json")
    assert json.loads(listed.stdout) == []


@pytest.fixture
def kms_data_channel(data_channel, monkeypatch):
    from ssmex.emulator.kms import FakeKms

    kms = FakeKms().start()
    data_channel.kms = kms
    data_channel.kms_key_id = "alias/session-manager"
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", kms.endpoint_url)
    yield kms
    kms.close()


def test_native_kms_session_through_cli(run_ssmex, ssm_endpoint, kms_data_channel, emulator):
    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--client", "native",
        "--document-name", "AWS-StartNonInteractiveCommand", "--parameters", "command=echo sealed",
    )

    assert completed.returncode == 0, completed.stderr
    assert "sealed" in completed.stdout
    assert len(kms_data_channel.contexts) == 1


def test_native_kms_without_cryptography(run_ssmex, ssm_endpoint, kms_data_channel, emulator, tmp_path):
    # A package named cryptography that fails to import stands for a build without it.
    blocker = tmp_path / "blocker" / "cryptography"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('cryptography is left out of this build')\n")
    pythonpath = os.pathsep.join([str(blocker.parent), os.environ["PYTHONPATH"]])

    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--client", "native",
        "--document-name", "AWS-StartNonInteractiveCommand", "--parameters", "command=echo sealed",
        env={"PYTHONPATH": pythonpath},
    )

    assert completed.returncode == 1
    assert "This session is KMS-encrypted, and this build of ssmex does not include the cryptography package" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert "sealed" not in completed.stdout
    assert operations(emulator) == ["StartSession", "TerminateSession"]
    assert kms_data_channel.contexts == [], "a data key was requested for a session that cannot use it"


def test_native_pass_thru_failure_terminates_session(run_ssmex, ssm_endpoint, data_channel, emulator, tmp_path):
    socket_path = tmp_path / "missing-folder" / "forward.sock"
    completed = start(
        run_ssmex, ssm_endpoint.endpoint_url, "--client", "native", "--pass-thru",
        "--document-name", "AWS-StartPortForwardingSession",
        "--parameters", json.dumps({"portNumber": ["22"], "localUnixSocket": [str(socket_path)]}),
    )

    assert completed.returncode == 9
    session_id = next(iter(emulator.sessions))
    assert "Cannot perform start session" in completed.stderr
    assert f"so session {session_id} was terminated" in completed.stderr
    assert operations(emulator) == ["StartSession", "TerminateSession"]
    assert json.loads(run_ssmex("sessions", "list", "--json").stdout) == []


def read_exactly(stream, size: int, timeout: float = 30) -> bytes:
    """Read size bytes from a child's binary stream on a thread, so the wait has a deadline."""
    import threading

    received = bytearray()

    def read() -> None:
        while len(received) < size:
            chunk = stream.read1(size - len(received)) if hasattr(stream, "read1") else stream.read(size - len(received))
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return bytes(received)


SSH_PROXY_NATIVE = ["ssh-proxy", INSTANCE_ID, "22", "--client", "native", "--region", REGION]


def ssh_proxy_process(ssmex_command, endpoint):
    return subprocess.Popen(
        ssmex_command + SSH_PROXY_NATIVE + ["--endpoint-url", endpoint],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_ssh_proxy_native_round_trip(ssmex_command, ssm_endpoint, data_channel, emulator):
    echo = EchoServer()
    emulator.instances[INSTANCE_ID].port_map[22] = ("127.0.0.1", echo.port)
    payload = b"SSH-2.0-test\r\n" + bytes(range(256)) * 16
    process = ssh_proxy_process(ssmex_command, ssm_endpoint.endpoint_url)
    try:
        process.stdin.write(payload)
        process.stdin.flush()
        received = read_exactly(process.stdout, len(payload))
        process.stdin.close()
        process.wait(timeout=30)
        stderr = process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        echo.close()

    assert received == payload
    assert process.returncode == 0, stderr
    assert emulator.calls[0].body["DocumentName"] == "AWS-StartSSHSession"


def ssh_proxy_native(run_ssmex, endpoint, **kwargs):
    return run_ssmex(*SSH_PROXY_NATIVE, "--endpoint-url", endpoint, **kwargs)


def test_ssh_proxy_reply_after_stdin_ends(run_ssmex, ssm_endpoint, data_channel, emulator):
    echo = EchoServer()
    emulator.instances[INSTANCE_ID].port_map[22] = ("127.0.0.1", echo.port)
    try:
        # Standard input ends right after the line, before the echo can come back.
        results = [ssh_proxy_native(run_ssmex, ssm_endpoint.endpoint_url, input=f"hello-{run}\n") for run in range(5)]
    finally:
        echo.close()

    assert [completed.stdout for completed in results] == [f"hello-{run}\n" for run in range(5)]
    assert [completed.returncode for completed in results] == [0] * 5
    assert [session.status for session in emulator.sessions.values()] == ["Terminated"] * 5


def test_ssh_proxy_sighup_ends_quietly(ssmex_command, ssm_endpoint, data_channel, emulator):
    echo = EchoServer()
    emulator.instances[INSTANCE_ID].port_map[22] = ("127.0.0.1", echo.port)
    process = ssh_proxy_process(ssmex_command, ssm_endpoint.endpoint_url)
    try:
        process.stdin.write(b"ping\n")
        process.stdin.flush()
        assert read_exactly(process.stdout, 5) == b"ping\n"
        # ssh sends its ProxyCommand SIGHUP when it exits.
        process.send_signal(signal.SIGHUP)
        process.wait(timeout=30)
        stderr = process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        echo.close()

    assert process.returncode == 0, stderr
    assert "error" not in stderr
    assert [session.status for session in emulator.sessions.values()] == ["Terminated"]


def test_port_forward_native_pass_thru(run_ssmex, ssm_endpoint, data_channel, emulator):
    echo = EchoServer()
    emulator.instances[INSTANCE_ID].port_map[5432] = ("127.0.0.1", echo.port)
    try:
        completed = run_ssmex(
            "port-forward", INSTANCE_ID, "--remote-port", "5432", "--client", "native", "--pass-thru",
            "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url,
        )
        assert completed.returncode == 0, completed.stderr
        record = json.loads(completed.stdout)
        try:
            assert record["Client"] == "native"
            assert f"localhost:{record['LocalPort']} -> {INSTANCE_ID}:5432" in completed.stderr
            with socket.create_connection(("127.0.0.1", record["LocalPort"]), timeout=10) as connection:
                connection.sendall(b"select 1")
                assert read_exactly(connection.makefile("rb"), 8) == b"select 1"
            stopped = run_ssmex("sessions", "stop", record["SessionId"])
        finally:
            if process_alive(record["ProcessId"]):
                os.kill(record["ProcessId"], 9)
    finally:
        echo.close()

    assert stopped.returncode == 0, stopped.stderr
    assert operations(emulator) == ["StartSession", "TerminateSession"]


def test_port_forward_native_foreground(ssmex_command, ssm_endpoint, data_channel, emulator):
    echo = EchoServer()
    emulator.instances[INSTANCE_ID].port_map[5432] = ("127.0.0.1", echo.port)
    process = subprocess.Popen(
        ssmex_command + ["port-forward", INSTANCE_ID, "--remote-port", "5432", "--client", "native",
                         "--region", REGION, "--endpoint-url", ssm_endpoint.endpoint_url],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        announced = read_line_containing(process.stderr, " -> ")
        port = int(announced.split()[0].split(":")[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(b"ping")
            assert read_exactly(connection.makefile("rb"), 4) == b"ping"
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        echo.close()

    assert announced.startswith(f"localhost:{port} -> {INSTANCE_ID}:5432")
    assert process.returncode == 0

