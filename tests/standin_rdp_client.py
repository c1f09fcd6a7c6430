"""A stand-in for xfreerdp that records how ssmex started it.

It writes its argv, everything it read on stdin, and whether the /v: address echoed a
probe to the JSON file named by STANDIN_RDP_RECORD. STANDIN_RDP_MODE=hang makes it wait
for a signal after recording, as a user's open RDP window would. STANDIN_RDP_EXIT sets its
exit status, as a failed login would.
"""

import json
import os
import socket
import sys
import time


def probe(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as connection:
            connection.sendall(b"rdp-probe")
            connection.settimeout(5)
            return connection.recv(64) == b"rdp-probe"
    except OSError:
        return False


def main(args: list) -> int:
    stdin = sys.stdin.read() if not sys.stdin.isatty() else ""
    address = next((arg[3:] for arg in args if arg.startswith("/v:")), "")
    record = {"argv": args, "stdin": stdin, "echo": probe(address) if address else None, "pid": os.getpid()}
    path = os.environ["STANDIN_RDP_RECORD"]
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    os.replace(path + ".tmp", path)
    if os.environ.get("STANDIN_RDP_MODE") == "hang":
        try:
            time.sleep(3600)
        except KeyboardInterrupt:
            return 130
    return int(os.environ.get("STANDIN_RDP_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
