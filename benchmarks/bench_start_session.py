"""Time from command start to the plugin's start: ssmex next to `aws ssm start-session`.

Both run against the emulator's SSM endpoint on 127.0.0.1 with fake credentials and the
test suite's stand-in plugin, which records the moment it starts. Prints the median and
range of several runs; asserts nothing.

    python benchmarks/bench_start_session.py [--runs 9] [--ssmex-exe dist/ssmex]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "guard"))

import ssmex_network_guard  # noqa: E402

from conftest import INSTANCE_ID, install_standin  # noqa: E402
from ssmex.emulator.api import EmulatedInstance, Emulator, SsmApiServer  # noqa: E402

ssmex_network_guard.install()


def environment(folder: Path, plugin_dir: Path, record_dir: Path) -> dict:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    (folder / "config").write_text("")
    (folder / "credentials").write_text("")
    env.update(
        AWS_CONFIG_FILE=str(folder / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(folder / "credentials"),
        AWS_ACCESS_KEY_ID="AKIAEXAMPLEBENCH0001",
        AWS_SECRET_ACCESS_KEY="bench-secret",
        AWS_EC2_METADATA_DISABLED="true",
        STANDIN_RECORD_DIR=str(record_dir),
        SSMEX_STATE_DIR=str(folder / "state"),
        SSMEX_CACHE_DIR=str(folder / "cache"),
        PATH=f"{plugin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT / "tests" / "guard"),
    )
    return env


def time_to_plugin(command: list[str], env: dict, record_dir: Path) -> float:
    for name in glob.glob(str(record_dir / "run-*.json")):
        os.remove(name)
    started = time.time()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if completed.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {completed.stderr.strip()}")
    (record,) = glob.glob(str(record_dir / "run-*.json"))
    with open(record, encoding="utf-8") as handle:
        return json.load(handle)["started_at"] - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--ssmex-exe", help="also time this ssmex executable")
    options = parser.parse_args()

    emulator = Emulator([EmulatedInstance(INSTANCE_ID)])
    with SsmApiServer(emulator) as server, tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        plugin = install_standin(folder / "bin", folder / "runs")
        env = environment(folder, plugin.path.parent, plugin.record_dir)
        arguments = ["--target", INSTANCE_ID, "--region", "us-east-1", "--endpoint-url", server.endpoint_url]
        commands = {"python -m ssmex": [sys.executable, "-m", "ssmex", "start-session", *arguments]}
        console_script = shutil.which("ssmex", path=os.path.dirname(sys.executable))
        if console_script:
            commands["ssmex (console script)"] = [console_script, "start-session", *arguments]
        if options.ssmex_exe:
            commands["ssmex executable"] = [str(Path(options.ssmex_exe).resolve()), "start-session", *arguments]
        aws = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
        if aws:
            commands["aws ssm start-session"] = [aws, "ssm", "start-session", *arguments]

        print(f"time from command start to plugin start, {options.runs} runs each (seconds)")
        print(f"{'command':28} {'median':>8} {'min':>8} {'max':>8}")
        medians = {}
        for label, command in commands.items():
            time_to_plugin(command, env, plugin.record_dir)  # warm the file cache
            samples = [time_to_plugin(command, env, plugin.record_dir) for _ in range(options.runs)]
            medians[label] = statistics.median(samples)
            print(f"{label:28} {medians[label]:8.3f} {min(samples):8.3f} {max(samples):8.3f}")
        if "aws ssm start-session" in medians:
            for label, median in medians.items():
                if label != "aws ssm start-session":
                    print(f"{label}: {median / medians['aws ssm start-session']:.2f} x the AWS CLI's median (target: at most 0.5)")


if __name__ == "__main__":
    main()
