"""Launching the platform's RDP client with a password that never reaches a command line.

- Windows: the credential is written to Credential Manager (CredWriteW, target
  `TERMSRV/HOST`, the name mstsc looks up) for the login session only, `mstsc /v:HOST:PORT`
  runs, and the credential is deleted (CredDeleteW) when mstsc exits.
- macOS: an `.rdp` file without the password is opened with Windows App or Microsoft
  Remote Desktop (`open -W -a`). The password goes on the clipboard through pbcopy's
  standard input, and is cleared afterwards if it is still there.
- Linux: xfreerdp3 or xfreerdp reads the credentials from standard input (`/from-stdin:force`).
- SSMEX_RDP_CLIENT names any executable to run like xfreerdp, on every platform.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Mapping

from ssmex.errors import ExitCode, SsmexError
from ssmex.interrupts import interrupts_held
from ssmex.process import command_line, describe

log = logging.getLogger("ssmex.rdp")

ADMINISTRATOR = "Administrator"
CLIENT_VARIABLE = "SSMEX_RDP_CLIENT"
MAC_APPS = ("Windows App", "Microsoft Remote Desktop")
FREERDP_NAMES = ("xfreerdp3", "xfreerdp", "wlfreerdp3", "wlfreerdp")
CLIENT_GRACE_SECONDS = 2
CLIENT_EXIT_WAIT_SECONDS = 5


@dataclass
class RdpTarget:
    """The address and account the RDP client uses. The password is a registered secret."""

    host: str
    port: int
    user: str = ADMINISTRATOR
    password: str = ""

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass
class RdpClient:
    """An RDP client program and how it takes credentials: freerdp, mstsc or mac-app."""

    kind: str
    path: str
    app: str = ""


def find_client(environ: Mapping[str, str] | None = None, platform: str | None = None) -> RdpClient:
    """Find the RDP client: SSMEX_RDP_CLIENT, else mstsc, a macOS app or FreeRDP."""
    environ = os.environ if environ is None else environ
    platform = platform or sys.platform
    override = environ.get(CLIENT_VARIABLE)
    if override:
        found = shutil.which(override, path=environ.get("PATH"))
        if not found:
            raise SsmexError(f"The RDP client {override} (from {CLIENT_VARIABLE}) was not found or is not executable; fix the path.", ExitCode.USAGE)
        return RdpClient("freerdp", found)
    if platform == "win32":
        return RdpClient("mstsc", shutil.which("mstsc") or os.path.join(environ.get("SystemRoot", r"C:\Windows"), "System32", "mstsc.exe"))
    if platform == "darwin":
        for app in MAC_APPS:
            if os.path.isdir(f"/Applications/{app}.app") or os.path.isdir(os.path.expanduser(f"~/Applications/{app}.app")):
                return RdpClient("mac-app", "/usr/bin/open", app=app)
        raise SsmexError(
            "No RDP client was found: install Windows App (or Microsoft Remote Desktop) from the App Store, "
            "or use --no-launch and connect with another client.",
            ExitCode.USAGE,
        )
    for name in FREERDP_NAMES:
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return RdpClient("freerdp", found)
    raise SsmexError(
        "No RDP client was found: install FreeRDP (the freerdp3-x11 or freerdp2-x11 package), set "
        f"{CLIENT_VARIABLE}, or use --no-launch and connect with another client.",
        ExitCode.USAGE,
    )


def _end_client(process: subprocess.Popen) -> int:
    """End a client after Ctrl+C or SIGTERM: let it exit by itself, then terminate, then kill it.

    Ctrl+C in a console reaches the client as well, so it usually exits first. SIGTERM or
    SIGHUP sent to ssmex alone does not, so the client is terminated after a short grace.
    """
    for action, seconds in ((None, CLIENT_GRACE_SECONDS), (process.terminate, CLIENT_EXIT_WAIT_SECONDS), (process.kill, None)):
        if action is not None:
            action()
        try:
            return process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            continue
    return process.wait()


def _run(argv: list[str], stdin_text: str | None = None) -> int:
    log.debug("running RDP client %s", describe(argv))
    process = subprocess.Popen(command_line(argv), stdin=subprocess.PIPE if stdin_text is not None else None)
    try:
        if stdin_text is not None and process.stdin is not None:
            try:
                process.stdin.write(stdin_text.encode("utf-8"))
                process.stdin.close()
            except BrokenPipeError:
                log.debug("the RDP client closed its standard input before reading the credentials")
        return process.wait()
    except BaseException:
        with interrupts_held():
            _end_client(process)
        raise


def freerdp_argv(client: RdpClient, target: RdpTarget) -> list[str]:
    return [client.path, f"/u:{target.user}", f"/v:{target.address}", "/from-stdin:force"]


def freerdp_input(target: RdpTarget) -> str:
    # FreeRDP 2 and 3 prompt for the domain before the password when /d is not given, so the
    # first line is an empty domain and the second the password.
    return f"\n{target.password}\n"


def launch(client: RdpClient, target: RdpTarget) -> int:
    """Run the RDP client until it exits and return its exit status; the credential never outlives it."""
    if client.kind == "freerdp":
        return _run(freerdp_argv(client, target), freerdp_input(target))
    if client.kind == "mstsc":
        credential_target = f"TERMSRV/{target.host}"
        write_windows_credential(credential_target, target.user, target.password)
        try:
            return _run([client.path, f"/v:{target.address}"])
        finally:
            with interrupts_held():
                delete_windows_credential(credential_target)
    if client.kind == "mac-app":
        return _launch_mac_app(client, target)
    raise SsmexError(f"Unknown RDP client kind {client.kind!r}.", ExitCode.ERROR)


def rdp_file_text(target: RdpTarget) -> str:
    """Return an .rdp file for the target. It never contains the password."""
    return f"full address:s:{target.address}\r\nusername:s:{target.user}\r\nprompt for credentials:i:1\r\n"


def _launch_mac_app(client: RdpClient, target: RdpTarget) -> int:
    # NOTE: not run by the test suite, which runs on Linux. `open -W` returns when the app
    # quits, so with the app already running ssmex waits until the user quits it.
    folder = tempfile.mkdtemp(prefix="ssmex-rdp-")
    path = os.path.join(folder, f"{target.host}-{target.port}.rdp")
    copied = False
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(rdp_file_text(target))
        copied = _set_clipboard(target.password)
        if copied:
            print(f"The password of {target.user} is on the clipboard until {client.app} exits.", file=sys.stderr)
        return _run([client.path, "-W", "-a", client.app, path])
    finally:
        with interrupts_held():
            if copied:
                _clear_clipboard_if(target.password)
            shutil.rmtree(folder, ignore_errors=True)


def _set_clipboard(text: str) -> bool:
    try:
        subprocess.run(["pbcopy"], input=text.encode("utf-8"), check=True, timeout=10)
        return True
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("the password could not be put on the clipboard: %s", error)
        return False


def _clear_clipboard_if(text: str) -> None:
    try:
        current = subprocess.run(["pbpaste"], capture_output=True, timeout=10).stdout.decode("utf-8", "replace")
        if current == text:
            subprocess.run(["pbcopy"], input=b"", timeout=10)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("the clipboard could not be cleared: %s", error)


# Windows Credential Manager (wincred.h).
CRED_TYPE_GENERIC = 1
CRED_PERSIST_SESSION = 1


def _credential_structure():
    from ctypes import wintypes

    class CREDENTIALW(ctypes.Structure):
        _fields_ = [
            ("Flags", wintypes.DWORD),
            ("Type", wintypes.DWORD),
            ("TargetName", wintypes.LPWSTR),
            ("Comment", wintypes.LPWSTR),
            ("LastWritten", wintypes.FILETIME),
            ("CredentialBlobSize", wintypes.DWORD),
            ("CredentialBlob", ctypes.POINTER(ctypes.c_ubyte)),
            ("Persist", wintypes.DWORD),
            ("AttributeCount", wintypes.DWORD),
            ("Attributes", ctypes.c_void_p),
            ("TargetAlias", wintypes.LPWSTR),
            ("UserName", wintypes.LPWSTR),
        ]

    return CREDENTIALW


def write_windows_credential(target_name: str, user: str, password: str) -> None:
    """Store user and password for target_name in Credential Manager for this login session."""
    # NOTE: the test suite runs on Linux, so this and delete_windows_credential have not been
    # run there. mstsc looks the credential up as TERMSRV/HOST, without the port.
    # NOTE: an existing credential with the same target name is replaced, and deleted on exit.
    # Keeping it would need CredReadW and a copy of its blob, restored afterwards.
    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined]
    structure = _credential_structure()
    blob = password.encode("utf-16-le")
    buffer = (ctypes.c_ubyte * len(blob)).from_buffer_copy(blob)
    credential = structure()
    credential.Type = CRED_TYPE_GENERIC
    credential.TargetName = target_name
    credential.CredentialBlobSize = len(blob)
    credential.CredentialBlob = ctypes.cast(buffer, ctypes.POINTER(ctypes.c_ubyte))
    credential.Persist = CRED_PERSIST_SESSION
    credential.UserName = user
    if not advapi32.CredWriteW(ctypes.byref(credential), 0):
        error = ctypes.get_last_error()  # type: ignore[attr-defined]
        raise SsmexError(
            f"Writing the credential for {target_name} to Windows Credential Manager failed (error {error}); "
            "use --no-launch and type the password yourself.",
            ExitCode.ERROR,
        )
    ctypes.memset(buffer, 0, len(blob))
    log.debug("stored the credential of %s for %s in Credential Manager", user, target_name)


def delete_windows_credential(target_name: str) -> None:
    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined]
    if advapi32.CredDeleteW(target_name, CRED_TYPE_GENERIC, 0):
        log.debug("deleted the credential for %s from Credential Manager", target_name)
    else:
        log.warning(
            "deleting the credential for %s from Credential Manager failed (error %d); remove it with "
            "`cmdkey /delete:%s`",
            target_name,
            ctypes.get_last_error(),  # type: ignore[attr-defined]
            target_name,
        )
