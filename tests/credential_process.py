"""A credential_process for tests: prints a new access key on every run.

Usage: credential_process.py STATE_DIR. Each run appends "number access-key expiration
parent-pid" to STATE_DIR/runs.log and prints key AKIAPROC<number> with an Expiration
STATE_DIR/lifetime seconds from now (default 60).
"""

import datetime
import json
import os
import sys


def main(state_dir: str) -> int:
    log_path = os.path.join(state_dir, "runs.log")
    lifetime_path = os.path.join(state_dir, "lifetime")
    lifetime = 60.0
    if os.path.exists(lifetime_path):
        with open(lifetime_path, encoding="ascii") as handle:
            lifetime = float(handle.read().strip())
    # Appends of one short line are atomic, so concurrent runs each get their own number.
    descriptor = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        with open(log_path, encoding="ascii") as handle:
            number = len(handle.readlines()) + 1
        access_key = f"AKIAPROC{number:012d}"
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)
        expiration = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        os.write(descriptor, f"{number} {access_key} {expiration} {os.getppid()}\n".encode("ascii"))
    finally:
        os.close(descriptor)
    print(
        json.dumps(
            {
                "Version": 1,
                "AccessKeyId": access_key,
                "SecretAccessKey": f"process-secret-{number}-do-not-print",
                "SessionToken": f"process-token-{number}-do-not-print",
                "Expiration": expiration,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
