"""Records of background sessions, one JSON file each in the platformdirs state folder."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Iterator

import platformdirs

from ssmex.process import process_alive

log = logging.getLogger("ssmex.records")


def state_dir() -> str:
    """Return the folder for ssmex's state: SSMEX_STATE_DIR, else the platformdirs one."""
    return os.environ.get("SSMEX_STATE_DIR") or platformdirs.user_state_dir("ssmex", appauthor=False)


def sessions_dir() -> str:
    path = os.path.join(state_dir(), "sessions")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


# The extra field with the process id of a foreground command, such as ssmex rdp, that uses
# the session. `ssmex sessions stop --all` leaves the session alone while that process runs.
HELD_BY = "HeldBy"


@dataclass
class SessionRecord:
    """A background session as `ssmex sessions` shows it. It never contains the token."""

    SessionId: str
    Target: str
    DocumentName: str
    ProcessId: int
    StartTime: str
    Region: str
    Endpoint: str
    Profile: str | None = None
    LocalPort: int | None = None
    StreamUrl: str | None = None
    Client: str = "plugin"
    LogFile: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        return process_alive(self.ProcessId)

    @property
    def holder(self) -> int | None:
        """Return the process id of the running command that uses this session, if any."""
        pid = self.extra.get(HELD_BY)
        return pid if isinstance(pid, int) and pid != os.getpid() and process_alive(pid) else None

    def public(self) -> dict:
        """Return the record as printed: the fields plus whether its process is alive."""
        data = asdict(self)
        data.pop("extra")
        data.update(self.extra)
        data["Alive"] = self.alive
        return data


def _path(session_id: str) -> str:
    safe = "".join(char for char in session_id if char.isalnum() or char in "-_.")
    return os.path.join(sessions_dir(), f"{safe}.json")


def save(record: SessionRecord) -> str:
    """Write a record atomically and return its path."""
    path = _path(record.SessionId)
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(asdict(record), handle, indent=2)
    os.replace(temporary, path)
    return path


def load_all() -> Iterator[SessionRecord]:
    """Yield every readable record, oldest first; unreadable files are logged and skipped."""
    folder = sessions_dir()
    records = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as handle:
                records.append(SessionRecord(**json.load(handle)))
        except (OSError, ValueError, TypeError) as error:
            log.warning("skipped the unreadable session record %s: %s", path, error)
    records.sort(key=lambda record: record.StartTime)
    return iter(records)


def find(session_id: str) -> SessionRecord | None:
    for record in load_all():
        if record.SessionId == session_id:
            return record
    return None


def remove(session_id: str) -> None:
    try:
        os.remove(_path(session_id))
    except FileNotFoundError:
        pass
