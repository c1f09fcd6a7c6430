"""Size and start-up time of the ssmex executable, next to python -m ssmex and the AWS CLI.

Prints, in one run:
- the size of the onefile executable and of the onedir folder;
- the start-up time of `ssmex --version` for onefile, onedir and python -m ssmex;
- the time from command start to the plugin's start for each of them and for
  `aws ssm start-session`, against the emulator's SSM endpoint on 127.0.0.1 with the
  test suite's stand-in plugin (the same measurement as bench_start_session.py).

Build first with `python build/build.py`. Figures are medians of several runs; nothing
is asserted, and the commands take turns so that other load on the machine affects
them alike. Targets: onefile at most 12 MB, its time to plugin start no slower than
the AWS CLI's.

    python benchmarks/bench_executable.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(ROOT / "build"))

from bench_start_session import environment, time_to_plugin  # noqa: E402
from build import onedir_executable, onefile_path  # noqa: E402
from conftest import INSTANCE_ID, install_standin  # noqa: E402
from ssmex.emulator.api import EmulatedInstance, Emulator, SsmApiServer  # noqa: E402


def folder_size(folder: Path) -> int:
    return sum(path.lstat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def time_version(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command + ["--version"], env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} --version failed: {completed.stderr.strip()}")
    return elapsed


def interleaved(commands: dict[str, list[str]], measure: Callable[[list[str]], float], runs: int) -> dict[str, list[float]]:
    """Measure each command runs times, taking turns, so that a change in the machine's
    load during the run affects every command alike. The first round warms the file
    cache and is not counted."""
    samples: dict[str, list[float]] = {label: [] for label in commands}
    for round_number in range(runs + 1):
        for label, command in commands.items():
            value = measure(command)
            if round_number > 0:
                samples[label].append(value)
    return samples


def median_line(label: str, samples: list[float]) -> str:
    return f"  {label:28} {statistics.median(samples):8.3f} {min(samples):8.3f} {max(samples):8.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per figure (default: %(default)s)")
    options = parser.parse_args()

    onefile = onefile_path()
    onedir = onedir_executable()
    missing = [str(path) for path in (onefile, onedir) if not path.is_file()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not found; build first with: python build/build.py")

    print(f"ssmex executable on {sys.platform}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print("size")
    print(f"  onefile {onefile.relative_to(ROOT)}: {onefile.stat().st_size / 1e6:.2f} MB (target: at most 12 MB)")
    print(f"  onedir {onedir.parent.relative_to(ROOT)}/: {folder_size(onedir.parent) / 1e6:.2f} MB in total")

    commands = {
        "onefile": [str(onefile)],
        "onedir": [str(onedir)],
        "python -m ssmex": [sys.executable, "-m", "ssmex"],
    }
    emulator = Emulator([EmulatedInstance(INSTANCE_ID)])
    with SsmApiServer(emulator) as server, tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        plugin = install_standin(folder / "bin", folder / "runs")
        env = environment(folder, plugin.path.parent, plugin.record_dir)

        print(f"start-up of --version, {options.runs} runs each (seconds)")
        print(f"  {'command':28} {'median':>8} {'min':>8} {'max':>8}")
        samples = interleaved(commands, lambda command: time_version(command, env), options.runs)
        for label, values in samples.items():
            print(median_line(label, values))

        arguments = ["start-session", "--target", INSTANCE_ID, "--region", "us-east-1", "--endpoint-url", server.endpoint_url]
        session_commands = {label: command + arguments for label, command in commands.items()}
        aws = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
        if aws:
            session_commands["aws ssm start-session"] = [aws, "ssm", *arguments]
        else:
            print("  (the AWS CLI was not found; install the test extra to compare with it)")

        print(f"time from command start to plugin start, {options.runs} runs each (seconds)")
        print(f"  {'command':28} {'median':>8} {'min':>8} {'max':>8}")
        samples = interleaved(session_commands, lambda command: time_to_plugin(command, env, plugin.record_dir), options.runs)
        medians = {label: statistics.median(values) for label, values in samples.items()}
        for label, values in samples.items():
            print(median_line(label, values))
        if "aws ssm start-session" in medians:
            print(f"  onefile / AWS CLI: {medians['onefile'] / medians['aws ssm start-session']:.2f} (target: at most 1.00)")


if __name__ == "__main__":
    main()
