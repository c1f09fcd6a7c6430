"""Choosing between session-manager-plugin and ssmex's native client, and running the native one.

The native client (`ssmex.datachannel`) speaks the Session Manager data channel itself, so
a session needs no plugin. This module contains what the engine needs around it: the
--client choice, the session options and a resume callable that resolves credentials
again for every reconnect. It imports the data channel only when a session uses it,
because websockets costs start-up time that plugin sessions do not need.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Mapping

from ssmex.aws import AwsContext, AwsSettings
from ssmex.errors import ExitCode, SsmexError
from ssmex.plugin import find_plugin

log = logging.getLogger("ssmex.native")

CLIENT_NAMES = ("auto", "plugin", "native")
ENVIRONMENT_VARIABLE = "SSMEX_CLIENT"
PLUGIN = "plugin"
NATIVE = "native"


def requested_client(flag: str | None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Return the requested client name and where it came from: --client, SSMEX_CLIENT or the default."""
    environ = os.environ if environ is None else environ
    if flag:
        value, origin = flag, "--client"
    elif environ.get(ENVIRONMENT_VARIABLE):
        value, origin = environ[ENVIRONMENT_VARIABLE], ENVIRONMENT_VARIABLE
    else:
        return "auto", "the default"
    value = value.strip().lower()
    if value not in CLIENT_NAMES:
        raise SsmexError(
            f"The client {value!r} (from {origin}) is invalid; use auto, plugin or native.", ExitCode.USAGE
        )
    return value, origin


def choose_client(flag: str | None, plugin_path: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Return "plugin" or "native" for --client, logging the choice and its reason at debug level.

    auto picks the plugin when --plugin or SSMEX_PLUGIN names one (so a wrong path is reported,
    not silently replaced) or when find_plugin finds one, and the native client otherwise.
    """
    environ = os.environ if environ is None else environ
    name, origin = requested_client(flag, environ)
    if name != "auto":
        log.debug("using the %s client (from %s)", name, origin)
        return name
    if plugin_path or environ.get("SSMEX_PLUGIN"):
        named_by = "--plugin" if plugin_path else "SSMEX_PLUGIN"
        log.debug("client auto (from %s): using session-manager-plugin, because %s names it", origin, named_by)
        return PLUGIN
    try:
        path = find_plugin(None, environ)
    except SsmexError as error:
        log.debug("client auto (from %s): using the native client, because %s", origin, error.message)
        return NATIVE
    log.debug("client auto (from %s): using session-manager-plugin, because it was found at %s", origin, path)
    return PLUGIN


def new_ssm_client(settings: AwsSettings) -> Any:
    """Build an SSM client from a new botocore session, so credentials are resolved anew."""
    return AwsContext(settings).ssm_client()


def resume_callable(settings: AwsSettings, session_id: str) -> Callable[[], str | None]:
    from ssmex.datachannel import botocore_resume

    return botocore_resume(lambda: new_ssm_client(settings), session_id)


def kms_client_factory(aws: AwsContext) -> Callable[[], Any]:
    """Return a factory of KMS clients for sessions whose agent requests KMS encryption.

    The KMS endpoint is botocore's own: set AWS_ENDPOINT_URL_KMS to point it elsewhere.
    """
    return lambda: aws.client("kms")


def session_options(aws: AwsContext, target: str, **settings: Any) -> Any:
    """Return SessionOptions for a session of `target`; settings are SessionOptions fields."""
    from ssmex.datachannel import SessionOptions

    return SessionOptions(target=target, kms_client_factory=kms_client_factory(aws), **settings)


def run_native(response: Mapping[str, Any], aws: AwsContext, target: str, **settings: Any) -> int:
    """Run a started session with the native client and return its exit status.

    Raises DataChannelError (an SsmexError) when the session fails; the caller ends it.
    """
    from ssmex.datachannel import run_session

    resume = resume_callable(aws.settings, response["SessionId"])
    return run_session(response, resume, session_options(aws, target, **settings))
