"""Helpers for the tests of port-forward, rdp, ec2-rdp, ssh-proxy and doctor: key pairs,
an emulated Windows instance, the stand-in RDP client and waits with deadlines."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ssmex.emulator.api import EmulatedInstance

TESTS = Path(__file__).resolve().parent
REGION = "us-east-1"
WINDOWS_ID = "i-0a1b2c3d4e5f60718"
WINDOWS_NAME = "win-1"
WINDOWS_PASSWORD = "Adm1n-Pa55word;(with)&'quotes\""
PASSPHRASE = "correct horse battery"

_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key=_RSA_KEY) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def write_key(path: Path, form: str, passphrase: str | None = None, key=_RSA_KEY) -> Path:
    """Write the private key in form pkcs1, pkcs8 or openssh, encrypted when a passphrase is given."""
    formats = {
        "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "openssh": serialization.PrivateFormat.OpenSSH,
    }
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")) if passphrase else serialization.NoEncryption()
    )
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, formats[form], encryption))
    return path


def write_ed25519_key(path: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    return path


def windows_instance(**overrides) -> EmulatedInstance:
    values = dict(
        name=WINDOWS_NAME,
        platform="Windows",
        key_name="windows-key",
        key_public_pem=public_pem(),
        password=WINDOWS_PASSWORD,
        public_ip="127.0.0.1",
    )
    values.update(overrides)
    return EmulatedInstance(WINDOWS_ID, **values)


@dataclass
class StandinRdpClient:
    path: Path
    record_path: Path

    def record(self) -> dict:
        with open(self.record_path, encoding="utf-8") as handle:
            return json.load(handle)

    def ran(self) -> bool:
        return self.record_path.exists()


def install_rdp_client(folder: Path) -> StandinRdpClient:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "standin-rdp-client"
    path.write_text(f"#!{sys.executable}\n" + (TESTS / "standin_rdp_client.py").read_text())
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return StandinRdpClient(path=path, record_path=folder / "rdp-client-run.json")


def wait_for(condition, timeout: float = 30, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} seconds waiting for {what}")
        time.sleep(0.05)


class EchoServer:
    """A loopback TCP echo server, standing in for a public instance's RDP port."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(connection,), daemon=True).start()

    @staticmethod
    def _echo(connection: socket.socket) -> None:
        with connection:
            while True:
                try:
                    data = connection.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                connection.sendall(data)

    def close(self) -> None:
        self.listener.close()


def read_until(stream, marker: bytes, timeout: float = 30) -> bytes:
    """Read a pipe or pty until marker appears, with a deadline."""
    import selectors

    output = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while marker not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {marker!r}; read so far: {output!r}")
            if selector.select(remaining):
                try:
                    chunk = os.read(stream if isinstance(stream, int) else stream.fileno(), 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the stream ended before {marker!r}; read: {output!r}")
                output += chunk
    return output


def stop_leftovers(process, standin) -> None:
    """After a failed test: interrupt ssmex, then kill it and any plugin it left running."""
    import signal

    from ssmex.process import process_alive

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except Exception:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for run in standin.runs():
        if process_alive(run["pid"]):
            os.kill(run["pid"], signal.SIGKILL)
