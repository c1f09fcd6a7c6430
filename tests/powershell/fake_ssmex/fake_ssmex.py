"""A stand-in for the ssmex executable, for the Pester tests of the SSMEx module.

Installed with pip it becomes a real ssmex.exe (a console-script launcher), so PowerShell
starts it exactly as it starts the real one. Each run appends one JSON line to the file
named by FAKE_SSMEX_RECORD: argv as the C runtime split it, the decoded SSMEX_REQUEST,
and every AWS_* and SSMEX_* variable it received. It then prints FAKE_SSMEX_STDERR to
stderr, FAKE_SSMEX_STDOUT (or a reply shaped like ssmex's) to stdout, and exits with
FAKE_SSMEX_EXIT (default 0).
"""

import base64
import json
import os
import sys


def default_reply(request: dict) -> str:
    command = request.get("command", "")
    parameters = request.get("parameters") or {}
    if request.get("whatIf"):
        return json.dumps(
            {"Command": command, "Argv": ["ssmex", "fake-rendered"], "CommandLine": f"& 'ssmex' 'fake-rendered' '{command}'"}
        )
    if command == "Start-SSMSessionEx" and parameters.get("PassThru"):
        # The test names a live process (its own), because the parent of this Python process
        # is the console-script launcher, which has exited by the time Get-Process runs.
        return json.dumps(
            {
                "SessionId": "fake-0123456789abcdef0",
                "Target": parameters.get("Target"),
                "DocumentName": parameters.get("DocumentName") or "SSM-SessionManagerRunShell",
                "ProcessId": int(os.environ.get("FAKE_SSMEX_PROCESS_ID", "0")),
                "LocalPort": 33389,
                "StreamUrl": "wss://ssmmessages.example.invalid/v1/data-channel/fake-0123456789abcdef0",
                "Alive": True,
            }
        )
    if command == "Get-SSMSessionEx":
        return "[]"
    return ""


def main() -> int:
    encoded = os.environ.get("SSMEX_REQUEST")
    try:
        request = json.loads(base64.b64decode(encoded).decode("utf-8-sig")) if encoded else {}
    except ValueError as error:
        request = {"undecodable": str(error)}
    record = {
        "argv": sys.argv,
        "request": request,
        "environment": {name: value for name, value in os.environ.items() if name.upper().startswith(("AWS_", "SSMEX_"))},
    }
    record_file = os.environ.get("FAKE_SSMEX_RECORD")
    if record_file:
        with open(record_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    if os.environ.get("FAKE_SSMEX_STDERR"):
        print(os.environ["FAKE_SSMEX_STDERR"], file=sys.stderr)
    reply = os.environ.get("FAKE_SSMEX_STDOUT", default_reply(request))
    if reply:
        print(reply)
    return int(os.environ.get("FAKE_SSMEX_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
