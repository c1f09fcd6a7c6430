"""Time from `ssmex rdp` start until the RDP client has connected, and the whole run to cleanup.

Runs against the emulator's SSM and EC2 endpoints on 127.0.0.1 with fake credentials,
the test suite's stand-in plugin in port mode and its stand-in RDP client, which exits at
once after probing the forwarded port. Prints the median and range of several runs;
asserts nothing.

    python benchmarks/bench_rdp.py [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "guard"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ssmex_network_guard  # noqa: E402

from bench_start_session import environment  # noqa: E402
from conftest import install_standin  # noqa: E402
from everyday_support import install_rdp_client, windows_instance, write_key  # noqa: E402
from ssmex.emulator.api import Emulator, SsmApiServer  # noqa: E402
from ssmex.emulator.ec2 import Ec2ApiServer  # noqa: E402

ssmex_network_guard.install()


def one_run(command: list[str], env: dict, client_record: Path) -> tuple[float, float]:
    """Return (seconds until the client had connected and written its record, seconds for the whole command)."""
    if client_record.exists():
        client_record.unlink()
    started = time.time()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    finished = time.time()
    if completed.returncode != 0:
        raise SystemExit(f"ssmex rdp failed: {completed.stderr.strip()}")
    record = json.loads(client_record.read_text())
    if not record["echo"]:
        raise SystemExit("the stand-in RDP client could not reach the forwarded port")
    return client_record.stat().st_mtime - started, finished - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    options = parser.parse_args()

    emulator = Emulator([windows_instance()])
    with SsmApiServer(emulator) as ssm, Ec2ApiServer(emulator) as ec2, tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        plugin = install_standin(folder / "bin", folder / "runs")
        client = install_rdp_client(folder / "client")
        key = write_key(folder / "key.pem", "pkcs1")
        env = environment(folder, plugin.path.parent, plugin.record_dir)
        env.update(
            AWS_ENDPOINT_URL_EC2=ec2.endpoint_url,
            STANDIN_MODE="port",
            SSMEX_RDP_CLIENT=str(client.path),
            STANDIN_RDP_RECORD=str(client.record_path),
        )
        command = [sys.executable, "-m", "ssmex", "rdp", "win-1", "--key-file", str(key), "--region", "us-east-1",
                   "--endpoint-url", ssm.endpoint_url]

        one_run(command, env, client.record_path)  # warm the file cache
        samples = [one_run(command, env, client.record_path) for _ in range(options.runs)]
        to_client = [sample[0] for sample in samples]
        total = [sample[1] for sample in samples]
        print(f"ssmex rdp against the emulator, {options.runs} runs (seconds)")
        print(f"{'measure':34} {'median':>8} {'min':>8} {'max':>8}")
        print(f"{'command start to client connected':34} {statistics.median(to_client):8.3f} {min(to_client):8.3f} {max(to_client):8.3f}")
        print(f"{'whole run, cleanup included':34} {statistics.median(total):8.3f} {min(total):8.3f} {max(total):8.3f}")
        print(f"sessions started {len(emulator.sessions)}, terminated "
              f"{sum(session.status == 'Terminated' for session in emulator.sessions.values())}")


if __name__ == "__main__":
    main()
