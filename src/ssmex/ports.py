"""Local TCP port checks done before a session is started."""

from __future__ import annotations

import os
import socket

from ssmex.errors import ExitCode, SsmexError


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Return whether a listener could bind host:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name == "nt":
            probe.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", socket.SO_REUSEADDR), 1)
        else:
            # Without SO_REUSEADDR a port in TIME_WAIT would look taken on POSIX.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(port: int, origin: str) -> None:
    """Raise SsmexError when a fixed local port is taken; port 0 always passes."""
    if port and not port_is_free(port):
        raise SsmexError(
            f"The local port {port} (from {origin}) is already in use; choose another one or use 0 to pick a free port.",
            ExitCode.USAGE,
        )


def first_free_port(start: int, attempts: int = 200) -> int:
    """Return the first free port from start upwards."""
    for port in range(start, min(start + attempts, 65536)):
        if port_is_free(port):
            return port
    raise SsmexError(
        f"No free local port was found between {start} and {start + attempts - 1}; pass a port explicitly.",
        ExitCode.USAGE,
    )
