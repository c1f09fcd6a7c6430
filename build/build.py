"""Build the ssmex executable for the machine this runs on.

    python build/build.py              # onefile and onedir
    python build/build.py --only onefile

Produces dist/ssmex (dist/ssmex.exe on Windows), the onedir build in dist/ssmex-onedir/
and its archive (dist/ssmex-onedir.zip on Windows, dist/ssmex-onedir.tar.gz elsewhere,
because the POSIX onedir build contains symbolic links that zip files do not keep).
PyInstaller's work folders go to .build/. Needs the build extra: pip install -e '.[build]'.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
DIST = ROOT / "dist"
WORK = ROOT / ".build"
SPEC = BUILD / "ssmex.spec"
ONEDIR_NAME = "ssmex-onedir"
IS_WINDOWS = os.name == "nt"

sys.path.insert(0, str(BUILD))
import ssmex_bundle  # noqa: E402


def onefile_path() -> Path:
    return DIST / ("ssmex.exe" if IS_WINDOWS else "ssmex")


def onedir_executable() -> Path:
    return DIST / ONEDIR_NAME / ("ssmex.exe" if IS_WINDOWS else "ssmex")


def onedir_archive_path() -> Path:
    return DIST / (f"{ONEDIR_NAME}.zip" if IS_WINDOWS else f"{ONEDIR_NAME}.tar.gz")


def check_kept_services() -> None:
    """Stop before building when the source calls a service the executable would lack."""
    import botocore

    missing = ssmex_bundle.missing_services(ROOT / "src" / "ssmex", Path(botocore.__file__).parent)
    if missing:
        lines = [f"  {service} (called in {', '.join(files)})" for service, files in sorted(missing.items())]
        sys.exit(
            "ssmex or botocore creates clients for services the executable does not keep:\n"
            + "\n".join(lines)
            + "\nAdd them to KEPT_SERVICES in build/ssmex_bundle.py."
        )


def run_pyinstaller(mode: str) -> None:
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(DIST),
        "--workpath",
        str(WORK / mode),
        str(SPEC),
        "--",
        "--mode",
        mode,
        "--onedir-name",
        ONEDIR_NAME,
    ]
    started = time.monotonic()
    print(f"building the {mode} executable", flush=True)
    subprocess.run(command, cwd=ROOT, check=True)
    print(f"built the {mode} executable in {time.monotonic() - started:.0f} s", flush=True)


def archive_onedir() -> Path:
    folder = DIST / ONEDIR_NAME
    archive = onedir_archive_path()
    archive.unlink(missing_ok=True)
    if IS_WINDOWS:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as output:
            for path in sorted(folder.rglob("*")):
                output.write(path, path.relative_to(DIST))
    else:
        with tarfile.open(archive, "w:gz") as output:
            output.add(folder, arcname=ONEDIR_NAME)
    return archive


def smoke_test(executable: Path) -> None:
    """Run --version and check that the executable reports itself as frozen."""
    completed = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=120)
    output = completed.stdout.strip()
    if completed.returncode != 0 or "frozen executable" not in output:
        sys.exit(f"{executable} --version failed (exit status {completed.returncode}):\n{completed.stdout}{completed.stderr}")
    print(f"{executable.relative_to(ROOT)}: {output}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Build the ssmex executable with PyInstaller.")
    parser.add_argument("--only", choices=["onefile", "onedir"], help="build one of the two (default: both)")
    args = parser.parse_args()

    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        sys.exit("PyInstaller is not installed; run: python -m pip install -e '.[build]'")
    check_kept_services()

    modes = [args.only] if args.only else ["onefile", "onedir"]
    if "onedir" in modes:
        shutil.rmtree(DIST / ONEDIR_NAME, ignore_errors=True)
    for mode in modes:
        run_pyinstaller(mode)

    if "onefile" in modes:
        smoke_test(onefile_path())
    if "onedir" in modes:
        smoke_test(onedir_executable())
        print(f"archived the onedir build as {archive_onedir().relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
