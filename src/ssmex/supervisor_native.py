"""The supervisor's native mode: it runs the native client in its own process instead of a plugin.

`ssmex start-session --pass-thru --client native` hands the StartSession response to a
detached `ssmex supervise` on its standard input, as for the plugin. The supervisor runs
the client on a thread, waits until a port session's local listener is bound (or a shell
session's handshake is done), writes the session record with Client "native" and the bound
LocalPort, and replies to its parent. A stop request ends the client and calls
TerminateSession; a client that fails on its own has its session terminated too.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import asdict
from typing import IO, Any, Union

from ssmex import records
from ssmex.aws import AwsContext
from ssmex.credserver import FrozenSource, RefreshingSource, iso8601
from ssmex.errors import ExitCode, SsmexError
from ssmex.supervisor import POLL_SECONDS, PLUGIN_STOP_TIMEOUT_SECONDS, Supervisor, _reply, _Stop

log = logging.getLogger("ssmex.supervisor")

Source = Union[RefreshingSource, FrozenSource]


class _ClientThread:
    """The native client on a thread, with its bound port, exit status or error."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.listening = threading.Event()
        self.local_port: int | None = None
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"native-{session.session_id}", daemon=True)

    def on_listening(self, address: object) -> None:
        if isinstance(address, int):
            self.local_port = address
        self.listening.set()

    def _run(self) -> None:
        try:
            self.exit_code = self.session.run()
        except BaseException as error:  # reported by the supervisor, which ends the session
            self.error = error

    def ready(self, needs_port: bool) -> bool:
        if needs_port:
            return self.listening.is_set()
        return self.session.handler is not None

    def describe_failure(self) -> str:
        if isinstance(self.error, SsmexError):
            return self.error.message
        if self.error is not None:
            return f"the native client failed ({type(self.error).__name__}: {self.error})"
        return f"the native client ended with status {self.exit_code} before the session was ready"


def _aws_with(supervisor: Supervisor, source: Source) -> AwsContext:
    """Return a new AwsContext holding the source's current credentials (refreshed when it can)."""
    aws = AwsContext(supervisor.settings)
    served = source.current()
    aws.session.set_credentials(served.access_key, served.secret_key, served.token)
    return aws


def _create_session(supervisor: Supervisor, source: Source) -> Any:
    from ssmex.datachannel import SessionOptions, botocore_resume
    from ssmex.datachannel.client import NativeSession

    document = supervisor.document
    response = {key.lower(): value for key, value in document["response"].items()}
    options = SessionOptions(
        stdin=open(os.devnull, encoding="utf-8"),
        stdout=sys.stderr,
        stderr=sys.stderr,
        status=sys.stderr,
        install_signal_handlers=False,
        target=document["record"]["Target"],
        kms_client_factory=lambda: _aws_with(supervisor, source).client("kms"),
    )
    resume = botocore_resume(lambda: _aws_with(supervisor, source).ssm_client(), response["sessionid"])
    return NativeSession(response["sessionid"], response["tokenvalue"], response["streamurl"], resume, options)


def run_native(supervisor: Supervisor, reply: IO[bytes], source: Source) -> int:
    """Run the native client for the handed-over session until it ends or a stop is requested."""
    document = supervisor.document
    session = _create_session(supervisor, source)
    client = _ClientThread(session)
    session.options.on_listening = client.on_listening
    client.thread.start()
    log.info("started the native client for session %s", supervisor.session_id)

    deadline = time.monotonic() + document["ready_timeout"]
    try:
        while not client.ready(document["needs_port"]):
            if not client.thread.is_alive():
                raise SsmexError(client.describe_failure(), ExitCode.PLUGIN_FAILED)
            if time.monotonic() >= deadline:
                raise SsmexError(f"the native client was not ready within {document['ready_timeout']:g} seconds", ExitCode.PLUGIN_FAILED)
            supervisor._sleep(0.05)
    except (SsmexError, _Stop) as error:
        _end_client(client)
        message = error.message if isinstance(error, SsmexError) else "the ssmex supervisor was stopped before the native client was ready"
        _reply(reply, {"ok": False, "message": message, "exit_code": int(ExitCode.PLUGIN_FAILED)})
        return int(ExitCode.PLUGIN_FAILED)

    record = records.SessionRecord(ProcessId=os.getpid(), LocalPort=client.local_port, Client="native", **document["record"])
    expiry = source.expiry()
    if source.refreshable:
        expires = "refreshed by ssmex"
    elif expiry is not None:
        expires = iso8601(expiry)
    else:
        expires = "unknown"
    record.extra = {"Supervised": True, "Credentials": "in-process", "CredentialsExpire": expires}
    records.save(record)
    _reply(reply, {"ok": True, "record": asdict(record)})
    return _watch(supervisor, client, record, source)


def _watch(supervisor: Supervisor, client: _ClientThread, record: records.SessionRecord, source: Source) -> int:
    while client.thread.is_alive():
        try:
            supervisor._sleep(POLL_SECONDS)
        except _Stop:
            log.info("stopping session %s on request", supervisor.session_id)
            _end_client(client)
            record.extra["Terminated"] = supervisor._terminate(source)
            records.save(record)
            return 0
    if client.error is not None:
        # Never leave a session running that no client serves any more.
        log.warning("the native client of session %s failed: %s", supervisor.session_id, client.describe_failure())
        record.extra["NativeError"] = client.describe_failure()
        record.extra["Terminated"] = supervisor._terminate(source)
    else:
        log.info("the native client of session %s ended with status %s", supervisor.session_id, client.exit_code)
        record.extra["NativeExitStatus"] = client.exit_code
    records.save(record)
    return 0


def _end_client(client: _ClientThread) -> None:
    client.session.finish(0)
    client.thread.join(PLUGIN_STOP_TIMEOUT_SECONDS)
    if client.thread.is_alive():
        log.warning("the native client of session %s did not stop within %g seconds", client.session.session_id, PLUGIN_STOP_TIMEOUT_SECONDS)
