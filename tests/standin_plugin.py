"""A stand-in for session-manager-plugin that records how it was started.

It follows the official plugin's argv contract and prints the plugin's lines. Each run
with six arguments writes argv, the environment and the decoded StartSession response
to a JSON file in STANDIN_RECORD_DIR. STANDIN_MODE picks what it does next:
exit (default), port, stdio, panic, hang. In port mode it listens on STANDIN_LOCAL_PORT,
else on the request's localPortNumber, else on any free port, and echoes each connection.
In stdio mode (AWS-StartSSHSession) it writes its own lines to stderr and copies stdin to
stdout, or to and from the TCP address in STANDIN_STDIO_CONNECT (host:port). STANDIN_VERSION sets what --version prints, and
STANDIN_VANISH=1 makes it delete itself after printing the version.
"""

import time

# Taken first, so benchmarks can measure when the plugin was started.
STARTED_AT = time.time()

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
            data = connection.recv(65536)
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
