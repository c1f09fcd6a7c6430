"""`ssmex emulator` as a user runs it: printed endpoint, sessions through it, Ctrl+C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest


@pytest.fixture
def emulator_process(ssmex_command, tmp_path):
    processes = []

    def start(*extra):
        process = subprocess.Popen(
            ssmex_command + ["emulator", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def read_until(stream, pattern, timeout=30):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"{pattern!r} not printed; got {lines!r}")


def test_emulator_serves_sessions_and_stops_on_ctrl_c(emulator_process, run_ssmex, standin, monkeypatch):
    process = emulator_process()
    lines = read_until(process.stdout, r"Press Ctrl\+C")
    exports = dict(re.findall(r"export (\w+)=(\S+)", "".join(lines)))
    assert exports["AWS_ENDPOINT_URL_SSM"].startswith("http://127.0.0.1:")
    for name in ("AWS_SESSION_TOKEN",):
        monkeypatch.delenv(name)

    completed = run_ssmex("start-session", "--target", "i-0123456789abcdef0", env=exports)

    assert completed.returncode == 0, completed.stderr
    assert standin.only_run()["argv"][5] == exports["AWS_ENDPOINT_URL_SSM"]
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "stopped" in stdout
    assert "Traceback" not in stderr
    assert re.search(r"session emulator-\w+ started for i-0123456789abcdef0", stderr)


def test_emulator_rejects_non_loopback_destination(run_ssmex, tmp_path):
    config = tmp_path / "emulator.json"
    config.write_text(json.dumps({"instances": [{"id": "i-0123456789abcdef0", "ports": {"22": "10.0.0.5:22"}}]}))

    completed = run_ssmex("emulator", "--config", str(config))

    assert completed.returncode == 2
    assert "10.0.0.5 is not a loopback address" in completed.stderr


def test_emulator_config_instances_listed(emulator_process, tmp_path):
    config = tmp_path / "emulator.json"
    config.write_text(json.dumps({"instances": [{"id": "mi-0123456789abcdef0", "name": "on-prem", "platform": "Windows"}]}))
    process = emulator_process("--config", str(config))

    lines = read_until(process.stdout, r"Press Ctrl\+C")

    assert any("mi-0123456789abcdef0" in line and "on-prem" in line and "Windows" in line for line in lines)


@pytest.mark.parametrize("option", ["--port", "--ec2-port"])
def test_emulator_port_in_use_is_one_sentence(run_ssmex, option):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        completed = run_ssmex("emulator", option, str(port))

    assert completed.returncode == 2
    assert f"The port {port} (from {option}) cannot be used" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_emulator_ec2_port_and_public_address_shown(emulator_process, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        ec2_port = probe.getsockname()[1]
    config = tmp_path / "emulator.json"
    config.write_text(json.dumps({"instances": [{"id": "i-0a1b2c3d4e5f60718", "platform": "Windows", "public_ip": "127.0.0.1"}]}))
    process = emulator_process("--config", str(config), "--ec2-port", str(ec2_port))

    lines = read_until(process.stdout, r"Press Ctrl\+C")

    assert f"EC2 API at http://127.0.0.1:{ec2_port}" in lines[0]
    assert any("i-0a1b2c3d4e5f60718" in line and "running public 127.0.0.1" in line for line in lines)
