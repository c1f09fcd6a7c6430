"""What the ssmex executable carries of botocore's data, shared by the spec, the build
script and the tests.

botocore ships a model for every AWS service (about 28 MB unpacked). A onefile build
unpacks all of it on every start, which takes seconds, so the executable keeps only the
services ssmex calls and the top-level files botocore reads when it starts
(endpoints.json, partitions.json, sdk-default-configuration.json, _retry.json).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

# Each service model the executable keeps, with the reason. A command that creates a
# client for a service missing here fails in the executable with "does not include the
# AWS service model", and tests/test_bundle.py fails for any client("...") call in
# src/ssmex that names a service missing here.
KEPT_SERVICES: dict[str, str] = {
    "ssm": "StartSession, TerminateSession, DescribeInstanceInformation",
    "ec2": "instance lookup by name and GetPasswordData for RDP",
    "sts": "assume-role profiles (botocore's credential providers)",
    "sso": "IAM Identity Center profiles (botocore's credential providers)",
    "sso-oidc": "refreshing IAM Identity Center tokens (botocore's token providers)",
    "signin": "`aws login` profiles (botocore's credential providers, botocore 1.42 and later)",
    "kms": "KMS-encrypted sessions",
}

# Packages the single-file build leaves out to stay within its size budget, with what is
# lost. The onedir build keeps them. ssmex reads RSA keys without a passphrase and decrypts
# Windows passwords in pure Python (ssmex.rsa), so only the features named here need them.
ONEFILE_EXCLUDED_PACKAGES: dict[str, str] = {
    "cryptography": "passphrase-protected key files for rdp, and KMS-encrypted sessions in the native client (4.5 MB)",
    "cffi": "used only by cryptography",
    "bcrypt": "passphrase-protected OpenSSH key files, read through cryptography",
}

# Files inside a service's version folder that botocore never reads when it runs:
# examples-1.json only feeds the AWS CLI's generated documentation.
DROPPED_SERVICE_FILES = frozenset({"examples-1.json"})

DATA_PREFIX = ("botocore", "data")

# Calls that name a service: client("ssm"), aws.client('ec2', ...), create_client("kms"),
# and botocore's own _client_creator('sts') and create_nested_client(session, "sso-oidc").
_CLIENT_CALL = re.compile(
    r"""(?:\bclient|create_client|client_creator|create_nested_client)\(\s*(?:[\w.]+\s*,\s*)?["']([a-z0-9-]+)["']"""
)


def kept_data_files(relative_paths: Iterable[str]) -> set[str]:
    """Return the files under botocore/data (paths relative to that folder) that the
    executable keeps.

    It keeps the top-level files, and of each kept service only the newest API version,
    which is the one botocore loads when no api_version is given. ec2 alone ships eight
    versions.
    """
    paths = [Path(path) for path in relative_paths]
    newest: dict[str, str] = {}
    for path in paths:
        if len(path.parts) == 3 and path.parts[0] in KEPT_SERVICES and path.name.startswith("service-2."):
            service, version = path.parts[0], path.parts[1]
            newest[service] = max(version, newest.get(service, version))

    kept = set()
    for path in paths:
        if len(path.parts) == 1:
            kept.add(str(path))
        elif (
            len(path.parts) == 3
            and newest.get(path.parts[0]) == path.parts[1]
            and path.name not in DROPPED_SERVICE_FILES
        ):
            kept.add(str(path))
    return kept


def _relative_to_botocore_data(destination: str) -> str | None:
    parts = Path(destination).parts
    if parts[: len(DATA_PREFIX)] != DATA_PREFIX:
        return None
    return str(Path(*parts[len(DATA_PREFIX):]))


def filter_datas(datas: Iterable[tuple]) -> list[tuple]:
    """Drop the botocore data files the executable does not keep from a PyInstaller TOC.

    Entries are (destination, source, typecode) tuples. Everything outside botocore/data
    (botocore's cacert.pem included) stays.
    """
    entries = list(datas)
    relative = [_relative_to_botocore_data(entry[0]) for entry in entries]
    kept = kept_data_files(path for path in relative if path is not None)
    return [entry for entry, path in zip(entries, relative) if path is None or path in kept]


def services_called_in(paths: Iterable[Path], root: Path) -> dict[str, list[str]]:
    """Return each service named in a client-creating call in paths, with the files
    (relative to root) that name it.

    NOTE: a call that passes the service name in a variable is not found; write the
    service name as a literal at the call site.
    """
    found: dict[str, list[str]] = {}
    for path in sorted(paths):
        text = path.read_text(encoding="utf-8")
        for service in sorted(set(_CLIENT_CALL.findall(text))):
            found.setdefault(service, []).append(str(path.relative_to(root)))
    return found


def services_ssmex_calls(source_root: Path) -> dict[str, list[str]]:
    """Return the services that ssmex's source (src/ssmex) creates clients for."""
    return services_called_in(source_root.rglob("*.py"), source_root)


def services_botocore_providers_call(botocore_root: Path) -> dict[str, list[str]]:
    """Return the services botocore's credential and token providers create clients for,
    such as sts for assume-role profiles."""
    providers = [botocore_root / "credentials.py", botocore_root / "tokens.py"]
    return services_called_in([path for path in providers if path.is_file()], botocore_root)


def missing_services(source_root: Path, botocore_root: Path) -> dict[str, list[str]]:
    """Return the services ssmex or botocore's providers call that the executable would not carry."""
    called = services_ssmex_calls(source_root)
    for service, files in services_botocore_providers_call(botocore_root).items():
        called.setdefault(service, []).extend(f"botocore/{name}" for name in files)
    return {service: files for service, files in called.items() if service not in KEPT_SERVICES}
