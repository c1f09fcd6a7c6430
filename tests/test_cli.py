"""Command-line behaviour common to every command: version, colour, usage errors."""

from __future__ import annotations

import os
import pty
import re
import subprocess

import botocore

import ssmex


def test_version_names_ssmex_botocore_and_build(run_ssmex):
    completed = run_ssmex("--version")

    assert completed.returncode == 0
    assert f"ssmex {ssmex.__version__}" in completed.stdout
    assert f"botocore {botocore.__version__}" in completed.stdout
    assert "Python package" in completed.stdout or "frozen executable" in completed.stdout


def run_with_terminal_stderr(ssmex_command, env):
    """Run a failing command with stderr on a pseudo-terminal and return what it wrote."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            ssmex_command + ["start-session", "--target", "i-0123456789abcdef0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal, env=env,
        )
        os.close(terminal)
        process.wait(timeout=60)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller)
    return process.returncode, output.decode()


def test_errors_are_red_on_a_terminal(ssmex_command):
    env = {name: value for name, value in os.environ.items() if name != "NO_COLOR"}

    code, output = run_with_terminal_stderr(ssmex_command, env)

    assert code == 3
    assert "\033[31merror: No AWS region is set" in output


def test_no_color_turns_colour_off(ssmex_command):
    env = dict(os.environ, NO_COLOR="1")

    code, output = run_with_terminal_stderr(ssmex_command, env)

    assert code == 3
    assert "error: No AWS region is set" in output
    assert "\033[" not in output


def test_missing_target_is_a_usage_error(run_ssmex):
    completed = run_ssmex("start-session")

    assert completed.returncode == 2
    assert "--target" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_debug_log_hides_sigv4_signature(run_ssmex, ssm_endpoint, standin):
    completed = run_ssmex("start-session", "--target", "i-0123456789abcdef0", "--region", "us-east-1",
                          "--endpoint-url", ssm_endpoint.endpoint_url, "--debug")

    assert completed.returncode == 0, completed.stderr
    assert "Signature:" in completed.stderr
    assert not re.search(r"Signature:\s*[0-9a-f]{64}", completed.stderr)
    assert not re.search(r"Signature=[0-9a-f]{64}", completed.stderr)


def test_stop_without_ids_or_all_is_one_sentence(run_ssmex):
    completed = run_ssmex("sessions", "stop")

    assert completed.returncode == 2
    assert "Name the sessions to stop, or pass --all" in completed.stderr


def test_invalid_region_names_its_origin(run_ssmex):
    completed = run_ssmex("start-session", "--target", "i-0123456789abcdef0", "--region", "eu west 1",
                          "--endpoint-url", "http://127.0.0.1:9")

    assert completed.returncode == 3
    assert "'eu west 1' (from --region)" in completed.stderr
