"""A guard that rejects every connection to an address other than loopback.

The test suite installs it in its own process (conftest.py) and, through
sitecustomize.py on PYTHONPATH, in every Python child process it starts. A rejected
attempt raises OSError and is appended to the file named by SSMEX_TEST_GUARD_LOG, so
the suite fails even when the code under test swallows the error.
"""

from __future__ import annotations

import ipaddress
import os
import socket

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_installed = False


def is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _reject(what: str) -> None:
    message = f"network guard: blocked {what}; tests may reach loopback addresses only"
    log_path = os.environ.get("SSMEX_TEST_GUARD_LOG")
    if log_path:
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(f"pid {os.getpid()}: {message}\n")
    raise OSError(message)


def _check_address(sock: socket.socket, address: object) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        if not is_loopback(address[0]):
            _reject(f"a connection to {address[0]}:{address[1]}")


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_sendto = socket.socket.sendto
    original_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        _check_address(self, address)
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        _check_address(self, address)
        return original_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: object) -> int:
        _check_address(self, args[-1])
        return original_sendto(self, data, *args)

    def getaddrinfo(host: object, *args: object, **kwargs: object):
        if host is not None and not is_loopback(host):
            _reject(f"a name lookup of {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
