"""The guard that keeps the suite on loopback must itself work."""

import socket
import subprocess
import sys

import pytest


@pytest.fixture
def private_guard_log(tmp_path, monkeypatch):
    path = tmp_path / "expected-violations.log"
    path.touch()
    monkeypatch.setenv("SSMEX_TEST_GUARD_LOG", str(path))
    return path


@pytest.mark.parametrize("address", ["169.254.169.254", "8.8.8.8", "10.0.0.1"])
def test_guard_rejects_non_loopback_connect(address, private_guard_log):
    with socket.socket() as sock, pytest.raises(OSError, match="network guard"):
        sock.connect((address, 80))
    assert address in private_guard_log.read_text()


def test_guard_rejects_name_lookup(private_guard_log):
    with pytest.raises(OSError, match="network guard"):
        socket.getaddrinfo("ssm.us-east-1.amazonaws.com", 443)


def test_guard_allows_loopback():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass


def test_guard_covers_child_processes(private_guard_log):
    code = "import socket\ntry:\n socket.create_connection(('169.254.169.254', 80), timeout=1)\nexcept OSError as e:\n print(e)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "network guard" in completed.stdout
    assert "169.254.169.254" in private_guard_log.read_text()
