"""AWS access through botocore: profile, region and credential checks, and error messages.

Everything is resolved the way the AWS CLI resolves it, through botocore, and checked
before the first API call so that a missing region or credential never costs a session.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

import botocore.session
from botocore import exceptions as boto_errors

from ssmex.botocore_loader import create_loader
from ssmex.errors import ExitCode, SsmexError
from ssmex.redact import register_secret

log = logging.getLogger("ssmex.aws")


@dataclass
class AwsSettings:
    """Settings given on the command line, before botocore resolves the rest."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    verify_ssl: bool = True


# How to point each service ssmex calls besides SSM at another endpoint.
_ENDPOINT_SETTINGS = {"ec2": "pass --ec2-endpoint-url or set AWS_ENDPOINT_URL_EC2"}


def is_local_url(url: str | None) -> bool:
    """Return whether url names this machine: localhost or a loopback address."""
    try:
        host = urllib.parse.urlsplit(url or "").hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_http_url(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _config_file() -> str:
    return os.path.expanduser(os.environ.get("AWS_CONFIG_FILE", "~/.aws/config"))


def _credentials_file() -> str:
    return os.path.expanduser(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"))


def profile_source(settings: AwsSettings) -> tuple[str | None, str]:
    """Return the profile in force and where it came from."""
    if settings.profile:
        return settings.profile, "--profile"
    if os.environ.get("AWS_PROFILE"):
        return os.environ["AWS_PROFILE"], "AWS_PROFILE"
    if os.environ.get("AWS_DEFAULT_PROFILE"):
        return os.environ["AWS_DEFAULT_PROFILE"], "AWS_DEFAULT_PROFILE"
    return None, "the default profile"


class AwsContext:
    """A botocore session with its profile, region and credentials checked."""

    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        self.profile, self.profile_origin = profile_source(settings)
        try:
            self.session = botocore.session.Session(profile=settings.profile)
            self.session.register_component("data_loader", create_loader(self.session.get_config_variable("data_path")))
            # Reading the scoped config raises ProfileNotFound for an unknown profile.
            self.session.get_scoped_config()
        except boto_errors.ProfileNotFound:
            raise SsmexError(
                f"The profile {self.profile!r} (from {self.profile_origin}) was not found in "
                f"{_config_file()} or {_credentials_file()}; check its name or run `aws configure --profile {self.profile}`.",
                ExitCode.CONFIGURATION,
            ) from None
        self.region, self.region_origin = self._resolve_region()
        self.session.set_config_variable("region", self.region)

    def _resolve_region(self) -> tuple[str, str]:
        if self.settings.region:
            return self.settings.region, "--region"
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if os.environ.get(name):
                return os.environ[name], name
        region = self.session.get_scoped_config().get("region")
        profile_name = self.profile or "default"
        if region:
            return region, f"profile {profile_name} in {_config_file()}"
        raise SsmexError(
            f"No AWS region is set: looked at --region, AWS_REGION, AWS_DEFAULT_REGION and profile "
            f"{profile_name} in {_config_file()}; pass --region or set AWS_REGION.",
            ExitCode.CONFIGURATION,
        )

    def check_credentials(self) -> Any:
        """Resolve credentials now, so a prompt or a failure comes before any session.

        Returns botocore's credentials object. The secret key and session token are
        registered for redaction.
        """
        try:
            credentials = self.session.get_credentials()
            frozen = credentials.get_frozen_credentials() if credentials else None
        except boto_errors.ProfileNotFound as error:
            raise SsmexError(
                f"{error}; check the source_profile entries in {_config_file()}.", ExitCode.CONFIGURATION
            ) from None
        except (boto_errors.SSOTokenLoadError, boto_errors.UnauthorizedSSOTokenError, boto_errors.TokenRetrievalError):
            raise SsmexError(
                f"The SSO session of profile {self.profile or 'default'} has expired or was never started; "
                f"run `aws sso login{' --profile ' + self.profile if self.profile else ''}` and try again.",
                ExitCode.CONFIGURATION,
            ) from None
        except boto_errors.CredentialRetrievalError as error:
            raise SsmexError(
                f"Getting credentials for profile {self.profile or 'default'} failed: {error.kwargs.get('error_msg', error)}.",
                ExitCode.CONFIGURATION,
            ) from None
        except (boto_errors.BotoCoreError, boto_errors.ClientError) as error:
            raise SsmexError(
                f"Getting credentials for profile {self.profile or 'default'} failed: {error}.",
                ExitCode.CONFIGURATION,
            ) from None
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            metadata_disabled = os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true"
            last_places = "and the container endpoint" if metadata_disabled else "the container endpoint and instance metadata"
            raise SsmexError(
                "No AWS credentials were found: looked at the environment (AWS_ACCESS_KEY_ID), "
                f"{_credentials_file()}, {_config_file()} (profile {self.profile or 'default'}, including SSO and "
                f"credential_process) {last_places}; run `aws configure` or `aws sso login`, or pass --profile.",
                ExitCode.CONFIGURATION,
            )
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        log.debug("credentials resolved by botocore (method %s, access key id %s)", credentials.method, frozen.access_key)
        return credentials

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        """Create a botocore client in the resolved region."""
        client = self._create_client(service, endpoint_url)
        if service != "ssm" and endpoint_url is None:
            self._reject_mixed_endpoints(service, client.meta.endpoint_url)
        return client

    def _reject_mixed_endpoints(self, service: str, endpoint_url: str) -> None:
        """Raise when SSM is reached on this machine but service would reach AWS by default.

        That pairing usually means an emulator or a tunnel was set up for SSM alone, and the call
        would take these credentials to AWS. An endpoint named for the service is trusted.
        """
        ssm_endpoint = self.settings.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_SSM") or os.environ.get("AWS_ENDPOINT_URL")
        named = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL")
        if named or not is_local_url(ssm_endpoint) or is_local_url(endpoint_url):
            return
        setting = _ENDPOINT_SETTINGS.get(service, f"set AWS_ENDPOINT_URL_{service.upper()}")
        raise SsmexError(
            f"The SSM endpoint {ssm_endpoint} is on this machine, but {service.upper()} calls would go to {endpoint_url}; "
            f"{setting} to the matching local endpoint (ssmex emulator prints it), or to that AWS endpoint "
            "if it is meant.",
            ExitCode.CONFIGURATION,
        )

    def _create_client(self, service: str, endpoint_url: str | None) -> Any:
        try:
            return self.session.create_client(
                service,
                region_name=self.region,
                endpoint_url=endpoint_url,
                verify=self.settings.verify_ssl,
            )
        except boto_errors.UnknownServiceError:
            raise SsmexError(
                f"This build of ssmex does not include the AWS service model for {service}; "
                "install ssmex with pip to use this command.",
                ExitCode.ERROR,
            ) from None
        except boto_errors.DataNotFoundError as error:
            # A data file that every client needs, such as partitions.json, is missing: a
            # broken installation or an executable built without it.
            raise SsmexError(
                f"Creating the {service} client failed because botocore's data is incomplete "
                f"({error}); reinstall ssmex or download its executable again.",
                ExitCode.ERROR,
            ) from None
        except ValueError as error:
            requested = endpoint_url or (self.settings.endpoint_url if service == "ssm" else None)
            if requested and not _is_http_url(requested):
                raise SsmexError(
                    f"The endpoint URL {requested!r} is invalid; use an http or https URL such as "
                    f"https://{service}.{self.region}.amazonaws.com.",
                    ExitCode.CONFIGURATION,
                ) from None
            raise SsmexError(
                f"The region {self.region!r} (from {self.region_origin}) or the endpoint is invalid "
                f"({str(error).rstrip('.')}); use a region name such as eu-west-1 and an http(s) endpoint URL.",
                ExitCode.CONFIGURATION,
            ) from None

    def ssm_client(self) -> Any:
        return self.client("ssm", endpoint_url=self.settings.endpoint_url)


_ERROR_ADVICE: dict[str, tuple[ExitCode, str]] = {
    "TargetNotConnected": (
        ExitCode.TARGET_NOT_CONNECTED,
        "check that the instance is running, that its SSM Agent is online "
        "(ssmex doctor) and that you used the right region",
    ),
    "InvalidDocument": (ExitCode.AWS_ERROR, "check --document-name and that the document exists in this region"),
    "InvalidDocumentVersion": (ExitCode.AWS_ERROR, "check the document version"),
    "InvalidParameters": (ExitCode.AWS_ERROR, "check --parameters against the document's parameters"),
    "AccessDeniedException": (ExitCode.ACCESS_DENIED, "ask for the permission named above or use another profile"),
    "AccessDenied": (ExitCode.ACCESS_DENIED, "ask for the permission named above or use another profile"),
    "ExpiredTokenException": (ExitCode.ACCESS_DENIED, "your credentials have expired; refresh them (for SSO: aws sso login)"),
    "ExpiredToken": (ExitCode.ACCESS_DENIED, "your credentials have expired; refresh them (for SSO: aws sso login)"),
    "UnrecognizedClientException": (ExitCode.ACCESS_DENIED, "the access key is not valid in this partition or region"),
    "InvalidClientTokenId": (ExitCode.ACCESS_DENIED, "the access key is not valid in this partition or region"),
    "InvalidSignatureException": (ExitCode.ACCESS_DENIED, "check the secret access key and the system clock"),
    "SignatureDoesNotMatch": (ExitCode.ACCESS_DENIED, "check the secret access key and the system clock"),
    "ThrottlingException": (ExitCode.AWS_ERROR, "wait a moment and try again"),
    "DoesNotExistException": (ExitCode.AWS_ERROR, "check the session or target id"),
    "InternalServerError": (ExitCode.AWS_ERROR, "the service failed; try again"),
    "UnauthorizedOperation": (ExitCode.ACCESS_DENIED, "ask for the permission named above or use another profile"),
    "InvalidInstanceID.NotFound": (ExitCode.USAGE, "check the instance id and the region"),
    "InvalidInstanceID.Malformed": (ExitCode.USAGE, "check the instance id"),
}


def call_aws(operation: str, call: Callable[[], Any]) -> Any:
    """Run one API call and turn AWS and network errors into one-sentence SsmexErrors."""
    try:
        return call()
    except boto_errors.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = (error.response.get("Error", {}).get("Message") or "").strip().rstrip(".")
        exit_code, advice = _ERROR_ADVICE.get(code, (ExitCode.AWS_ERROR, "see the message above"))
        text = f"{operation} failed with {code}"
        if message:
            text += f": {message}"
        raise SsmexError(f"{text}; {advice}.", exit_code) from None
    except (boto_errors.EndpointConnectionError, boto_errors.ConnectTimeoutError) as error:
        raise SsmexError(
            f"{operation} failed because the endpoint {getattr(error, 'kwargs', {}).get('endpoint_url', '')} "
            "could not be reached; check the region, --endpoint-url, proxy settings and the network.",
            ExitCode.NETWORK,
        ) from None
    except boto_errors.ReadTimeoutError:
        raise SsmexError(f"{operation} timed out waiting for a response; try again.", ExitCode.NETWORK) from None
    except boto_errors.SSLError as error:
        raise SsmexError(
            f"{operation} failed in TLS: {error}; check AWS_CA_BUNDLE or the proxy's certificate.",
            ExitCode.NETWORK,
        ) from None
    except boto_errors.ParamValidationError as error:
        raise SsmexError(f"{operation} was not sent because a parameter is invalid: {error}.", ExitCode.USAGE) from None
    except boto_errors.NoCredentialsError:
        raise SsmexError(
            "No AWS credentials were found; run `aws configure` or `aws sso login`, or pass --profile.",
            ExitCode.CONFIGURATION,
        ) from None
