"""Finding session-manager-plugin, reading its version and building its launch.

The argument vector and environment follow what the AWS CLI hands the plugin:
`session-manager-plugin RESPONSE REGION StartSession PROFILE REQUEST ENDPOINT`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ssmex.errors import ExitCode, SsmexError

log = logging.getLogger("ssmex.plugin")

PLUGIN_NAME = "session-manager-plugin"
INSTALL_PAGE = "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"
RESPONSE_VARIABLE = "AWS_SSM_START_SESSION_RESPONSE"
# Plugins newer than this read the StartSession response from RESPONSE_VARIABLE; older
# ones take the JSON, token included, on the command line.
LAST_VERSION_WITHOUT_ENVIRONMENT = "1.2.497.0"
VERSION_TIMEOUT_SECONDS = 10

_VERSION_PATTERN = re.compile(r"^\d+(\.\d+){0,3}$")

# Plugin versions with known problems: (comparison, version, OS names or None for all, problem).
KNOWN_PROBLEMS: Sequence[tuple[str, str, tuple[str, ...] | None, str]] = (
    ("<=", "1.2.497.0", None, "it cannot take the session token in the environment, so other local users can read it in the process list"),
    ("<", "1.2.339.0", None, "it closes idle port forwarding sessions after about a minute"),
    ("==", "1.2.688.0", None, "it stalls when it finds no local credentials (fixed in 1.2.694.0)"),
    ("<", "1.2.792.0", ("nt",), "it garbles non-ASCII input and output on Windows consoles"),
    ("<", "1.2.814.0", None, "it sends SSO token refreshes to the SSM endpoint, where they fail"),
)


def parse_version(text: str) -> tuple[int, ...] | None:
    """Parse a plugin version as the AWS CLI does, or return None when unparsable.

    All whitespace is removed; 1 to 4 dotted numeric parts are accepted.
    """
    cleaned = re.sub(r"\s+", "", text)
    if not _VERSION_PATTERN.match(cleaned):
        return None
    return tuple(int(part) for part in cleaned.split("."))


def _padded(version: tuple[int, ...]) -> tuple[int, ...]:
    return version + (0,) * (4 - len(version))


def version_greater(version: tuple[int, ...], other: str) -> bool:
    """Return whether version is strictly greater than the dotted version other."""
    return _padded(version) > _padded(parse_version(other) or (0,))


def known_problems(version: tuple[int, ...] | None, os_name: str | None = None) -> list[str]:
    """Return the known problems of a plugin version on this OS, as sentences."""
    if version is None:
        return []
    os_name = os_name or os.name
    padded = _padded(version)
    problems = []
    for operator, bound, systems, problem in KNOWN_PROBLEMS:
        limit = _padded(parse_version(bound) or (0,))
        if systems is not None and os_name not in systems:
            continue
        if (
            (operator == "<=" and padded <= limit)
            or (operator == "<" and padded < limit)
            or (operator == "==" and padded == limit)
        ):
            problems.append(problem)
    return problems


@dataclass
class Plugin:
    """A session-manager-plugin executable and what its --version printed."""

    path: str
    version_text: str
    version: tuple[int, ...] | None

    @property
    def version_label(self) -> str:
        return ".".join(str(part) for part in self.version) if self.version else repr(self.version_text.strip())

    @property
    def takes_environment(self) -> bool:
        """Whether the plugin reads the StartSession response from the environment."""
        return self.version is not None and version_greater(self.version, LAST_VERSION_WITHOUT_ENVIRONMENT)

    def warnings(self) -> list[str]:
        """Return warnings about this plugin, as sentences."""
        problems = known_problems(self.version)
        result = [f"session-manager-plugin {self.version_label}: {problem}; upgrade it from {INSTALL_PAGE}" for problem in problems]
        if self.version is None:
            result.append(
                f"session-manager-plugin --version printed {self.version_text.strip()!r}, which is not a version, so "
                "the session token goes on its command line where other local users can read it; upgrade the plugin"
            )
        return result


def standard_locations(os_name: str | None = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Return where the plugin's installers put it on this OS, in search order."""
    os_name = os_name or os.name
    environ = os.environ if environ is None else environ
    if os_name == "nt":
        locations = []
        for variable in ("ProgramFiles", "ProgramW6432", "ProgramFiles(x86)"):
            base = environ.get(variable)
            if base:
                locations.append(os.path.join(base, "Amazon", "SessionManagerPlugin", "bin", "session-manager-plugin.exe"))
        local = environ.get("LOCALAPPDATA")
        if local:
            locations.append(os.path.join(local, "Programs", "SessionManagerPlugin", "bin", "session-manager-plugin.exe"))
            locations.append(os.path.join(local, "Amazon", "SessionManagerPlugin", "bin", "session-manager-plugin.exe"))
        return list(dict.fromkeys(locations))
    locations = [
        "/usr/local/sessionmanagerplugin/bin/session-manager-plugin",
        "/usr/local/bin/session-manager-plugin",
    ]
    if sys.platform == "darwin":
        locations.append("/opt/homebrew/bin/session-manager-plugin")
    else:
        locations.append("/usr/bin/session-manager-plugin")
    return locations


def _is_executable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_plugin(
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
    locations: Sequence[str] | None = None,
) -> str:
    """Find the plugin: the explicit path, SSMEX_PLUGIN, PATH, then standard locations.

    Raises SsmexError naming every place looked at when nothing usable is found.
    """
    environ = os.environ if environ is None else environ
    for path, origin in ((explicit, "--plugin"), (environ.get("SSMEX_PLUGIN"), "SSMEX_PLUGIN")):
        if not path:
            continue
        if not os.path.exists(path):
            raise SsmexError(
                f"The plugin {path} (from {origin}) does not exist; fix the path or install session-manager-plugin from {INSTALL_PAGE}.",
                ExitCode.PLUGIN_UNAVAILABLE,
            )
        if not _is_executable_file(path):
            raise SsmexError(
                f"The plugin {path} (from {origin}) is not an executable file; check its permissions (chmod +x) or the path.",
                ExitCode.PLUGIN_UNAVAILABLE,
            )
        return path
    found = shutil.which(PLUGIN_NAME, path=environ.get("PATH", os.defpath))
    if found:
        return found
    searched = list(standard_locations(environ=environ) if locations is None else locations)
    for path in searched:
        if _is_executable_file(path):
            return path
    raise SsmexError(
        f"session-manager-plugin was not found in --plugin, SSMEX_PLUGIN, PATH or {', '.join(searched)}; "
        f"install it from {INSTALL_PAGE} or name it with --plugin.",
        ExitCode.PLUGIN_UNAVAILABLE,
    )


def _version_cache_path() -> str:
    import platformdirs

    folder = os.environ.get("SSMEX_CACHE_DIR") or platformdirs.user_cache_dir("ssmex", appauthor=False)
    return os.path.join(folder, "plugin-versions.json")


def _file_identity(path: str) -> str:
    """Return a key that changes when the file at path is replaced or rewritten."""
    real = os.path.realpath(path)
    status = os.stat(real)
    return f"{real}|{status.st_size}|{status.st_mtime_ns}|{status.st_ino}"


def _cached_version(identity: str) -> str | None:
    try:
        with open(_version_cache_path(), encoding="utf-8") as handle:
            value = json.load(handle).get(identity)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _store_version(identity: str, text: str) -> None:
    path = _version_cache_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path, encoding="utf-8") as handle:
                cache = json.load(handle)
            if not isinstance(cache, dict):
                cache = {}
        except (OSError, ValueError):
            cache = {}
        # Keep the file small: only the most recent plugins matter.
        cache = dict(list(cache.items())[-15:])
        cache[identity] = text
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(cache, handle)
        os.replace(temporary, path)
    except OSError as error:
        log.debug("could not cache the plugin version in %s: %s", path, error)


def read_plugin(path: str) -> Plugin:
    """Read the plugin's version as the AWS CLI parses it.

    `PATH --version` runs once per plugin file. Its output is cached under the file's
    path, size, modification time and inode, so an upgrade is noticed at once.
    """
    if not _is_executable_file(path):
        raise SsmexError(
            f"The plugin {path} is not an executable file; check its permissions or reinstall it.",
            ExitCode.PLUGIN_UNAVAILABLE,
        )
    identity = _file_identity(path)
    cached = _cached_version(identity)
    if cached is not None:
        log.debug("%s --version is cached as %r", path, cached.strip())
        return Plugin(path=path, version_text=cached, version=parse_version(cached))
    plugin = _run_version(path)
    _store_version(identity, plugin.version_text)
    return plugin


def _run_version(path: str) -> Plugin:
    """Run `PATH --version` and parse its output as the AWS CLI does."""
    try:
        completed = subprocess.run(
            [path, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=VERSION_TIMEOUT_SECONDS,
        )
    except PermissionError:
        raise SsmexError(
            f"The plugin {path} cannot be run: permission denied; make it executable or reinstall it.",
            ExitCode.PLUGIN_UNAVAILABLE,
        ) from None
    except subprocess.TimeoutExpired:
        raise SsmexError(
            f"`{path} --version` did not finish within {VERSION_TIMEOUT_SECONDS} seconds; reinstall session-manager-plugin.",
            ExitCode.PLUGIN_UNAVAILABLE,
        ) from None
    except OSError as error:
        raise SsmexError(
            f"The plugin {path} cannot be run: {error.strerror or error}; reinstall session-manager-plugin from {INSTALL_PAGE}.",
            ExitCode.PLUGIN_UNAVAILABLE,
        ) from None
    text = completed.stdout.decode("utf-8", "replace")
    plugin = Plugin(path=path, version_text=text, version=parse_version(text))
    log.debug("%s --version printed %r", path, text.strip())
    return plugin


@dataclass
class PluginLaunch:
    """The argument vector and environment that hand one session to the plugin."""

    argv: list[str]
    environment: dict[str, str]
    response_json: str
    secrets: list[str] = field(default_factory=list)


def build_launch(
    plugin: Plugin,
    response: Mapping[str, str],
    request: Mapping[str, object],
    region: str,
    profile: str | None,
    endpoint_url: str,
    base_environment: Mapping[str, str] | None = None,
) -> PluginLaunch:
    """Build the plugin's six-slot argv and its environment.

    The response JSON holds only SessionId, TokenValue and StreamUrl, in that order. For
    plugins newer than 1.2.497.0 it travels in AWS_SSM_START_SESSION_RESPONSE and only
    that name is on argv. The profile slot contains the profile only when the user named
    one, and the endpoint is the one botocore resolved for the SSM client.
    """
    response_json = json.dumps(
        {"SessionId": response["SessionId"], "TokenValue": response["TokenValue"], "StreamUrl": response["StreamUrl"]}
    )
    environment = dict(os.environ if base_environment is None else base_environment)
    environment.pop(RESPONSE_VARIABLE, None)
    if plugin.takes_environment:
        environment[RESPONSE_VARIABLE] = response_json
        first = RESPONSE_VARIABLE
    else:
        first = response_json
    argv = [plugin.path, first, region, "StartSession", profile or "", json.dumps(dict(request)), endpoint_url]
    return PluginLaunch(argv=argv, environment=environment, response_json=response_json, secrets=[response["TokenValue"]])
