"""Fixtures shared by the suite: the network guard, an isolated AWS environment, the
emulator's SSM endpoint, the stand-in plugin, and a runner for the ssmex command."""

from __future__ import annotations

import glob
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
GUARD = TESTS / "guard"
sys.path.insert(0, str(GUARD))

import ssmex_network_guard  # noqa: E402

from ssmex.emulator.api import EmulatedInstance, Emulator, SsmApiServer  # noqa: E402
from ssmex.emulator.ec2 import Ec2ApiServer  # noqa: E402

ssmex_network_guard.install()


def _restore_keyboard_signals() -> None:
    """Give the children the tests start the Ctrl+C and Ctrl+\\ a terminal user's commands get.

    A CI job started in the background by a non-interactive shell inherits SIGINT and
    SIGQUIT ignored, and every process the tests start would inherit that too, so Ctrl+C
    typed on a test's pty would not interrupt them. An interactive shell runs commands with both
    at their defaults; the tests model that user.
    """
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if hasattr(signal, "SIGQUIT") and signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


_restore_keyboard_signals()

INSTANCE_ID = "i-0123456789abcdef0"
ACCESS_KEY_ID = "AKIAEXAMPLETESTKEY01"
SECRET_ACCESS_KEY = "test-secret-key-do-not-print-0123456789"
SESSION_TOKEN = "test-session-token-do-not-print-abcdef"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--ssmex-exe", default=None, help="run the end-to-end tests against this ssmex executable")


@pytest.fixture(scope="session")
def guard_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("guard") / "violations.log"
    path.touch()
    os.environ["SSMEX_TEST_GUARD_LOG"] = str(path)
    return path


@pytest.fixture(autouse=True)
def no_network_escapes(guard_log: Path):
    """Fail any test during which this process or a child reached past loopback."""
    before = guard_log.read_text()
    yield
    after = guard_log.read_text()
    assert after == before, f"a test tried to reach a non-loopback address:\n{after[len(before):]}"


@pytest.fixture(autouse=True)
def aws_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give each test fake credentials, empty AWS config files and its own state folder."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "SSMEX_")) and name != "SSMEX_TEST_GUARD_LOG" and name != "SSMEX_TEST_PLUGIN":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text("")
    (home / ".aws" / "credentials").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("SSMEX_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SSMEX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    pythonpath = os.pathsep.join(filter(None, [str(GUARD), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", pythonpath)
    return home


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(
        instances=[
            EmulatedInstance(INSTANCE_ID, name="web-1"),
            EmulatedInstance("i-0fedcba9876543210", name="offline-1", ping_status="ConnectionLost"),
        ],
        deterministic=True,
    )


@pytest.fixture
def ssm_endpoint(emulator: Emulator):
    with SsmApiServer(emulator) as server:
        yield server


@pytest.fixture
def ec2_endpoint(emulator: Emulator, monkeypatch: pytest.MonkeyPatch):
    """The emulator's EC2 endpoint, named in AWS_ENDPOINT_URL_EC2 as botocore reads it."""
    with Ec2ApiServer(emulator) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", server.endpoint_url)
        yield server


@dataclass
class StandinPlugin:
    """The stand-in plugin installed as an executable named session-manager-plugin."""

    path: Path
    record_dir: Path

    def runs(self) -> list[dict]:
        result = []
        for name in sorted(glob.glob(str(self.record_dir / "run-*.json")), key=os.path.getmtime):
            with open(name, encoding="utf-8") as handle:
                result.append(json.load(handle))
        return result

    def only_run(self) -> dict:
        runs = self.runs()
        assert len(runs) == 1, f"expected one plugin run, found {len(runs)}"
        return runs[0]


def install_standin(folder: Path, record_dir: Path) -> StandinPlugin:
    folder.mkdir(parents=True, exist_ok=True)
    record_dir.mkdir(parents=True, exist_ok=True)
    path = folder / "session-manager-plugin"
    source = (TESTS / "standin_plugin.py").read_text()
    path.write_text(f"#!{sys.executable}\n" + source)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return StandinPlugin(path=path, record_dir=record_dir)


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandinPlugin:
    """The stand-in plugin, first on PATH."""
    plugin = install_standin(tmp_path / "bin", tmp_path / "plugin-runs")
    monkeypatch.setenv("STANDIN_RECORD_DIR", str(plugin.record_dir))
    monkeypatch.setenv("PATH", f"{plugin.path.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return plugin


@pytest.fixture
def ssmex_command(request: pytest.FixtureRequest) -> list[str]:
    """The ssmex command under test: the executable from --ssmex-exe, else python -m ssmex."""
    executable = request.config.getoption("--ssmex-exe")
    if executable:
        return [str(Path(executable).resolve())]
    return [sys.executable, "-m", "ssmex"]


@pytest.fixture
def run_ssmex(ssmex_command: list[str]):
    """Run ssmex as a real child process and return the completed process (text output)."""

    def run(*args: str, env: dict | None = None, timeout: float = 60, input: str | None = None):
        environment = dict(os.environ)
        environment.update(env or {})
        return subprocess.run(
            ssmex_command + list(args),
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    return run


def wait_until_gone(pid: int, timeout: float = 10) -> bool:
    """Wait until a process has exited; return whether it did within the timeout."""
    from ssmex.process import process_alive

    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _real_plugin_path() -> str | None:
    named = os.environ.get("SSMEX_TEST_PLUGIN")
    if named:
        return named
    return shutil.which("session-manager-plugin")


# The official plugin, looked up once before any fixture puts the stand-in on PATH.
REAL_PLUGIN = _real_plugin_path()
