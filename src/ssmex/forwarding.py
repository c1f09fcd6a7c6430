"""Port forwarding sessions: the local port checked first, then ready only when it accepts.

The plugin prints `Port N opened` when it has bound the port, but it can also hang before
that forever, so every wait here has a deadline, and readiness means that a TCP
connection to the local port was accepted.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from typing import Callable

from ssmex import handoff, native, records, session
from ssmex.aws import AwsContext
from ssmex.errors import ExitCode, SsmexError
from ssmex.interrupts import interrupts_held
from ssmex.ports import require_free_port
from ssmex.process import command_line, console_keys_to_child, exit_status_text, termination_forwarded_to

log = logging.getLogger("ssmex.forwarding")

LOCAL_DOCUMENT = "AWS-StartPortForwardingSession"
REMOTE_HOST_DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost"
CONNECT_ATTEMPT_SECONDS = 1.0


def forwarding_request(
    target: str,
    remote_port: int,
    local_port: int,
    remote_host: str | None = None,
    reason: str | None = None,
) -> session.SessionRequest:
    """Build the StartSession request for forwarding local_port to remote_port on the target or remote_host."""
    if not 1 <= remote_port <= 65535:
        raise SsmexError(f"The remote port {remote_port} is out of range; use 1 to 65535.", ExitCode.USAGE)
    parameters = {"portNumber": [str(remote_port)], "localPortNumber": [str(local_port)]}
    if remote_host:
        return session.SessionRequest(
            target=target, document_name=REMOTE_HOST_DOCUMENT, parameters={"host": [remote_host], **parameters}, reason=reason
        )
    return session.SessionRequest(target=target, document_name=LOCAL_DOCUMENT, parameters=parameters, reason=reason)


def pick_local_port(requested: int | None, origin: str = "--local-port") -> int:
    """Return the requested local port if it is free, or a free one the kernel picks for 0 or None."""
    if requested:
        if not 1 <= requested <= 65535:
            raise SsmexError(f"The local port {requested} (from {origin}) is out of range; use 1 to 65535, or 0 for any free port.", ExitCode.USAGE)
        require_free_port(requested, origin)
        return requested
    # Picking the number here, rather than passing 0 to the plugin, gives ssmex the port to
    # watch. Another program could take it before the plugin binds it, and then the plugin
    # fails and the readiness deadline reports it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepts_connections(port: int) -> bool:
    """Return whether something accepts TCP connections on localhost:port (IPv4 or IPv6).

    The official plugin forwards every accepted connection, so each probe also opens and
    closes one connection to the remote port.
    """
    for host in ("127.0.0.1", "::1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(CONNECT_ATTEMPT_SECONDS)
                probe.connect((host, port))
                return True
        except OSError:
            continue
    return False


def wait_for_port(
    port: int,
    timeout: float,
    process: subprocess.Popen | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until localhost:port accepts a connection.

    Raises SsmexError (without a final period, so callers can extend it) when the process
    exits first or the deadline passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        if accepts_connections(port):
            log.debug("local port %d accepts connections", port)
            return
        if process is not None and process.poll() is not None:
            raise SsmexError(
                f"session-manager-plugin {exit_status_text(process.returncode)} before local port {port} accepted connections",
                ExitCode.PLUGIN_FAILED,
            )
        if time.monotonic() >= deadline:
            raise SsmexError(f"local port {port} did not accept connections within {timeout:g} seconds", ExitCode.PLUGIN_FAILED)
        sleep(0.1)


def forward_in_background(
    aws: AwsContext,
    request: session.SessionRequest,
    plugin_path: str | None = None,
    ready_timeout: float = session.DEFAULT_READY_TIMEOUT,
    credentials: str | None = None,
    client: str = native.PLUGIN,
) -> records.SessionRecord:
    """Start a port forward in the background and return once the local port accepts connections.

    client is "plugin" (a detached plugin) or "native" (the native client in a supervisor).
    """
    started_at = time.monotonic()
    record = session.start_in_background(
        aws, request, plugin_path=plugin_path, ready_timeout=ready_timeout, credentials=credentials, client=client
    )
    remaining = max(1.0, ready_timeout - (time.monotonic() - started_at))
    try:
        if record.LocalPort is None:
            raise SsmexError("session-manager-plugin did not print which local port it opened", ExitCode.PLUGIN_FAILED)
        wait_for_port(record.LocalPort, remaining)
    except BaseException as error:
        with interrupts_held():
            ended = session.stop_background(record, aws)
        if isinstance(error, SsmexError):
            state = "was terminated" if ended else "could not be terminated; end it in the console"
            raise SsmexError(f"{error.message}, so session {record.SessionId} {state}; run again with --debug.", error.exit_code) from None
        raise
    return record


def forward_in_foreground(
    aws: AwsContext,
    request: session.SessionRequest,
    local_port: int,
    on_ready: Callable[[int], None],
    plugin_path: str | None = None,
    ready_timeout: float = session.DEFAULT_READY_TIMEOUT,
    credentials: str | None = None,
    client: str = native.PLUGIN,
) -> int:
    """Run a port forward with the plugin attached to the console until it exits.

    on_ready(local_port) is called once the port accepts connections. Ctrl+C reaches the
    plugin only, which ends the session itself. credentials is the --credentials mode or
    None. With client "native" the native client runs the forward in this process instead.
    Returns ssmex's exit code.
    """
    if client == native.NATIVE:
        # The native client reports the port once it is bound, so no probing is needed.
        return session.run_with_native(
            aws, request, on_listening=lambda address: on_ready(address if isinstance(address, int) else local_port)
        )
    request.validate()
    choice = session.choose_credentials(aws, credentials, background=False)
    plugin = session.prepare_plugin(plugin_path)
    started = session.start(aws, request)
    process = None
    received: list[int] = []
    try:
        launch = session.plugin_launch(plugin, started)
        started_processes: list = []
        with handoff.credentials_for_plugin(launch, choice), console_keys_to_child(), termination_forwarded_to(started_processes, received):
            session.log_launch(plugin, launch)
            process = subprocess.Popen(command_line(launch.argv), env=dict(launch.environment))
            started_processes.append(process)
            log.debug("started session-manager-plugin %s (pid %d) for session %s", plugin.version_label, process.pid, started.session_id)
            wait_for_port(local_port, ready_timeout, process)
            on_ready(local_port)
            status = process.wait()
    except OSError as error:
        if process is None:
            raise session._failed_launch(started, plugin, error) from None
        raise
    except BaseException as error:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        ended = started.terminate("the port forward did not become ready")
        if isinstance(error, SsmexError):
            state = "was terminated" if ended else "could not be terminated; end it in the console"
            raise SsmexError(f"{error.message}, so session {started.session_id} {state}; run again with --debug.", error.exit_code) from None
        raise
    if received:
        raise session.stopped_by_signal(started, received[0], status)
    if status == 0:
        return ExitCode.OK
    started.terminate(f"session-manager-plugin {exit_status_text(status)}")
    raise SsmexError(
        f"session-manager-plugin {exit_status_text(status)}, so session {started.session_id} was ended; run again with --debug to see more.",
        ExitCode.PLUGIN_FAILED,
    )

