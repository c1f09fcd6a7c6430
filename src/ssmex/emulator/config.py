"""Emulated instances from a JSON file or command-line values.

A file looks like:

    {"instances": [{"id": "i-0123456789abcdef0", "name": "web-1", "ping_status": "Online",
                    "platform": "Linux", "agent_version": "3.3.1142.0",
                    "ports": {"22": "127.0.0.1:2222"}, "hosts": {"db.internal": "127.0.0.1"}}]}

EC2 fields are optional: "state" (running, stopped, ...), "public_ip" (loopback),
"public_dns", "key_name", "key_public_pem_file" (the key pair's public key, PEM) and
"password" (what GetPasswordData returns, encrypted to that key).

Every address the emulator may dial must be a loopback address.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from ssmex.emulator.api import DEFAULT_AGENT_VERSION, EmulatedInstance
from ssmex.errors import ExitCode, SsmexError

_INSTANCE_ID = re.compile(r"^(i-[0-9a-f]{8}([0-9a-f]{9})?|mi-[0-9a-f]{17})$")

DEFAULT_INSTANCES = [
    {"id": "i-0123456789abcdef0", "name": "demo-linux", "platform": "Linux"},
    {"id": "i-0aaaaaaaaaaaaaaa1", "name": "demo-windows", "platform": "Windows"},
    {"id": "i-0bbbbbbbbbbbbbbb2", "name": "demo-offline", "ping_status": "ConnectionLost"},
]


def _invalid(detail: str) -> SsmexError:
    return SsmexError(f"Invalid emulator configuration: {detail}.", ExitCode.USAGE)


def require_loopback(host: str, what: str) -> str:
    """Return host when it is a loopback address; raise SsmexError otherwise."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise _invalid(f"{what} {host} is not a loopback address; the emulator dials only 127.0.0.0/8, ::1 and localhost")
    return host


def _address(text: str, what: str) -> tuple[str, int]:
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _invalid(f"{what} {text!r} is not HOST:PORT")
    return require_loopback(host.strip("[]"), what), int(port)


def instance_from_dict(data: dict[str, Any]) -> EmulatedInstance:
    instance_id = data.get("id")
    if not isinstance(instance_id, str) or not _INSTANCE_ID.match(instance_id):
        raise _invalid(f"instance id {instance_id!r} is not of the form i-0123456789abcdef0 or mi-0123456789abcdef0")
    ping_status = data.get("ping_status", "Online")
    if ping_status not in ("Online", "ConnectionLost", "Inactive"):
        raise _invalid(f"ping_status {ping_status!r} of {instance_id} is not Online, ConnectionLost or Inactive")
    platform = data.get("platform", "Linux")
    if platform not in ("Linux", "Windows", "MacOS"):
        raise _invalid(f"platform {platform!r} of {instance_id} is not Linux, Windows or MacOS")
    ports = {}
    for remote, address in (data.get("ports") or {}).items():
        if not str(remote).isdigit():
            raise _invalid(f"port {remote!r} of {instance_id} is not a number")
        ports[int(remote)] = _address(address, f"the address for port {remote} of {instance_id}")
    hosts = {str(name): require_loopback(str(address), f"the address for host {name}") for name, address in (data.get("hosts") or {}).items()}
    return EmulatedInstance(
        instance_id=instance_id,
        name=str(data.get("name", "")),
        ping_status=ping_status,
        platform=platform,
        agent_version=str(data.get("agent_version", DEFAULT_AGENT_VERSION)),
        port_map=ports,
        host_map=hosts,
        state=str(data.get("state", "running")),
        public_ip=require_loopback(str(data["public_ip"]), f"the public_ip of {instance_id}") if data.get("public_ip") else "",
        public_dns=str(data.get("public_dns", "")),
        key_name=str(data.get("key_name", "")),
        key_public_pem=_read_text(data["key_public_pem_file"], instance_id) if data.get("key_public_pem_file") else "",
        password=str(data.get("password", "")),
    )


def _read_text(path: str, instance_id: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise _invalid(f"the key_public_pem_file {path} of {instance_id} cannot be read ({error})") from None


def load_instances(path: str | None) -> list[EmulatedInstance]:
    """Read instances from a JSON file, or return the built-in demo instances."""
    if path is None:
        return [instance_from_dict(item) for item in DEFAULT_INSTANCES]
    try:
        with open(path, encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except OSError as error:
        raise SsmexError(f"Cannot read the emulator configuration {path}: {error.strerror}.", ExitCode.USAGE) from None
    except ValueError as error:
        raise _invalid(f"{path} is not valid JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("instances"), list):
        raise _invalid(f"{path} needs an object with an \"instances\" list")
    return [instance_from_dict(item) for item in data["instances"]]


def apply_forwards(instances: list[EmulatedInstance], forwards: list[str]) -> None:
    """Add port mappings written INSTANCE:PORT=HOST:PORT (from --forward) to the instances.

    HOST must be a loopback address. Raises SsmexError for an unknown instance or a bad value.
    """
    by_id = {instance.instance_id: instance for instance in instances}
    for text in forwards:
        source, separator, address = text.partition("=")
        instance_id, _, remote = source.rpartition(":")
        if not separator or not instance_id or not remote.isdigit() or not 0 < int(remote) < 65536:
            raise _invalid(f"--forward {text!r} is not INSTANCE:PORT=HOST:PORT, such as i-0123456789abcdef0:22=127.0.0.1:2222")
        instance = by_id.get(instance_id)
        if instance is None:
            raise _invalid(f"--forward {text!r} names {instance_id}, which is not an emulated instance ({', '.join(by_id) or 'none'})")
        instance.port_map[int(remote)] = _address(address, f"the address in --forward {text!r}")
