"""`ssmex demo`: one port-forwarding session through the emulator, with no AWS account.

Everything runs in this process on 127.0.0.1: the emulator's SSM API and data channel, an
echo server that plays the instance's remote port, and the native client. The demo
replaces every AWS_ variable in its own environment with fake credentials and empty
config files while it runs, so it never reads the user's AWS config or credentials.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Iterator, TextIO

from ssmex.errors import ExitCode, SsmexError

INSTANCE_ID = "i-0123456789abcdef0"
# The remote port is 7, the port of the echo protocol, because the destination echoes.
REMOTE_PORT = 7
REGION = "us-east-1"
FAKE_ACCESS_KEY_ID = "AKIADEMOEXAMPLEKEY01"
FAKE_SECRET_ACCESS_KEY = "demo-secret-not-a-real-key"
MESSAGE = b"hello through Session Manager, from ssmex demo\n"
# Deadlines of the steps; the whole demo takes well under a second on loopback.
LISTEN_TIMEOUT = 20.0
ECHO_TIMEOUT = 10.0
END_TIMEOUT = 10.0


@dataclass
class DemoResult:
    session_id: str
    endpoint_url: str
    local_port: int
    echo_port: int
    sent: int
    received: bytes
    round_trip_seconds: float
    client_status: int | None


@contextlib.contextmanager
def isolated_aws_environment() -> Iterator[None]:
    """Replace every AWS_ variable with fake credentials and empty config files, then restore them."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    with tempfile.TemporaryDirectory(prefix="ssmex-demo-") as folder:
        config = os.path.join(folder, "config")
        credentials = os.path.join(folder, "credentials")
        for path in (config, credentials):
            with open(path, "w", encoding="ascii"):
                pass
        for name in saved:
            del os.environ[name]
        os.environ.update(
            {
                "AWS_CONFIG_FILE": config,
                "AWS_SHARED_CREDENTIALS_FILE": credentials,
                "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        try:
            yield
        finally:
            for name in [name for name in os.environ if name.startswith("AWS_")]:
                del os.environ[name]
            os.environ.update(saved)


def _echo_round_trip(port: int) -> tuple[bytes, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=ECHO_TIMEOUT) as connection:
        started = time.perf_counter()
        connection.sendall(MESSAGE)
        received = b""
        while len(received) < len(MESSAGE):
            chunk = connection.recv(len(MESSAGE) - len(received))
            if not chunk:
                break
            received += chunk
        return received, time.perf_counter() - started


def run_demo() -> DemoResult:
    """Run the demo session and return what happened; raise SsmexError when a step fails."""
    from ssmex import native, session
    from ssmex.aws import AwsContext, AwsSettings
    from ssmex.emulator.api import EmulatedInstance, Emulator, SsmApiServer
    from ssmex.emulator.datachannel import DataChannelServer
    from ssmex.emulator.harness import EchoServer, StatusCapture

    echo = EchoServer()
    instance = EmulatedInstance(INSTANCE_ID, name="demo-linux", port_map={REMOTE_PORT: ("127.0.0.1", echo.port)})
    emulator = Emulator([instance])
    status = StatusCapture()
    listening = threading.Event()
    bound: list[int] = []
    outcome: dict = {}

    def on_listening(address: object) -> None:
        if isinstance(address, int):
            bound.append(address)
        listening.set()

    try:
        with SsmApiServer(emulator) as api, DataChannelServer(emulator) as _channel:
            aws = AwsContext(AwsSettings(region=REGION, endpoint_url=api.endpoint_url))
            aws.check_credentials()
            request = session.SessionRequest(
                target=INSTANCE_ID,
                document_name="AWS-StartPortForwardingSession",
                parameters={"portNumber": [str(REMOTE_PORT)], "localPortNumber": ["0"]},
            )
            started = session.start(aws, request)

            def run_client() -> None:
                try:
                    outcome["status"] = native.run_native(
                        started.response, aws, INSTANCE_ID, install_signal_handlers=False,
                        status=status, stdout=status, stderr=status, on_listening=on_listening,
                    )
                except BaseException as error:  # reported below, after the session is ended
                    outcome["error"] = error

            client = threading.Thread(target=run_client, name="ssmex-demo-client", daemon=True)
            client.start()
            try:
                if not listening.wait(LISTEN_TIMEOUT) or not bound:
                    reason = outcome.get("error") or f"no local port within {LISTEN_TIMEOUT:g} seconds"
                    raise SsmexError(
                        f"The demo's native client did not open its local port ({reason}); "
                        "run `ssmex demo --debug` to see each step.",
                        ExitCode.ERROR,
                    )
                received, round_trip = _echo_round_trip(bound[0])
            finally:
                started.terminate("the demo is done")
                client.join(END_TIMEOUT)
            if "error" in outcome:
                raise SsmexError(
                    f"The demo's native client failed ({outcome['error']}); run `ssmex demo --debug` to see each step.",
                    ExitCode.ERROR,
                )
            return DemoResult(
                session_id=started.session_id,
                endpoint_url=api.endpoint_url,
                local_port=bound[0],
                echo_port=echo.port,
                sent=len(MESSAGE),
                received=received,
                round_trip_seconds=round_trip,
                client_status=outcome.get("status"),
            )
    finally:
        echo.close()


def report_lines(result: DemoResult) -> list[str]:
    """Return the few lines that tell the user what the demo did."""
    same = "the same bytes" if result.received == MESSAGE else "DIFFERENT bytes"
    ended = "ended" if result.client_status is not None else "still ending"
    return [
        "ssmex demo: a port-forwarding session through a local Session Manager emulator (no AWS account).",
        f"  session     {result.session_id} (StartSession at {result.endpoint_url})",
        f"  forwarding  localhost:{result.local_port} -> {INSTANCE_ID}:{REMOTE_PORT} "
        f"(an echo server on 127.0.0.1:{result.echo_port}), by ssmex's native client",
        f"  sent        {result.sent} bytes, received {len(result.received)} bytes: {same}",
        f"  round trip  {result.round_trip_seconds * 1000:.1f} ms",
        f"  ended       TerminateSession called; the native client {ended}",
        "Next: `ssmex emulator` keeps such an emulator running for your own tries, "
        "and `ssmex start-session --target i-... --region REGION` opens a real session.",
    ]


def main(output: TextIO) -> int:
    with isolated_aws_environment():
        result = run_demo()
    for line in report_lines(result):
        output.write(line + "\n")
    output.flush()
    return 0 if result.received == MESSAGE else int(ExitCode.ERROR)
