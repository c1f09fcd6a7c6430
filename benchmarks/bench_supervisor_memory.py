"""Measure the resident memory of the ssmex supervisor of a background session.

Starts the emulator's SSM endpoint on 127.0.0.1 and puts the test suite's stand-in
plugin on PATH. Then runs `ssmex start-session --pass-thru` for a port forward with fake
credentials in a throw-away HOME. Reads the supervisor's resident set size once it is
ready, and again after the stand-in has fetched credentials and called ResumeSession
repeatedly. The memory while the supervisor calls TerminateSession on stop is not measured. Target: at most 60 MB. Linux reads /proc; macOS uses ps; Windows is not
measured by this script.

Run: python benchmarks/bench_supervisor_memory.py [--resumes N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import INSTANCE_ID, install_standin  # noqa: E402

from ssmex.emulator.api import EmulatedInstance, Emulator, SsmApiServer  # noqa: E402

TARGET_MB = 60.0


def resident_kib(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM (peak) in KiB on Linux, or the ps RSS elsewhere."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        values = {}
        for line in status.read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
        return values
    output = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, check=True).stdout
    return {"VmRSS": int(output.strip())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resumes", type=int, default=50, help="ResumeSession calls to make before the second reading")
    parser.add_argument(
        "--source",
        choices=["environment", "process"],
        default="process",
        help="where ssmex gets credentials: fake keys in the environment (frozen in the supervisor), or a "
        "credential_process profile whose keys expire in 60 seconds, so every fetch refreshes (default: %(default)s)",
    )
    args = parser.parse_args()
    if os.name == "nt":
        print("This benchmark reads memory through /proc or ps and does not run on Windows.")
        return 1

    with tempfile.TemporaryDirectory() as folder, SsmApiServer(Emulator([EmulatedInstance(INSTANCE_ID)])) as endpoint:
        root = Path(folder)
        home = root / "home"
        (home / ".aws").mkdir(parents=True)
        for name in ("config", "credentials"):
            (home / ".aws" / name).write_text("")
        profile_options: list[str] = []
        if args.source == "process":
            (root / "process").mkdir()
            process = f"{sys.executable} {ROOT / 'tests' / 'credential_process.py'} {root / 'process'}"
            (home / ".aws" / "config").write_text(f"[profile bench]\ncredential_process = {process}\n")
            profile_options = ["--profile", "bench"]
        standin = install_standin(root / "bin", root / "runs")
        trigger = root / "resume"
        environment = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "SSMEX_"))}
        environment.update(
            HOME=str(home),
            PATH=f"{standin.path.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            AWS_CONFIG_FILE=str(home / ".aws" / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(home / ".aws" / "credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            SSMEX_STATE_DIR=str(root / "state"),
            STANDIN_RECORD_DIR=str(standin.record_dir),
            STANDIN_MODE="port",
            STANDIN_RESUME_TRIGGER=str(trigger),
        )
        if args.source == "environment":
            environment.update(AWS_ACCESS_KEY_ID="AKIABENCHMARK0000001", AWS_SECRET_ACCESS_KEY="benchmark-secret")
        command = [sys.executable, "-m", "ssmex"]
        started = time.monotonic()
        completed = subprocess.run(
            command + ["start-session", "--target", INSTANCE_ID, "--region", "us-east-1", "--endpoint-url", endpoint.endpoint_url,
                       "--document-name", "AWS-StartPortForwardingSession", "--parameters", "portNumber=22", "--pass-thru", *profile_options],
            env=environment, capture_output=True, text=True, timeout=120,
        )
        elapsed = time.monotonic() - started
        if completed.returncode != 0:
            print(completed.stderr)
            return 1
        record = json.loads(completed.stdout)
        pid = record["ProcessId"]
        try:
            ready = resident_kib(pid)
            for count in range(1, args.resumes + 1):
                trigger.touch()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    runs = standin.runs()
                    if runs and len(runs[0].get("resumes", [])) >= count:
                        break
                    time.sleep(0.01)
                else:
                    print(f"resume {count} did not happen within 30 seconds")
                    return 1
            after = resident_kib(pid)
        finally:
            subprocess.run(command + ["sessions", "stop", record["SessionId"]], env=environment, capture_output=True, timeout=60)

    print(f"machine: {platform.platform()}, Python {platform.python_version()}")
    print(f"credentials: {args.source}")
    print(f"start-session --pass-thru returned after {elapsed:.2f} s (supervisor pid {pid})")
    print(f"supervisor resident memory when ready: {ready['VmRSS'] / 1024:.1f} MiB")
    print(f"after {args.resumes} credential fetches and ResumeSession calls: {after['VmRSS'] / 1024:.1f} MiB", end="")
    print(f" (peak {after['VmHWM'] / 1024:.1f} MiB)" if "VmHWM" in after else "")
    peak = max(after.get("VmHWM", 0), after["VmRSS"]) / 1024
    print(f"target {TARGET_MB:g} MiB: {'met' if peak <= TARGET_MB else 'missed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
