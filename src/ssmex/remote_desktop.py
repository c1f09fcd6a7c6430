"""RDP to a Windows instance: through a Session Manager port forward, or straight to its public address.

Everything that can fail without a session is checked first: the instance's state, the
RDP client, the key file and the password. Only then does the port forward start, and
from that moment every exit path, Ctrl+C and SIGTERM included, stops the plugin and
calls TerminateSession.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable

from ssmex import ec2, forwarding, keys, rdp, records, session, targets
from ssmex.aws import AwsContext
from ssmex.errors import ExitCode, SsmexError
from ssmex.interrupts import TerminationSignal, interrupts_held, termination_signals_interrupt
from ssmex.ports import first_free_port, require_free_port
from ssmex.process import process_alive

log = logging.getLogger("ssmex.remote_desktop")

RDP_PORT = 3389
FIRST_LOCAL_PORT = 33389
REACHABLE_TIMEOUT_SECONDS = 5.0

# Called once the RDP address is usable, with the target, before any client starts.
ReadyCallback = Callable[[rdp.RdpTarget], None]


def require_online(aws: AwsContext, instance_id: str) -> dict:
    """Return the node's DescribeInstanceInformation entry; raise unless its agent is Online."""
    nodes = targets.instance_information(aws, [{"Key": "InstanceIds", "Values": [instance_id]}])
    if not nodes:
        raise SsmexError(
            f"{instance_id} is not a managed node in {aws.region}: its SSM Agent has never registered; check the "
            "region, the instance profile and the agent.",
            ExitCode.TARGET_NOT_CONNECTED,
        )
    status = nodes[0].get("PingStatus", "unknown")
    if status != "Online":
        raise SsmexError(
            f"{instance_id} cannot take a session because its SSM Agent's ping status is {status}; start the "
            "instance or check its agent and network, then try again.",
            ExitCode.TARGET_NOT_CONNECTED,
        )
    return nodes[0]


def administrator_password(
    aws: AwsContext,
    instance_id: str,
    key_file: str,
    prompt: keys.PassphrasePrompt | None,
    ec2_endpoint_url: str | None = None,
) -> str:
    """Load the key pair's private key, then get and decrypt the Administrator password."""
    private_key = keys.load_private_key(key_file, prompt)
    data = ec2.password_data(ec2.ec2_client(aws, ec2_endpoint_url), instance_id)
    return keys.decrypt_password(data, private_key, instance_id)


def pick_rdp_port(requested: int | None) -> int:
    if requested:
        require_free_port(requested, "--local-port")
        return requested
    return first_free_port(FIRST_LOCAL_PORT)


def _use(target: rdp.RdpTarget, client: rdp.RdpClient | None, on_ready: ReadyCallback, still_open: Callable[[], bool]) -> int:
    """Start the client and return its exit status, or without one keep the connection open until Ctrl+C."""
    if client is not None:
        on_ready(target)
        status = rdp.launch(client, target)
        if not still_open():
            raise SsmexError(
                "The port forward ended while the RDP client ran (stopped by `ssmex sessions stop`, or it failed), "
                "so the client lost its connection; run ssmex rdp again.",
                ExitCode.PLUGIN_FAILED,
            )
        if status != 0:
            log.warning("the RDP client %s exited with status %d", os.path.basename(client.path), status)
            return status if 0 < status < 256 else ExitCode.ERROR
        return ExitCode.OK
    try:
        # on_ready prints the Ctrl+C hint, so it runs inside the block that handles Ctrl+C.
        on_ready(target)
        while still_open():
            time.sleep(0.5)
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, TerminationSignal):
            raise
        # Ctrl+C is how a forward kept open for another client is meant to end.
        return ExitCode.OK
    raise SsmexError("The port forward ended on its own, so the RDP address no longer works; run ssmex rdp again.", ExitCode.PLUGIN_FAILED)


def rdp_over_session(
    aws: AwsContext,
    instance_id: str,
    key_file: str,
    on_ready: ReadyCallback,
    prompt: keys.PassphrasePrompt | None = None,
    remote_port: int = RDP_PORT,
    local_port: int | None = None,
    launch_client: bool = True,
    plugin_path: str | None = None,
    ready_timeout: float = session.DEFAULT_READY_TIMEOUT,
    ec2_endpoint_url: str | None = None,
    credentials: str | None = None,
    session_client: str = "plugin",
) -> int:
    """Forward a local port to the instance's RDP port and run the RDP client on it.

    session_client is "plugin" or "native": what runs the port forward.
    """
    node = require_online(aws, instance_id)
    platform = node.get("PlatformType")
    if platform and platform != "Windows":
        raise SsmexError(
            f"{instance_id} runs {platform}, not Windows, so it has no Administrator password to decrypt; "
            f"use `ssmex start-session --target {instance_id}` or ssh-proxy instead.",
            ExitCode.USAGE,
        )
    client = rdp.find_client() if launch_client else None
    password = administrator_password(aws, instance_id, key_file, prompt, ec2_endpoint_url)
    port = pick_rdp_port(local_port)
    request = forwarding.forwarding_request(instance_id, remote_port, port)

    with termination_signals_interrupt():
        record = forwarding.forward_in_background(
            aws, request, plugin_path=plugin_path, ready_timeout=ready_timeout, credentials=credentials, client=session_client
        )
        try:
            # `ssmex sessions stop --all` leaves a forward alone while this process uses it.
            record.extra[records.HELD_BY] = os.getpid()
            records.save(record)
            target = rdp.RdpTarget(host="localhost", port=record.LocalPort or port, password=password)
            return _use(target, client, on_ready, lambda: process_alive(record.ProcessId))
        finally:
            with interrupts_held():
                if session.stop_background(record, aws):
                    log.info("stopped the port forward of session %s", record.SessionId)
                else:
                    log.warning("the port forward of session %s was stopped, but TerminateSession failed", record.SessionId)


def connection_error(host: str, port: int, timeout: float = REACHABLE_TIMEOUT_SECONDS) -> str | None:
    """Return None when host:port accepts a TCP connection, else why it did not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.timeout:
        return f"no answer within {timeout:g} seconds"
    except OSError as error:
        log.debug("connecting to %s:%d failed: %s", host, port, error)
        return error.strerror or str(error)


def rdp_to_public_address(
    aws: AwsContext,
    instance_id: str,
    key_file: str,
    on_ready: ReadyCallback,
    prompt: keys.PassphrasePrompt | None = None,
    remote_port: int = RDP_PORT,
    launch_client: bool = True,
    ec2_endpoint_url: str | None = None,
) -> int:
    """Run the RDP client against the instance's public IP address or DNS name."""
    instance = ec2.describe_instance(ec2.ec2_client(aws, ec2_endpoint_url), instance_id)
    state = (instance.get("State") or {}).get("Name", "unknown")
    if state != "running":
        raise SsmexError(f"{instance_id} is {state}, not running; start it and try again.", ExitCode.TARGET_NOT_CONNECTED)
    host = ec2.public_address(instance)
    if not host:
        raise SsmexError(
            f"{instance_id} has no public IP address or DNS name; use `ssmex rdp {instance_id}` to connect through Session Manager.",
            ExitCode.USAGE,
        )
    client = rdp.find_client() if launch_client else None
    problem = connection_error(host, remote_port)
    if problem:
        raise SsmexError(
            f"Connecting to {host}:{remote_port} of {instance_id} failed ({problem}); check that its security group "
            f"allows RDP from your address, or use `ssmex rdp {instance_id}`.",
            ExitCode.NETWORK,
        )
    password = administrator_password(aws, instance_id, key_file, prompt, ec2_endpoint_url)
    target = rdp.RdpTarget(host=host, port=remote_port, password=password)
    if client is None:
        # Nothing runs on this machine that would need stopping, so there is nothing to wait for.
        on_ready(target)
        return ExitCode.OK
    with termination_signals_interrupt():
        return _use(target, client, on_ready, lambda: True)
