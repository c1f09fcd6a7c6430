"""A stand-in for session-manager-plugin that records how it was started.

It follows the official plugin's argv contract and prints the plugin's lines. Each run
with six arguments writes argv, the environment and the decoded StartSession response
to a JSON file in STANDIN_RECORD_DIR. STANDIN_MODE picks what it does next:
exit (default), port, stdio, panic, hang. In port mode it listens on STANDIN_LOCAL_PORT,
else on the request's localPortNumber, else on any free port, and echoes each connection.
In stdio mode (AWS-StartSSHSession) it writes its own lines to stderr and copies stdin to
stdout, or to and from the TCP address in STANDIN_STDIO_CONNECT (host:port).
STANDIN_VERSION sets what --version prints, and STANDIN_VANISH=1 makes it delete itself after printing the version.

ResumeSession, as the plugin calls it after its websocket drops: the stand-in resolves
credentials in the order of the plugin's AWS SDK, signs with SigV4 and POSTs to the
endpoint in argv slot 6. The order: the profile argument, environment keys, the
AWS_PROFILE (else [default]) profile in the AWS files, then AWS_CONTAINER_CREDENTIALS_FULL_URI
with AWS_CONTAINER_AUTHORIZATION_TOKEN as the Authorization header. Fetched credentials
are reused until 5 minutes before their Expiration.
Each call is appended to "resumes" in the run's record. STANDIN_RESUMES=N makes N calls
right after start; STANDIN_RESUME_TRIGGER=PATH makes one call each time PATH appears
(the stand-in deletes it); STANDIN_RESUME_INTERVAL=SECONDS makes one call per interval.
"""

import time

# Taken first, so benchmarks can measure when the plugin was started.
STARTED_AT = time.time()

import configparser  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal
import socket
import sys
import threading

RESPONSE_VARIABLE = "AWS_SSM_START_SESSION_RESPONSE"


def record_path() -> str:
    folder = os.environ.get("STANDIN_RECORD_DIR", ".")
    return os.path.join(folder, f"run-{os.getpid()}.json")


def write_record(record: dict) -> None:
    with open(record_path() + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    os.replace(record_path() + ".tmp", record_path())


RESUME_LOCK = threading.Lock()
EXPIRY_WINDOW = datetime.timedelta(minutes=5)
_container_cache: dict = {}


def default_profile_keys():
    """Return keys of the AWS_PROFILE (else [default]) profile in the AWS files, as the SDK reads them."""
    name = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"
    files = [
        os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.expanduser("~/.aws/credentials"),
        os.environ.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config"),
    ]
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error):
            continue
        section = name if name == "default" or path == files[0] else f"profile {name}"
        if parser.has_option(section, "aws_access_key_id"):
            return (
                parser.get(section, "aws_access_key_id"),
                parser.get(section, "aws_secret_access_key", fallback=""),
                parser.get(section, "aws_session_token", fallback=None),
            )
    return None


def container_credentials():
    """Fetch credentials from the container URL, reusing them until 5 minutes before expiry."""
    import urllib.request

    cached = _container_cache.get("value")
    now = datetime.datetime.now(datetime.timezone.utc)
    if cached and cached[1] - now > EXPIRY_WINDOW:
        return cached[0]
    request = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
    token = os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    if token is not None:
        request.add_header("Authorization", token)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as reply:
        body = json.loads(reply.read().decode("utf-8"))
    expiry = datetime.datetime.strptime(body["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    value = (body["AccessKeyId"], body["SecretAccessKey"], body.get("Token"))
    _container_cache["value"] = (value, expiry)
    _container_cache["fetches"] = _container_cache.get("fetches", 0) + 1
    return value


def resolve_credentials(profile: str):
    """Return (source, (access key, secret key, token)) in the plugin's order."""
    if profile:
        import botocore.session

        frozen = botocore.session.Session(profile=profile).get_credentials().get_frozen_credentials()
        return "profile", (frozen.access_key, frozen.secret_key, frozen.token)
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return "environment", (
            os.environ["AWS_ACCESS_KEY_ID"],
            os.environ["AWS_SECRET_ACCESS_KEY"],
            os.environ.get("AWS_SESSION_TOKEN"),
        )
    keys = default_profile_keys()
    if keys:
        return "default-profile", keys
    if os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return "container", container_credentials()
    raise RuntimeError("no credentials found")


def resume_session(args: list, session_id: str) -> dict:
    """Call ResumeSession on the endpoint in argv slot 6, signed as the plugin signs it."""
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    result = {"time": time.time()}
    try:
        source, (access_key, secret_key, token) = resolve_credentials(args[3])
    except Exception as error:
        result.update(source=None, access_key_id=None, status=None, error=f"credentials: {error}")
        return result
    result.update(source=source, access_key_id=access_key)
    body = json.dumps({"SessionId": session_id}).encode("utf-8")
    request = AWSRequest(
        method="POST",
        url=args[5],
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonSSM.ResumeSession"},
    )
    SigV4Auth(Credentials(access_key, secret_key, token), "ssm", args[1]).add_auth(request)
    prepared = urllib.request.Request(args[5], data=body, headers=dict(request.headers.items()), method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(prepared, timeout=10) as reply:
            result.update(status=reply.status, error=None)
    except urllib.error.HTTPError as error:
        result.update(status=error.code, error=error.read().decode("utf-8", "replace"))
    except OSError as error:
        result.update(status=None, error=str(error))
    return result


def record_resume(record: dict, args: list, session_id: str) -> None:
    with RESUME_LOCK:
        result = resume_session(args, session_id)
        result["container_fetches"] = _container_cache.get("fetches", 0)
        record.setdefault("resumes", []).append(result)
        write_record(record)


def watch_resume_requests(record: dict, args: list, session_id: str) -> None:
    trigger = os.environ.get("STANDIN_RESUME_TRIGGER")
    interval = float(os.environ.get("STANDIN_RESUME_INTERVAL") or 0)
    last = time.monotonic()
    while True:
        if trigger and os.path.exists(trigger):
            os.remove(trigger)
            record_resume(record, args, session_id)
        if interval and time.monotonic() - last >= interval:
            last = time.monotonic()
            record_resume(record, args, session_id)
        time.sleep(0.05)


def echo(connection: socket.socket) -> None:
    with connection:
        while True:
            data = connection.recv(65536)
            if not data:
                return
            connection.sendall(data)


def local_port(args: list) -> int:
    if os.environ.get("STANDIN_LOCAL_PORT"):
        return int(os.environ["STANDIN_LOCAL_PORT"])
    try:
        parameters = json.loads(args[4]).get("Parameters") or {}
        return int((parameters.get("localPortNumber") or ["0"])[0])
    except (IndexError, ValueError, AttributeError):
        return 0


def relay_stdio(address) -> None:
    """Copy stdin to stdout, or between stdin/stdout and a TCP connection to address."""
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    if not address:
        while True:
            data = stdin.read1(65536)
            if not data:
                return
            stdout.write(data)
            stdout.flush()
    host, port = address.rsplit(":", 1)
    connection = socket.create_connection((host, int(port)))

    def downstream() -> None:
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                # A reset (the server closed with unread data) ends the session like EOF.
                data = b""
            if not data:
                os._exit(0)
            stdout.write(data)
            stdout.flush()

    threading.Thread(target=downstream, daemon=True).start()
    while True:
        data = stdin.read1(65536)
        if not data:
            connection.shutdown(socket.SHUT_WR)
            time.sleep(1)
            return
        connection.sendall(data)


def main(args: list) -> int:
    if not args:
        print("The Session Manager plugin was installed successfully. Use the AWS CLI to start a session.")
        return 0
    if args == ["--version"]:
        print(os.environ.get("STANDIN_VERSION", "1.2.814.0"))
        if os.environ.get("STANDIN_VANISH") == "1":
            os.remove(os.path.abspath(sys.argv[0]))
        return 0
    if len(args) < 4:
        print("Unknown operation")
        return 0
    if args[2] != "StartSession":
        print("Invalid Operation")
        return 0
    environment = dict(os.environ)
    if args[0].startswith(RESPONSE_VARIABLE):
        raw = os.environ.pop(RESPONSE_VARIABLE)
    else:
        raw = args[0]
    response = {key.lower(): value for key, value in json.loads(raw).items()}
    session_id = response["sessionid"]
    record = {"argv": args, "env": environment, "response": json.loads(raw), "events": [], "pid": os.getpid(), "started_at": STARTED_AT}
    write_record(record)
    mode = os.environ.get("STANDIN_MODE", "exit")
    if mode != "stdio":
        print(f"\nStarting session with SessionId: {session_id}", flush=True)
    for _ in range(int(os.environ.get("STANDIN_RESUMES") or 0)):
        record_resume(record, args, session_id)
    if os.environ.get("STANDIN_RESUME_TRIGGER") or os.environ.get("STANDIN_RESUME_INTERVAL"):
        threading.Thread(target=watch_resume_requests, args=(record, args, session_id), daemon=True).start()
    if mode == "panic":
        print("panic: runtime error: invalid memory address", file=sys.stderr, flush=True)
        return 2
    if mode == "hang":
        time.sleep(3600)
        return 0
    if mode == "stdio":
        print(f"Starting session with SessionId: {session_id}", file=sys.stderr, flush=True)
        relay_stdio(os.environ.get("STANDIN_STDIO_CONNECT"))
        print(f"Exiting session with sessionId: {session_id}.", file=sys.stderr, flush=True)
        return 0
    if mode == "port":
        def on_signal(number, frame):
            record["events"].append(signal.Signals(number).name)
            write_record(record)
            print("Terminate signal received, exiting.", flush=True)
            print(f"\n\nExiting session with sessionId: {session_id}.\n\n", flush=True)
            os._exit(0)

        for number in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
            signal.signal(number, on_signal)
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", local_port(args)))
        listener.listen()
        port = listener.getsockname()[1]
        print(f"Port {port} opened for sessionId {session_id}.", end="", flush=True)
        print("\nWaiting for connections...\n", flush=True)
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=echo, args=(connection,), daemon=True).start()
    print(f"\n\nExiting session with sessionId: {session_id}.\n\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
