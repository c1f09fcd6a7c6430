"""Starting a Session Manager session and running it with session-manager-plugin or the native client.

The order is fixed so that no failure of ours leaves a session running. Settings,
credentials and the plugin are checked first, and StartSession comes only then. Every
failure after StartSession ends the session with TerminateSession.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ssmex import handoff, native, records, supervisor
from ssmex.aws import AwsContext, call_aws
from ssmex.errors import ExitCode, SsmexError, exit_code_for_signal
from ssmex.interrupts import interrupt_deferred, interrupts_held, termination_signals_interrupt
from ssmex.plugin import RESPONSE_VARIABLE, Plugin, PluginLaunch, build_launch, find_plugin, read_plugin
from ssmex.ports import require_free_port
from ssmex.process import describe, end_process, exit_status_text, run_foreground, spawn_detached
from ssmex.redact import register_secret

log = logging.getLogger("ssmex.session")

# Documents whose session reads the user's keyboard, so they cannot run in the background.
INTERACTIVE_DOCUMENTS = ("SSM-SessionManagerRunShell", "AWS-StartInteractiveCommand")
PORT_DOCUMENTS = ("AWS-StartPortForwardingSession", "AWS-StartPortForwardingSessionToRemoteHost")
DEFAULT_READY_TIMEOUT = 30.0

_PORT_OPENED = re.compile(r"Port (\d+) opened for sessionId")
_SESSION_STARTED = "Starting session with SessionId"


@dataclass
class SessionRequest:
    """The StartSession request: target, document, parameters and reason."""

    target: str
    document_name: str | None = None
    parameters: dict[str, list[str]] | None = None
    reason: str | None = None

    def api_request(self) -> dict[str, Any]:
        """Return the request in the API model's member order, as the AWS CLI sends it."""
        request: dict[str, Any] = {"Target": self.target}
        if self.document_name is not None:
            request["DocumentName"] = self.document_name
        if self.reason is not None:
            request["Reason"] = self.reason
        if self.parameters is not None:
            request["Parameters"] = self.parameters
        return request

    @property
    def is_port_forwarding(self) -> bool:
        return self.document_name in PORT_DOCUMENTS

    def validate(self) -> None:
        if not self.target or not self.target.strip():
            raise SsmexError("The target is empty; pass an instance id such as i-0123456789abcdef0.", ExitCode.USAGE)
        if self.document_name is not None and not re.fullmatch(r"[a-zA-Z0-9_\-.:/]{3,128}", self.document_name):
            raise SsmexError(
                f"The document name {self.document_name!r} is invalid; use 3 to 128 letters, digits and _-.:/ "
                "such as AWS-StartPortForwardingSession.",
                ExitCode.USAGE,
            )
        if self.reason is not None and not 1 <= len(self.reason) <= 256:
            raise SsmexError("The reason must be 1 to 256 characters long; give a shorter one or leave out --reason.", ExitCode.USAGE)
        if self.is_port_forwarding or self.document_name == "AWS-StartSSHSession":
            self._validate_port("portNumber", lowest=1)
            local_port = self._validate_port("localPortNumber", lowest=0)
            if local_port is not None and self.is_port_forwarding:
                require_free_port(local_port, "localPortNumber")

    def _validate_port(self, name: str, lowest: int) -> int | None:
        """Check that the port parameter name, when given, is one number from lowest to 65535."""
        values = (self.parameters or {}).get(name)
        if not values:
            return None
        if len(values) > 1:
            listed = ", ".join(repr(value) for value in values)
            raise SsmexError(
                f"{name} has {len(values)} values ({listed}) but takes one; check --parameters, where a word "
                "without =value after a comma is read as another value of the parameter before it.",
                ExitCode.USAGE,
            )
        text = values[0].strip()
        if not text.isdigit() or not lowest <= int(text) <= 65535:
            raise SsmexError(f"{name} {values[0]!r} is not a port number; use {lowest} to 65535.", ExitCode.USAGE)
        return int(text)


@dataclass
class StartedSession:
    """A session that StartSession created, and how to end it."""

    aws: AwsContext
    client: Any
    request: SessionRequest
    response: dict[str, Any]
    start_time: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))

    @property
    def session_id(self) -> str:
        return self.response["SessionId"]

    def terminate(self, why: str) -> bool:
        """Call TerminateSession; log and return False when that fails too."""
        try:
            call_aws("TerminateSession", lambda: self.client.terminate_session(SessionId=self.session_id))
        except SsmexError as error:
            log.warning("ending session %s (%s) failed too: %s", self.session_id, why, error)
            return False
        log.info("terminated session %s because %s", self.session_id, why)
        return True


def start(aws: AwsContext, request: SessionRequest) -> StartedSession:
    """Call StartSession; the caller must end the session if anything later fails."""
    client = aws.ssm_client()
    with interrupt_deferred("StartSession") as interrupted:
        response = call_aws("StartSession", lambda: client.start_session(**request.api_request()))
    register_secret(response.get("TokenValue"))
    response.pop("ResponseMetadata", None)
    log.info("started session %s for target %s", response.get("SessionId"), request.target)
    started = StartedSession(aws=aws, client=client, request=request, response=response)
    if interrupted():
        with interrupts_held():
            started.terminate("Ctrl+C was pressed while StartSession ran")
        raise KeyboardInterrupt
    return started


def prepare_plugin(explicit_path: str | None) -> Plugin:
    """Find and read the plugin, logging its known problems as warnings."""
    plugin = read_plugin(find_plugin(explicit_path))
    log.debug("using session-manager-plugin %s at %s", plugin.version_label, plugin.path)
    for warning in plugin.warnings():
        log.warning("%s", warning)
    return plugin


def plugin_launch(plugin: Plugin, started: StartedSession) -> PluginLaunch:
    return build_launch(
        plugin,
        started.response,
        started.request.api_request(),
        region=started.client.meta.region_name,
        profile=started.aws.settings.profile,
        endpoint_url=started.client.meta.endpoint_url,
    )


def log_launch(plugin: Plugin, launch: PluginLaunch) -> None:
    if plugin.takes_environment:
        log.debug("plugin command: %s (with %s=<redacted> in its environment)", describe(launch.argv), RESPONSE_VARIABLE)
    else:
        log.debug("plugin command: %s", describe(launch.argv))


def choose_credentials(aws: AwsContext, mode: str | None, background: bool) -> handoff.CredentialChoice:
    """Resolve credentials now and choose how the plugin gets them, warning about expiry."""
    choice = handoff.choose(aws, aws.check_credentials(), mode)
    warning = handoff.expiry_warning(choice, background)
    if warning:
        log.warning("%s", warning)
    return choice


def _failed_launch(started: StartedSession, plugin: Plugin, error: OSError) -> SsmexError:
    ended = started.terminate("the plugin could not be started")
    state = "was terminated" if ended else "could not be terminated; end it in the console"
    return SsmexError(
        f"session-manager-plugin at {plugin.path} could not be started ({error.strerror or error}), "
        f"so session {started.session_id} {state}; reinstall the plugin or name it with --plugin.",
        ExitCode.PLUGIN_UNAVAILABLE,
    )


def stopped_by_signal(started: StartedSession, number: int, status: int) -> SsmexError:
    """Build the error for SIGTERM or SIGHUP passed on to the plugin, after ending the session.

    Its exit code is 128 plus the signal number.
    """
    name = signal.Signals(number).name
    ended = status == 0 or started.terminate(f"ssmex received {name}")
    state = "was ended" if ended else "could not be terminated; end it in the console"
    return SsmexError(
        f"ssmex received {name} and passed it to session-manager-plugin, so session {started.session_id} {state}.",
        exit_code_for_signal(number),
    )


def run_with_plugin(
    aws: AwsContext, request: SessionRequest, plugin_path: str | None = None, credentials: str | None = None
) -> int:
    """Start a session and run the plugin in the foreground until it exits.

    credentials is the mode from --credentials (server, profile, environment) or None.
    Returns ssmex's exit code: 0 when the plugin exited with 0.
    """
    request.validate()
    choice = choose_credentials(aws, credentials, background=False)
    plugin = prepare_plugin(plugin_path)
    started = start(aws, request)
    received: list[int] = []
    try:
        launch = plugin_launch(plugin, started)
        with handoff.credentials_for_plugin(launch, choice):
            log_launch(plugin, launch)
            status = run_foreground(launch.argv, launch.environment, received)
    except OSError as error:
        raise _failed_launch(started, plugin, error) from None
    except BaseException:
        started.terminate("ssmex was interrupted before the plugin started")
        raise
    if received:
        raise stopped_by_signal(started, received[0], status)
    if status == 0:
        log.debug("session-manager-plugin exited with status 0 for session %s", started.session_id)
        return ExitCode.OK
    started.terminate(f"session-manager-plugin {exit_status_text(status)}")
    raise SsmexError(
        f"session-manager-plugin {exit_status_text(status)}, so session {started.session_id} was ended; "
        "run again with --debug to see more.",
        ExitCode.PLUGIN_FAILED,
    )


def run_with_native(aws: AwsContext, request: SessionRequest, on_listening: Callable[[object], None] | None = None) -> int:
    """Start a session and run the native client in the foreground until it ends.

    on_listening is called with a port session's bound local port (or Unix socket path).
    Returns the client's exit status: the remote exit code for command sessions.
    """
    request.validate()
    aws.check_credentials()
    started = start(aws, request)
    try:
        with termination_signals_interrupt():
            return native.run_native(started.response, aws, request.target, on_listening=on_listening)
    except SsmexError as error:
        ended = started.terminate("the native client failed")
        state = "was terminated" if ended else "could not be terminated; end it in the console"
        raise SsmexError(f"{error.message.rstrip('.')}, so session {started.session_id} {state}.", error.exit_code) from None
    except BaseException:
        started.terminate("ssmex was interrupted during the session")
        raise


def wait_until_ready(
    process: subprocess.Popen,
    log_path: str,
    needs_port: bool,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int | None:
    """Wait for the plugin's output to show the session is ready.

    Returns the local port for port sessions and None otherwise. Raises SsmexError when
    the plugin exits first or the deadline passes, because the plugin can hang forever.
    """
    deadline = time.monotonic() + timeout
    while True:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            output = handle.read()
        match = _PORT_OPENED.search(output)
        if match:
            return int(match.group(1))
        if not needs_port and _SESSION_STARTED in output:
            return None
        if process.poll() is not None:
            last = output.strip().splitlines()[-1] if output.strip() else "no output"
            raise SsmexError(
                f"session-manager-plugin {exit_status_text(process.returncode)} before the session was ready "
                f"(its last line: {last!r})",
                ExitCode.PLUGIN_FAILED,
            )
        if time.monotonic() >= deadline:
            raise SsmexError(
                f"session-manager-plugin was not ready within {timeout:g} seconds",
                ExitCode.PLUGIN_FAILED,
            )
        sleep(0.05)


def start_in_background(
    aws: AwsContext,
    request: SessionRequest,
    plugin_path: str | None = None,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    credentials: str | None = None,
    client: str = native.PLUGIN,
) -> records.SessionRecord:
    """Start a session with the plugin detached, wait until it is ready and record it.

    In server mode a detached ssmex supervisor owns the plugin and serves it credentials.
    With the native client the supervisor always runs, and runs the client in its own process.
    """
    interactive = request.document_name or "SSM-SessionManagerRunShell"
    if interactive in INTERACTIVE_DOCUMENTS:
        raise SsmexError(
            f"--pass-thru cannot run {interactive}, because an interactive session needs this terminal; "
            "run it without --pass-thru, or use a port forwarding document or AWS-StartNonInteractiveCommand.",
            ExitCode.USAGE,
        )
    request.validate()
    choice = choose_credentials(aws, credentials, background=True)
    if client == native.NATIVE:
        return _start_native_in_background(aws, request, choice, ready_timeout)
    plugin = prepare_plugin(plugin_path)
    started = start(aws, request)
    log_path = os.path.join(records.sessions_dir(), f"{started.session_id}.log")
    process = None
    try:
        launch = plugin_launch(plugin, started)
        if choice.mode is handoff.CredentialMode.SERVER:
            # The supervisor applies server mode; the profile slot is already known to be empty.
            launch.argv[handoff.PROFILE_SLOT] = ""
            log_launch(plugin, launch)
            return supervisor.start_supervised(plugin, started, launch, choice, ready_timeout)
        with handoff.credentials_for_plugin(launch, choice), open(log_path, "wb") as output:
            log_launch(plugin, launch)
            process = spawn_detached(launch.argv, launch.environment, output=output)
        log.info("started session-manager-plugin %s (pid %d) for session %s", plugin.version_label, process.pid, started.session_id)
        local_port = wait_until_ready(process, log_path, request.is_port_forwarding, ready_timeout)
    except OSError as error:
        _discard_log(log_path)
        raise _failed_launch(started, plugin, error) from None
    except (SsmexError, BaseException) as error:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        _discard_log(log_path)
        ended = started.terminate("the background plugin did not become ready")
        if isinstance(error, SsmexError):
            state = "was terminated" if ended else "could not be terminated; end it in the console"
            raise SsmexError(f"{error.message}, so session {started.session_id} {state}; run again with --debug.", error.exit_code) from None
        raise
    record = records.SessionRecord(
        SessionId=started.session_id,
        Target=request.target,
        DocumentName=request.document_name or "SSM-SessionManagerRunShell",
        ProcessId=process.pid,
        StartTime=started.start_time,
        Region=started.client.meta.region_name,
        Endpoint=started.client.meta.endpoint_url,
        Profile=aws.settings.profile,
        LocalPort=local_port,
        StreamUrl=started.response.get("StreamUrl"),
        LogFile=log_path,
    )
    records.save(record)
    return record


def _discard_log(path: str) -> None:
    """Remove the log of a background session that failed to start, showing its lines under --debug first."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
        os.remove(path)
    except OSError:
        return
    for line in lines:
        log.debug("background output: %s", line)


def _start_native_in_background(
    aws: AwsContext, request: SessionRequest, choice: handoff.CredentialChoice, ready_timeout: float
) -> records.SessionRecord:
    started = start(aws, request)
    try:
        return supervisor.start_supervised(None, started, None, choice, ready_timeout)
    except BaseException as error:
        _discard_log(os.path.join(records.sessions_dir(), f"{started.session_id}.log"))
        ended = started.terminate("the native client in the background did not become ready")
        if isinstance(error, SsmexError):
            state = "was terminated" if ended else "could not be terminated; end it in the console"
            raise SsmexError(f"{error.message}, so session {started.session_id} {state}; run again with --debug.", error.exit_code) from None
        raise


def stop_background(record: records.SessionRecord, aws: AwsContext) -> bool:
    """End a background session's process, call TerminateSession and drop its record.

    Returns whether TerminateSession succeeded.
    """
    if record.extra.get("Supervised"):
        terminated = supervisor.stop_supervised(record, aws)
        _forget(record)
        return terminated
    if end_process(record.ProcessId):
        log.info("ended process %d of session %s", record.ProcessId, record.SessionId)
    client = aws.ssm_client()
    try:
        call_aws("TerminateSession", lambda: client.terminate_session(SessionId=record.SessionId))
        terminated = True
    except SsmexError as error:
        log.warning("TerminateSession for %s failed: %s", record.SessionId, error)
        terminated = False
    _forget(record)
    return terminated


def _forget(record: records.SessionRecord) -> None:
    records.remove(record.SessionId)
    if record.LogFile:
        try:
            os.remove(record.LogFile)
        except OSError:
            pass
