"""Credential handoff to session-manager-plugin for the calls it makes during a session.

The plugin signs ResumeSession (after the websocket drops, roughly hourly on AWS),
TerminateSession and KMS calls with credentials it resolves itself. Three modes:

- server: ssmex serves its own botocore credentials on a loopback URL (credserver.py),
  so MFA prompts, SSO logins and credential processes happen once, in ssmex, and the
  plugin always signs with fresh keys.
- profile: the profile name in argv slot 4, as the AWS CLI does; the plugin resolves it.
- environment: frozen keys in the plugin's environment; they stop working when they expire.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from botocore.credentials import RefreshableCredentials
from botocore.utils import parse_timestamp

from ssmex.aws import AwsContext
from ssmex.credserver import CredentialServer, CredentialsUnavailable, FrozenSource, RefreshingSource, ServedCredentials, iso8601, utc_now
from ssmex.errors import ExitCode, SsmexError
from ssmex.plugin import PluginLaunch
from ssmex.records import state_dir

log = logging.getLogger("ssmex.handoff")

ENVIRONMENT_VARIABLE = "SSMEX_CREDENTIALS"
PROFILE_SLOT = 4
URI_VARIABLE = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN_VARIABLE = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
# Variables that the plugin's AWS SDK would use before the credential URL, or instead of it.
SERVER_REMOVED_VARIABLES = KEY_VARIABLES + (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CREDENTIAL_EXPIRATION",
)


class CredentialMode(str, enum.Enum):
    SERVER = "server"
    PROFILE = "profile"
    ENVIRONMENT = "environment"


MODE_NAMES = [mode.value for mode in CredentialMode]


@dataclass
class CredentialChoice:
    """The mode chosen for one plugin launch, why, and the credentials behind it."""

    mode: CredentialMode
    reason: str
    source: RefreshingSource | FrozenSource
    profile: str | None
    # Why the credentials cannot be refreshed, when they cannot; None when they can.
    frozen_because: str | None = None
    # Long-term keys (no session token) never expire.
    long_term: bool = False
    # The CA bundle botocore uses (AWS_CA_BUNDLE or ca_bundle in the profile), which the
    # plugin would no longer find once its config file is replaced.
    ca_bundle: str | None = None

    def expiry(self) -> datetime.datetime | None:
        return self.source.expiry()

    def expiry_text(self) -> str:
        """Describe when the plugin's credentials stop working, as a phrase."""
        expiry = self.expiry()
        if self.mode is CredentialMode.PROFILE:
            return "the plugin resolves and refreshes the profile itself"
        if self.source.refreshable and self.mode is CredentialMode.SERVER:
            return "refreshed by ssmex as they near expiry"
        if expiry is not None:
            return f"valid until {iso8601(expiry)}"
        if self.long_term:
            return "long-term keys without an expiry"
        return "expiry unknown"

    def describe(self) -> str:
        """Describe the choice in one sentence, for --debug and `ssmex doctor`."""
        text = f"credentials reach session-manager-plugin by {self.mode.value} ({self.reason}); {self.expiry_text()}"
        if self.frozen_because and self.mode is not CredentialMode.PROFILE:
            text += f", because {self.frozen_because}"
        return text + "."


def requested_mode(flag: str | None, environment: Mapping[str, str] | None = None) -> tuple[CredentialMode | None, str]:
    """Return the mode the user asked for and where it came from, or (None, why not)."""
    environment = os.environ if environment is None else environment
    if flag:
        return CredentialMode(flag), "from --credentials"
    value = environment.get(ENVIRONMENT_VARIABLE, "").strip()
    if not value:
        return None, ""
    try:
        return CredentialMode(value.lower()), f"from {ENVIRONMENT_VARIABLE}"
    except ValueError:
        raise SsmexError(
            f"{ENVIRONMENT_VARIABLE}={value!r} is not a credential mode; use one of {', '.join(MODE_NAMES)} or unset it.",
            ExitCode.USAGE,
        ) from None


def _mfa_serial_in_chain(aws: AwsContext) -> str | None:
    """Return the mfa_serial that botocore would prompt for on each refresh, if any.

    botocore caches assume-role credentials only in memory (the AWS CLI adds a file
    cache of its own), so a refresh of an MFA role prompts for a new code.
    """
    profiles = aws.session.full_config.get("profiles", {})
    name = aws.profile or "default"
    seen: set[str] = set()
    while name and name not in seen:
        seen.add(name)
        config = profiles.get(name, {})
        if config.get("role_arn") and config.get("mfa_serial"):
            return str(config["mfa_serial"])
        name = config.get("source_profile")
    return None


def _environment_expiry(environment: Mapping[str, str]) -> datetime.datetime | None:
    value = environment.get("AWS_CREDENTIAL_EXPIRATION")
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError):
        log.warning("ignored AWS_CREDENTIAL_EXPIRATION=%r because it is not an ISO 8601 time", value)
        return None


def frozen_copy(credentials: Any) -> ServedCredentials:
    """Return the keys botocore has now, with their expiry when botocore has one."""
    frozen = credentials.get_frozen_credentials()
    expiry = credentials._expiry_time if isinstance(credentials, RefreshableCredentials) else None
    return ServedCredentials(frozen.access_key, frozen.secret_key, frozen.token, expiry)


def credential_source(aws: AwsContext, credentials: Any) -> tuple[RefreshingSource | FrozenSource, str | None]:
    """Pick how ssmex can keep the credentials fresh: (source, why they are frozen or None)."""
    method = getattr(credentials, "method", None)
    if method == "env":
        copy = frozen_copy(credentials)
        copy.expiry = _environment_expiry(os.environ)
        if not copy.token:
            return FrozenSource(copy), None
        return FrozenSource(copy), "they came from AWS_ACCESS_KEY_ID and friends in the environment, which ssmex cannot refresh"
    if method == "assume-role":
        serial = _mfa_serial_in_chain(aws)
        if serial:
            return FrozenSource(frozen_copy(credentials)), f"refreshing the role would ask for a new code for MFA device {serial}"
    return RefreshingSource(credentials), None


def choose(aws: AwsContext, credentials: Any, flag: str | None = None) -> CredentialChoice:
    """Choose the credential mode for a plugin launch: the request, else server."""
    mode, origin = requested_mode(flag)
    source, frozen_because = credential_source(aws, credentials)
    if mode is None:
        mode = CredentialMode.SERVER
        reason = f"the default, because ssmex resolved the credentials (botocore method {credentials.method})"
    else:
        reason = origin
    # Reading .token of refreshable credentials could start a refresh, so look at the type first.
    if isinstance(source, FrozenSource):
        long_term = not source.credentials.token and source.credentials.expiry is None
    else:
        long_term = not isinstance(credentials, RefreshableCredentials) and not credentials.token
    choice = CredentialChoice(
        mode=mode,
        reason=reason,
        source=source,
        profile=aws.settings.profile,
        frozen_because=frozen_because,
        long_term=long_term,
        ca_bundle=aws.session.get_config_variable("ca_bundle"),
    )
    log.debug("%s", choice.describe())
    return choice


def describe_for_doctor(aws: AwsContext, flag: str | None = None) -> str:
    """Resolve the credentials and describe how the plugin would get them, in one sentence."""
    return choose(aws, aws.check_credentials(), flag).describe()


def expiry_warning(choice: CredentialChoice, background: bool) -> str | None:
    """Return a warning about credentials that will stop working during the session, or None."""
    if choice.mode is CredentialMode.PROFILE:
        return None
    if choice.mode is CredentialMode.SERVER and choice.source.refreshable:
        return None
    expiry = choice.expiry()
    if expiry is not None:
        left = expiry - utc_now()
        minutes = max(int(left.total_seconds() // 60), 0)
        how = "are in the plugin's environment" if choice.mode is CredentialMode.ENVIRONMENT else "cannot be refreshed"
        because = f" ({choice.frozen_because})" if choice.frozen_because else ""
        return (
            f"the plugin's credentials {how} and expire at {iso8601(expiry)}, in {minutes} minutes{because}; "
            "after that the plugin cannot resume the session when its connection drops"
        )
    if choice.long_term:
        return None
    if choice.mode is CredentialMode.ENVIRONMENT or background:
        return (
            "ssmex cannot know when the plugin's temporary credentials expire (set AWS_CREDENTIAL_EXPIRATION "
            "with them); after they expire the plugin cannot resume the session when its connection drops"
        )
    return None


def empty_config_files() -> tuple[str, str]:
    """Return an empty AWS config file and an empty credentials file owned by ssmex.

    Pointing the plugin at these keeps a [default] profile in the user's files from
    outranking the credential URL.
    """
    folder = os.path.join(state_dir(), "empty-aws")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    paths = []
    for name in ("config", "credentials"):
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or os.path.getsize(path) != 0:
            with open(path, "w", encoding="ascii"):
                pass
        paths.append(path)
    return paths[0], paths[1]


def apply_server(launch: PluginLaunch, url: str, token: str, ca_bundle: str | None = None) -> None:
    """Point the plugin at the credential server and hide every credential that outranks it.

    A ca_bundle from the user's profile moves to AWS_CA_BUNDLE, because the plugin's
    config file is replaced by an empty one.
    """
    for name in SERVER_REMOVED_VARIABLES:
        launch.environment.pop(name, None)
    if ca_bundle and not launch.environment.get("AWS_CA_BUNDLE"):
        launch.environment["AWS_CA_BUNDLE"] = ca_bundle
    config, credentials = empty_config_files()
    launch.environment["AWS_CONFIG_FILE"] = config
    launch.environment["AWS_SHARED_CREDENTIALS_FILE"] = credentials
    launch.environment[URI_VARIABLE] = url
    launch.environment[TOKEN_VARIABLE] = token
    launch.argv[PROFILE_SLOT] = ""
    launch.secrets.append(token)


def apply_environment(launch: PluginLaunch, served: ServedCredentials) -> None:
    """Put frozen keys in the plugin's environment, where they win over any profile."""
    launch.environment["AWS_ACCESS_KEY_ID"] = served.access_key
    launch.environment["AWS_SECRET_ACCESS_KEY"] = served.secret_key
    launch.environment.pop("AWS_SECURITY_TOKEN", None)
    if served.token:
        launch.environment["AWS_SESSION_TOKEN"] = served.token
        launch.secrets.append(served.token)
    else:
        launch.environment.pop("AWS_SESSION_TOKEN", None)
    launch.secrets.append(served.secret_key)
    # A non-empty profile argument makes the plugin skip environment keys.
    launch.argv[PROFILE_SLOT] = ""


@contextlib.contextmanager
def credentials_for_plugin(launch: PluginLaunch, choice: CredentialChoice) -> Iterator[CredentialServer | None]:
    """Apply the chosen mode to the launch; in server mode, serve credentials meanwhile.

    Yields the running server (server mode) or None. The launch is changed in place.
    """
    if choice.mode is CredentialMode.PROFILE:
        yield None
        return
    if choice.mode is CredentialMode.ENVIRONMENT:
        try:
            served = choice.source.current()
        except CredentialsUnavailable as error:
            raise SsmexError(f"The plugin cannot be given credentials: {error}; get fresh ones and try again.", ExitCode.CONFIGURATION) from None
        apply_environment(launch, served)
        yield None
        return
    with CredentialServer(choice.source) as server:
        apply_server(launch, server.url, server.token, choice.ca_bundle)
        yield server
