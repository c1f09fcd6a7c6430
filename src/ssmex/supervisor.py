"""A detached ssmex process that owns a background plugin and serves it credentials.

`ssmex start-session --pass-thru` in server mode starts `ssmex supervise` detached. It
writes the session's secrets to the supervisor's standard input as one JSON document, so
nothing secret appears on a command line: the StartSession response inside the plugin's
environment, and a copy of the credentials. The supervisor starts the credential server and the
plugin, waits until the plugin is ready, writes the session record (ProcessId is the
supervisor; PluginProcessId is the plugin), prints one JSON line on its standard output
and stays until its plugin exits or it is told to stop.

Stopping: SIGTERM on POSIX; on Windows a stop file next to the session record, because
TerminateProcess would end the supervisor without letting it end its plugin.
On stop it ends the plugin, calls TerminateSession and marks the record Terminated.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import IO, Any

from ssmex import records
from ssmex.aws import AwsContext, AwsSettings, call_aws
from ssmex.credserver import CredentialServer, FrozenSource, RefreshingSource, ServedCredentials, iso8601
from ssmex.errors import ExitCode, SsmexError
from ssmex.handoff import CredentialChoice, apply_server
from ssmex.plugin import Plugin, PluginLaunch
from ssmex.process import IS_WINDOWS, end_process, exit_status_text, process_alive, spawn_detached
from ssmex.redact import RedactingFilter, register_secret

log = logging.getLogger("ssmex.supervisor")

HANDOFF_VERSION = 1
# Time the supervisor may take to start Python and import botocore, on top of the
# plugin's ready timeout.
STARTUP_ALLOWANCE_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 20.0
PLUGIN_STOP_TIMEOUT_SECONDS = 5.0
POLL_SECONDS = 0.25


def supervisor_command() -> list[str]:
    """Return the command that runs `ssmex supervise` with this interpreter or executable."""
    if getattr(sys, "frozen", False):
        # A PyInstaller executable is ssmex itself; it takes the subcommand directly.
        return [sys.executable, "supervise"]
    return [sys.executable, "-m", "ssmex", "supervise"]


def supervisor_environment() -> dict[str, str]:
    """Return the supervisor's environment: this process's, made independent of it when frozen.

    A single-file executable started by itself reuses its parent's unpacked files unless
    PYINSTALLER_RESET_ENVIRONMENT is set (PyInstaller 6.9 and later). The parent deletes them
    when it exits, and the supervisor would then fail to load botocore's data for its next client.
    """
    environment = dict(os.environ)
    if getattr(sys, "frozen", False):
        environment["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
    return environment


def stop_file(session_id: str) -> str:
    safe = "".join(char for char in session_id if char.isalnum() or char in "-_.")
    return os.path.join(records.sessions_dir(), f"{safe}.stop")


def _credentials_document(served: ServedCredentials) -> dict[str, Any]:
    return {
        "AccessKeyId": served.access_key,
        "SecretAccessKey": served.secret_key,
        "Token": served.token,
        "Expiration": iso8601(served.expiry) if served.expiry else None,
    }


def _served_from_document(document: dict[str, Any]) -> ServedCredentials:
    expiry = None
    if document.get("Expiration"):
        expiry = datetime.datetime.strptime(document["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return ServedCredentials(document["AccessKeyId"], document["SecretAccessKey"], document.get("Token"), expiry)


# The parent's side.


def _read_line(stream: IO[bytes], timeout: float) -> bytes | None:
    """Read one line with a deadline; a thread does it because Windows pipes cannot be polled."""
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else None


def start_supervised(
    plugin: Plugin | None,
    started: Any,
    launch: PluginLaunch | None,
    choice: CredentialChoice,
    ready_timeout: float,
) -> records.SessionRecord:
    """Start the supervisor for a session that StartSession created and wait until it is ready.

    With no plugin and launch, the supervisor runs the native client on the StartSession
    response instead. On failure the supervisor is stopped and SsmexError raised; the
    caller ends the session.
    """
    aws = started.aws
    request = started.request
    log_path = os.path.join(records.sessions_dir(), f"{started.session_id}.log")
    if launch is None or plugin is None:
        client_part: dict[str, Any] = {"client": "native", "response": started.response}
    else:
        client_part = {
            "client": "plugin",
            "launch": {"argv": launch.argv, "environment": launch.environment, "secrets": launch.secrets},
            "plugin_version": plugin.version_label,
        }
    document = {
        "version": HANDOFF_VERSION,
        **client_part,
        "needs_port": request.is_port_forwarding,
        "ready_timeout": ready_timeout,
        "log_path": log_path,
        "settings": asdict(aws.settings),
        "refresh": choice.source.refreshable,
        "frozen_because": choice.frozen_because,
        "ca_bundle": choice.ca_bundle,
        "credentials": _credentials_document(choice.source.current()),
        "record": {
            "SessionId": started.session_id,
            "Target": request.target,
            "DocumentName": request.document_name or "SSM-SessionManagerRunShell",
            "StartTime": started.start_time,
            "Region": started.client.meta.region_name,
            "Endpoint": started.client.meta.endpoint_url,
            "Profile": aws.settings.profile,
            "StreamUrl": started.response.get("StreamUrl"),
            "LogFile": log_path,
        },
    }
    command = supervisor_command()
    with open(log_path, "ab") as output:
        process = spawn_detached(command, supervisor_environment(), output=output, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    log.info("started the ssmex supervisor (pid %d) for session %s", process.pid, started.session_id)
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(document).encode("utf-8"))
        process.stdin.close()
        line = _read_line(process.stdout, ready_timeout + STARTUP_ALLOWANCE_SECONDS)
    except BaseException:
        _abandon(process)
        raise
    reply = _parse_reply(line)
    if reply is None:
        _abandon(process)
        last = _last_line(log_path)
        if process.poll() is not None:
            raise SsmexError(f"the ssmex supervisor {exit_status_text(process.returncode)} (its log's last line: {last!r})", ExitCode.PLUGIN_FAILED)
        raise SsmexError(f"the ssmex supervisor was not ready within {ready_timeout + STARTUP_ALLOWANCE_SECONDS:g} seconds", ExitCode.PLUGIN_FAILED)
    if not reply.get("ok"):
        _abandon(process)
        raise SsmexError(str(reply.get("message") or "the ssmex supervisor failed"), ExitCode(reply.get("exit_code", ExitCode.PLUGIN_FAILED)))
    record_data = reply["record"]
    return records.SessionRecord(**record_data)


def _parse_reply(line: bytes | None) -> dict | None:
    if not line:
        return None
    try:
        reply = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return reply if isinstance(reply, dict) else None


def _last_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"


def _abandon(process: subprocess.Popen) -> None:
    """Stop a supervisor that failed to start; it ends its plugin on SIGTERM."""
    if process.poll() is None:
        end_process(process.pid)
        try:
            process.wait(timeout=PLUGIN_STOP_TIMEOUT_SECONDS + 5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def stop_supervised(record: records.SessionRecord, aws: AwsContext) -> bool:
    """Ask a record's supervisor to stop, then make sure the session ended.

    Returns whether the session was terminated (by the supervisor or, when it could not,
    by this process).
    """
    pid = record.ProcessId
    if process_alive(pid):
        if IS_WINDOWS:
            # NOTE: the stop file path is exercised on Linux only; Windows itself is untested.
            with open(stop_file(record.SessionId), "w", encoding="ascii"):
                pass
        else:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_alive(pid):
            log.warning("the supervisor of session %s (pid %d) did not stop within %g seconds; ending it", record.SessionId, pid, STOP_TIMEOUT_SECONDS)
            end_process(pid)
    current = records.find(record.SessionId) or record
    _remove_quietly(stop_file(record.SessionId))
    if current.extra.get("Terminated"):
        return True
    plugin_pid = current.extra.get("PluginProcessId")
    if isinstance(plugin_pid, int) and end_process(plugin_pid):
        log.info("ended plugin process %d of session %s", plugin_pid, record.SessionId)
    client = aws.ssm_client()
    try:
        call_aws("TerminateSession", lambda: client.terminate_session(SessionId=record.SessionId))
    except SsmexError as error:
        log.warning("TerminateSession for %s failed: %s", record.SessionId, error)
        return False
    return True


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


# The supervisor's side.


class _Stop(Exception):
    """Raised inside the ready wait when a stop was requested."""


class Supervisor:
    """The running supervisor: its handoff document, credential server and plugin."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.settings = AwsSettings(**document["settings"])
        self.session_id = document["record"]["SessionId"]
        self.stop_requested = threading.Event()
        self.process: subprocess.Popen | None = None
        self.server: CredentialServer | None = None
        self._aws: AwsContext | None = None

    def _source(self) -> RefreshingSource | FrozenSource:
        handed = _served_from_document(self.document["credentials"])
        register_secret(handed.secret_key)
        register_secret(handed.token)
        if self.document.get("refresh"):
            try:
                self._aws = AwsContext(self.settings)
                return RefreshingSource(self._aws.check_credentials())
            except SsmexError as error:
                log.warning("resolving credentials again failed (%s); serving the ones ssmex started with", error)
        elif self.document.get("frozen_because"):
            log.info("serving the credentials ssmex started with, because %s", self.document["frozen_because"])
        if handed.expiry is not None:
            log.warning("the plugin's credentials cannot be refreshed and expire at %s", iso8601(handed.expiry))
        elif handed.token:
            log.warning("the plugin's credentials cannot be refreshed and ssmex cannot know when they expire")
        return FrozenSource(handed)

    def _aws_for_terminate(self, source: RefreshingSource | FrozenSource) -> AwsContext:
        if self._aws is None:
            self._aws = AwsContext(self.settings)
            served = source.current()
            self._aws.session.set_credentials(served.access_key, served.secret_key, served.token)
        return self._aws

    def _sleep(self, seconds: float) -> None:
        if self.stop_requested.wait(seconds) or os.path.exists(stop_file(self.session_id)):
            raise _Stop()

    def run(self, reply: IO[bytes]) -> int:
        from ssmex.session import wait_until_ready

        document = self.document
        source = self._source()
        if document.get("client") == "native":
            from ssmex.supervisor_native import run_native

            return run_native(self, reply, source)
        launch_data = document["launch"]
        launch = PluginLaunch(argv=list(launch_data["argv"]), environment=dict(launch_data["environment"]), response_json="", secrets=list(launch_data["secrets"]))
        for secret in launch.secrets:
            register_secret(secret)
        log_path = document["log_path"]
        # The server binds its port now but serves only after the plugin is started, because
        # the pre-exec step of end_with_parent is unsafe while other threads run. The
        # plugin fetches no credentials at start-up.
        self.server = CredentialServer(source)
        apply_server(launch, self.server.url, self.server.token, document.get("ca_bundle"))
        try:
            with open(log_path, "ab") as output:
                self.process = spawn_detached(launch.argv, launch.environment, output=output, end_with_parent=True)
        except OSError as error:
            self.server.close()
            _reply(reply, {"ok": False, "message": f"session-manager-plugin could not be started ({error.strerror or error})", "exit_code": int(ExitCode.PLUGIN_UNAVAILABLE)})
            return int(ExitCode.PLUGIN_UNAVAILABLE)
        self.server.start()
        log.info("started session-manager-plugin %s (pid %d) for session %s", document.get("plugin_version"), self.process.pid, self.session_id)

        try:
            local_port = wait_until_ready(self.process, log_path, document["needs_port"], document["ready_timeout"], sleep=self._sleep)
        except (SsmexError, _Stop) as error:
            self._end_plugin()
            self.server.close()
            message = error.message if isinstance(error, SsmexError) else "the ssmex supervisor was stopped before the plugin was ready"
            _reply(reply, {"ok": False, "message": message, "exit_code": int(ExitCode.PLUGIN_FAILED)})
            return int(ExitCode.PLUGIN_FAILED)

        record = records.SessionRecord(ProcessId=os.getpid(), LocalPort=local_port, **document["record"])
        expiry = source.expiry()
        if source.refreshable:
            expires = "refreshed by ssmex"
        elif expiry is not None:
            expires = iso8601(expiry)
        else:
            expires = "unknown"
        record.extra = {
            "Supervised": True,
            "PluginProcessId": self.process.pid,
            "Credentials": "server",
            "CredentialsExpire": expires,
        }
        records.save(record)
        _reply(reply, {"ok": True, "record": asdict(record)})
        return self._watch(record, source)

    def _watch(self, record: records.SessionRecord, source: RefreshingSource | FrozenSource) -> int:
        assert self.process is not None and self.server is not None
        while self.process.poll() is None:
            try:
                self._sleep(POLL_SECONDS)
            except _Stop:
                log.info("stopping session %s on request", self.session_id)
                self._end_plugin()
                record.extra["Terminated"] = self._terminate(source)
                records.save(record)
                self.server.close()
                return 0
        status = self.process.returncode
        log.info("session-manager-plugin %s; the supervisor of session %s exits", exit_status_text(status), self.session_id)
        record.extra["PluginExitStatus"] = status
        records.save(record)
        self.server.close()
        return 0

    def _end_plugin(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=PLUGIN_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.info("ended session-manager-plugin (pid %d) of session %s", process.pid, self.session_id)

    def _terminate(self, source: RefreshingSource | FrozenSource) -> bool:
        try:
            aws = self._aws_for_terminate(source)
            client = aws.ssm_client()
            call_aws("TerminateSession", lambda: client.terminate_session(SessionId=self.session_id))
        except Exception as error:  # the record then makes `ssmex sessions stop` call TerminateSession itself
            log.warning("TerminateSession for %s failed: %s", self.session_id, error)
            return False
        log.info("terminated session %s", self.session_id)
        return True


def _reply(stream: IO[bytes], message: dict[str, Any]) -> None:
    """Send the parent one JSON line, then detach standard output from its pipe."""
    try:
        stream.write((json.dumps(message) + "\n").encode("utf-8"))
        stream.flush()
    except OSError:
        log.warning("the ssmex command that started this supervisor is gone")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s ssmex supervisor %(process)d %(levelname)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("ssmex").setLevel(logging.INFO)


def main() -> int:
    """Run the supervisor: read the handoff document from standard input, then supervise."""
    _configure_logging()
    reply = sys.stdout.buffer
    try:
        document = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        _reply(reply, {"ok": False, "message": "the ssmex supervisor received no valid handoff on its standard input"})
        return int(ExitCode.USAGE)
    if not isinstance(document, dict) or document.get("version") != HANDOFF_VERSION:
        _reply(reply, {"ok": False, "message": "the ssmex supervisor received a handoff of another ssmex version"})
        return int(ExitCode.USAGE)
    supervisor = Supervisor(document)
    if not IS_WINDOWS:
        signal.signal(signal.SIGTERM, lambda number, frame: supervisor.stop_requested.set())
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, lambda number, frame: supervisor.stop_requested.set())
    return supervisor.run(reply)
