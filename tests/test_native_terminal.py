"""The native client as a separate process: Ctrl+C in port sessions, a shell on a pseudo-terminal."""

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading

import pytest

from ssmex.emulator.api import Emulator, EmulatedInstance
from ssmex.emulator.datachannel import DataChannelServer
from ssmex.emulator.harness import EchoServer, start_session

TARGET = "i-0123456789abcdef0"
TIMEOUT = 30

CLIENT_SCRIPT = """
import json, os, sys
from ssmex.datachannel.client import run_session
response = json.loads(os.environ["SSMEX_TEST_RESPONSE"])
sys.exit(run_session(response, lambda: None))
"""


@pytest.fixture
def emulator():
    echo = EchoServer()
    instance = EmulatedInstance(TARGET, name="web-1", port_map={80: ("127.0.0.1", echo.port)})
    emulator = Emulator([instance])
    server = DataChannelServer(emulator).start()
    emulator.test_server = server
    yield emulator
    server.close()
    echo.close()


def client_environment(response):
    environment = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    environment["SSMEX_TEST_RESPONSE"] = json.dumps(response)
    return environment


def read_until(fd, marker, timeout=TIMEOUT):
    """Read from fd until `marker` appears; return everything read."""
    data = b""
    end = threading.Event()
    timer = threading.Timer(timeout, end.set)
    timer.start()
    try:
        while marker not in data and not end.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
    finally:
        timer.cancel()
    return data


def wait_until(condition, timeout=TIMEOUT):
    event = threading.Event()
    for _ in range(int(timeout * 20)):
        if condition():
            return True
        event.wait(0.05)
    return condition()


def test_ctrl_c_terminates_port_session(emulator):
    response = start_session(emulator, TARGET, "AWS-StartPortForwardingSession", {"portNumber": ["80"]})
    process = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT], env=client_environment(response),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        opened = read_until(process.stdout.fileno(), b"Waiting for connections...")
        assert f"opened for sessionId {response['SessionId']}.".encode() in opened

        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)

    assert process.returncode == 0, stderr.decode()
    assert b"Terminate signal received, exiting." in stdout
    assert f"Exiting session with sessionId: {response['SessionId']}.".encode() in stdout
    assert wait_until(lambda: emulator.sessions[response["SessionId"]].status == "Terminated")


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_shell_on_terminal_raw_mode_and_restore(emulator):
    response = start_session(emulator, TARGET)
    controller, terminal = pty.openpty()
    set_size(terminal, 40, 132)
    before = termios.tcgetattr(terminal)
    process = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT], env=client_environment(response),
                               stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True)
    try:
        read_until(controller, b"$ ")
        channel = emulator.test_server.channel_for(response["SessionId"])
        assert wait_until(lambda: channel.sizes[:1] == [(132, 40)])
        # The client enters raw mode before it sends the first Size.
        during = termios.tcgetattr(terminal)

        set_size(terminal, 50, 100)
        os.killpg(process.pid, signal.SIGWINCH)
        assert wait_until(lambda: (100, 50) in channel.sizes)

        # Ctrl+C reaches the remote as a byte, so the client keeps running.
        os.write(controller, b"echo abandoned\x03")
        assert b"^C" in read_until(controller, b"^C")
        os.write(controller, "echo héllo\rexit 4\r".encode())
        output = read_until(controller, b"Exiting session")
        assert process.wait(TIMEOUT) == 4
        after = termios.tcgetattr(terminal)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
        os.close(controller)
        os.close(terminal)

    assert during[3] & termios.ECHO == 0
    assert during[3] & termios.ICANON == 0
    assert during[3] & termios.ISIG == 0
    assert after == before
    assert "héllo\r\n".encode() in output
