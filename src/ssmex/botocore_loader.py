"""A botocore data loader that looks up one service instead of listing them all.

botocore's Loader lists every service folder (about 400, with a stat call per API
version) before it loads any one model, to decide whether the service exists. That
costs about 40 ms per command on a pip install (measured on a 2-core Linux machine
with botocore 1.44). This loader decides membership by looking only in the named
service's folder. Listing all services, which only an error message needs, still works
as in botocore.
"""

from __future__ import annotations

import os
from typing import Iterator

from botocore import loaders


class _AvailableServices:
    """The services that have a model of one type, with a cheap membership test."""

    def __init__(self, loader: "ServiceLoader", type_name: str) -> None:
        self._loader = loader
        self._type_name = type_name

    def __contains__(self, service_name: object) -> bool:
        if not isinstance(service_name, str):
            return False
        for location in self._loader.search_paths:
            folder = os.path.join(location, service_name)
            if not os.path.isdir(folder):
                continue
            for api_version in os.listdir(folder):
                if self._loader.file_loader.exists(os.path.join(folder, api_version, self._type_name)):
                    return True
        return False

    def _all(self) -> list[str]:
        return loaders.Loader.list_available_services(self._loader, self._type_name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class ServiceLoader(loaders.Loader):
    """botocore's Loader with a membership test that reads one service's folder."""

    def list_available_services(self, type_name):  # type: ignore[override]
        return _AvailableServices(self, type_name)


def create_loader(search_path_string: str | None) -> ServiceLoader:
    """Build the loader as botocore.loaders.create_loader does from AWS_DATA_PATH."""
    if search_path_string is None:
        return ServiceLoader()
    paths = [os.path.expanduser(os.path.expandvars(path)) for path in search_path_string.split(os.pathsep)]
    return ServiceLoader(extra_search_paths=paths)
