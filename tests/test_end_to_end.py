"""End-to-end checks of the ssmex command as a user runs it, against the emulator's SSM
endpoint and the stand-in plugin.

They run `python -m ssmex` by default and the executable when one is named:

    python -m pytest tests/test_end_to_end.py --ssmex-exe dist/ssmex

Every test here must pass against a frozen build too, so each one goes through the
run_ssmex fixture (a real child process) and checks only what the user sees: exit
status, output, the plugin's argv and environment, and the calls the emulator received.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import botocore
import pytest

import ssmex
from conftest import INSTANCE_ID
from ssmex.process import end_process, process_alive

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "build"))

import ssmex_bundle  # noqa: E402

pytestmark = pytest.mark.end_to_end

REGION = "us-east-1"

# NOTE: the stand-in plugin is a Python script started through its #! line, which
# Windows cannot run, so the cases that start a plugin are skipped there.
needs_standin = pytest.mark.skipif(os.name == "nt", reason="the stand-in plugin needs a POSIX #! line")


def executable_under_test(request: pytest.FixtureRequest) -> Path | None:
    named = request.config.getoption("--ssmex-exe")
    return Path(named).resolve() if named else None


def start_args(endpoint_url: str, *extra: str) -> list[str]:
    return ["start-session", "--target", INSTANCE_ID, "--region", REGION, "--endpoint-url", endpoint_url, *extra]


def wait_until_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# --- the command itself ---------------------------------------------------------------


def test_version_names_build(run_ssmex, request):
    completed = run_ssmex("--version")

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"ssmex {ssmex.__version__} ")
    assert f"botocore {botocore.__version__}" in completed.stdout
    expected = "frozen executable" if executable_under_test(request) else "Python package"
    assert expected in completed.stdout


# --- start-session with the plugin ---------------------------------------------------------


@needs_standin
def test_start_session_reaches_plugin(run_ssmex, ssm_endpoint, standin, emulator, monkeypatch):
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)

    completed = run_ssmex(*start_args(ssm_endpoint.endpoint_url))

    assert completed.returncode == 0, completed.stderr
    run = standin.only_run()
    session_id = run["response"]["SessionId"]
    assert run["argv"][1:3] == [REGION, "StartSession"]
    assert json.loads(run["env"]["AWS_SSM_START_SESSION_RESPONSE"])["SessionId"] == session_id
    assert f"Starting session with SessionId: {session_id}" in completed.stdout
    assert [call.operation for call in emulator.calls] == ["StartSession"]
    # The executable's bootloader puts its own library folder in LD_LIBRARY_PATH on Linux.
    assert "LD_LIBRARY_PATH" not in run["env"]
    assert "LD_LIBRARY_PATH_ORIG" not in run["env"]


@needs_standin
def test_plugin_gets_user_library_path(run_ssmex, ssm_endpoint, standin):
    completed = run_ssmex(*start_args(ssm_endpoint.endpoint_url), env={"LD_LIBRARY_PATH": "/opt/ssmex-e2e/lib"})

    assert completed.returncode == 0, completed.stderr
    assert standin.only_run()["env"]["LD_LIBRARY_PATH"] == "/opt/ssmex-e2e/lib"


@needs_standin
def test_pass_thru_list_and_stop(run_ssmex, ssm_endpoint, standin, emulator):
    started = run_ssmex(
        *start_args(ssm_endpoint.endpoint_url, "--document-name", "AWS-StartPortForwardingSession",
                    "--parameters", "portNumber=22,localPortNumber=0", "--pass-thru"),
        env={"STANDIN_MODE": "port"},
    )
    assert started.returncode == 0, started.stderr
    record = json.loads(started.stdout)
    session_id = record["SessionId"]
    plugin_pid = record["ProcessId"]
    try:
        with socket.create_connection(("127.0.0.1", record["LocalPort"]), timeout=10) as connection:
            connection.sendall(b"ping")
            assert connection.recv(4) == b"ping"

        listed = run_ssmex("sessions", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        assert [row["SessionId"] for row in rows] == [session_id]
        assert rows[0]["Alive"] is True

        table = run_ssmex("sessions")
        assert table.returncode == 0, table.stderr
        assert session_id in table.stdout
        assert "alive" in table.stdout

        stopped = run_ssmex("sessions", "stop", session_id)
        assert stopped.returncode == 0, stopped.stderr
        assert f"Stopped session {session_id}." in stopped.stderr
        assert wait_until_gone(plugin_pid), f"the plugin (pid {plugin_pid}) still runs after sessions stop"
        assert emulator.sessions[session_id].status == "Terminated"

        after = run_ssmex("sessions", "list", "--json")
        assert json.loads(after.stdout) == []
    finally:
        if process_alive(plugin_pid):
            end_process(plugin_pid)


# --- AWS service models the build carries ----------------------------------------------


def carried_botocore_data(executable: Path | None) -> set[str]:
    """Return the paths under botocore/data that the ssmex under test can load."""
    if executable is None:
        data = Path(botocore.__file__).parent / "data"
        return {path.relative_to(data).as_posix() for path in data.rglob("*") if path.is_file()}

    onedir_data = executable.parent / "_internal" / "botocore" / "data"
    if onedir_data.is_dir():
        return {path.relative_to(onedir_data).as_posix() for path in onedir_data.rglob("*") if path.is_file()}

    readers = pytest.importorskip("PyInstaller.archive.readers", reason="reading a onefile build needs PyInstaller")
    prefix = "botocore/data/"
    names = readers.CArchiveReader(str(executable)).toc
    return {name.replace("\\", "/")[len(prefix):] for name in names if name.replace("\\", "/").startswith(prefix)}


def test_build_carries_every_called_model(request):
    """A command that needs a model the build dropped would fail for users with "does not
    include the AWS service model" (tests/test_bundle.py checks that message), so check
    the build under test carries every model that ssmex and botocore's providers call."""
    executable = executable_under_test(request)
    carried = carried_botocore_data(executable)
    called = ssmex_bundle.services_ssmex_calls(ROOT / "src" / "ssmex")
    called.update(ssmex_bundle.services_botocore_providers_call(Path(botocore.__file__).parent))

    for name in ("endpoints.json", "partitions.json", "sdk-default-configuration.json", "_retry.json"):
        assert name in carried, f"{name} is missing from the build"
    for service in called:
        models = [path for path in carried if path.startswith(f"{service}/") and "/service-2.json" in path]
        assert models, f"the {service} model is missing from the build, but {called[service]} creates {service} clients"
    if executable is not None:
        assert not any(path.startswith("s3/") for path in carried), "the build was not trimmed"


# --- cases added by other features -------------------------------------------------------
# Each new command or client (the data channel, the native client, RDP, port forwarding)
# adds its end-to-end cases below this line. Use run_ssmex, ssm_endpoint and standin,
# mark plugin cases @needs_standin, and keep every case runnable with --ssmex-exe.


# --- the native client and ssmex demo ------------------------------------------------------


def read_lines_until(stream, pattern: str, timeout: float = 30) -> list[str]:
    """Read lines from a child's output until one contains pattern; fail at the deadline or at EOF.

    A thread does the reading, because a blocking readline has no deadline of its own.
    """
    import queue
    import threading

    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in iter(stream.readline, "")] and None, daemon=True).start()
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if pattern in line:
            return seen
    raise AssertionError(f"{pattern!r} was not printed within {timeout} s; got {seen!r}")


def test_native_forward_through_emulator_command(run_ssmex, ssmex_command, monkeypatch):
    import signal
    import subprocess

    from ssmex.emulator.harness import EchoServer

    echo = EchoServer()
    emulator = subprocess.Popen(
        ssmex_command + ["emulator", "--forward", f"{INSTANCE_ID}:22=127.0.0.1:{echo.port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    supervisor_pid = None
    try:
        lines = read_lines_until(emulator.stdout, "Press Ctrl+C")
        assert f"port 22 -> 127.0.0.1:{echo.port}" in "".join(lines)
        exports = dict(re.findall(r"export (\w+)=(\S+)", "".join(lines)))
        monkeypatch.delenv("AWS_SESSION_TOKEN")

        started = run_ssmex(
            "start-session", "--target", INSTANCE_ID, "--client", "native", "--pass-thru",
            "--document-name", "AWS-StartPortForwardingSession", "--parameters", "portNumber=22,localPortNumber=0",
            env=exports,
        )
        assert started.returncode == 0, started.stderr
        record = json.loads(started.stdout)
        supervisor_pid = record["ProcessId"]
        assert record["Client"] == "native"
        payload = bytes(range(256)) * 64
        with socket.create_connection(("127.0.0.1", record["LocalPort"]), timeout=10) as connection:
            connection.sendall(payload)
            received = b""
            while len(received) < len(payload):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk
        assert received == payload

        stopped = run_ssmex("sessions", "stop", record["SessionId"], env=exports)
        assert stopped.returncode == 0, stopped.stderr
        assert wait_until_gone(supervisor_pid), f"the supervisor (pid {supervisor_pid}) still runs after sessions stop"
        assert json.loads(run_ssmex("sessions", "list", "--json").stdout) == []

        emulator.send_signal(signal.SIGINT)
        emulator.wait(timeout=30)
        # The reader thread owns stdout; the session log is on stderr.
        emulator_log = emulator.stderr.read()
        assert f"session {record['SessionId']} terminated" in emulator_log
    finally:
        if supervisor_pid is not None and process_alive(supervisor_pid):
            end_process(supervisor_pid)
        if emulator.poll() is None:
            emulator.kill()
            emulator.wait(timeout=10)
        echo.close()


def test_demo_round_trips_without_aws_config(run_ssmex, aws_environment, tmp_path):
    marker = tmp_path / "user-config-was-read"
    trap = f"[profile trap]\ncredential_process = {sys.executable} -c \"open(r'{marker}', 'w')\"\nregion = eu-west-3\n"
    (aws_environment / ".aws" / "config").write_text(trap)

    completed = run_ssmex("demo", env={"AWS_PROFILE": "trap"})

    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    output = completed.stdout
    assert re.search(r"session\s+emulator-\w+ \(StartSession at http://127\.0\.0\.1:\d+\)", output)
    assert re.search(rf"forwarding\s+localhost:\d+ -> {INSTANCE_ID}:7 ", output)
    match = re.search(r"sent\s+(\d+) bytes, received (\d+) bytes: the same bytes", output)
    assert match and match.group(1) == match.group(2)
    assert re.search(r"round trip\s+\d+\.\d ms", output)
    assert "TerminateSession called; the native client ended" in output
    assert not marker.exists()


def test_native_pass_thru_lost_session_terminated(run_ssmex, ssm_endpoint, emulator):
    # The supervisor of a frozen build must still create SSM clients after its parent exits.
    from ssmex.datachannel.client import RESUME_ATTEMPTS
    from ssmex.emulator.datachannel import start_data_channel_server
    from ssmex.emulator.harness import EchoServer

    data_channel = start_data_channel_server(emulator)
    echo = EchoServer()
    emulator.instances[INSTANCE_ID].port_map[22] = ("127.0.0.1", echo.port)
    try:
        completed = run_ssmex(
            *start_args(ssm_endpoint.endpoint_url, "--client", "native", "--pass-thru", "--document-name",
                        "AWS-StartPortForwardingSession", "--parameters", "portNumber=22,localPortNumber=0"),
        )
        assert completed.returncode == 0, completed.stderr
        record = json.loads(completed.stdout)
        try:
            # The next websocket drops after one message and every ResumeSession fails, so the
            # client in the supervisor gives up on its own.
            for _ in range(RESUME_ATTEMPTS):
                emulator.fail_next("ResumeSession", "AccessDeniedException", "not allowed to resume")
            data_channel.faults.drop_websocket_after = 1
            with socket.create_connection(("127.0.0.1", record["LocalPort"]), timeout=10) as connection:
                connection.sendall(b"lost")
                assert wait_until_gone(record["ProcessId"], timeout=60), "the supervisor still runs after its client failed"
        finally:
            if process_alive(record["ProcessId"]):
                end_process(record["ProcessId"])
    finally:
        echo.close()
        data_channel.close()

    operations = [call.operation for call in emulator.calls]
    assert operations.count("ResumeSession") == RESUME_ATTEMPTS
    assert operations[-1] == "TerminateSession"
    listed = json.loads(run_ssmex("sessions", "list", "--json").stdout)
    assert [row["SessionId"] for row in listed] == [record["SessionId"]]
    assert "could not resume" in listed[0]["NativeError"]
    assert listed[0]["Terminated"] is True
    assert listed[0]["Alive"] is False


def start_with_slow_response(ssmex_command, endpoint, emulator, delay):
    """Start ssmex start-session with a late StartSession response; return once the emulator has the session."""
    emulator.delay_next("StartSession", delay)
    # A terminal sends Ctrl+C to the whole foreground process group: with the single-file
    # executable, both its bootloader and ssmex get it, and the bootloader passes it on.
    process = subprocess.Popen(
        ssmex_command + start_args(endpoint),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not emulator.sessions and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.sessions, "StartSession never reached the emulator"
    return process


@needs_standin
def test_ctrl_c_during_start_session_ends_session(ssmex_command, ssm_endpoint, standin, emulator):
    process = start_with_slow_response(ssmex_command, ssm_endpoint.endpoint_url, emulator, delay=1.5)
    try:
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    assert process.returncode == 130, stderr.decode()
    assert b"press Ctrl+C again to stop now" in stderr
    assert b"Traceback" not in stderr
    [session_id] = emulator.sessions
    assert [call.body["SessionId"] for call in emulator.calls_of("TerminateSession")] == [session_id]
    assert standin.runs() == []


@needs_standin
def test_second_ctrl_c_stops_at_once(ssmex_command, ssm_endpoint, standin, emulator):
    process = start_with_slow_response(ssmex_command, ssm_endpoint.endpoint_url, emulator, delay=20)
    try:
        os.killpg(process.pid, signal.SIGINT)
        # Well apart from the first, so that even a busy machine cannot make it the same press.
        time.sleep(1.5)
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    assert process.returncode == 130, stderr.decode()
    assert b"Traceback" not in stderr
    assert standin.runs() == []
