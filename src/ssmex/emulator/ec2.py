"""The emulator's EC2 API: the query protocol (form-encoded POST, XML replies) on 127.0.0.1.

It serves DescribeInstances and GetPasswordData from the same Emulator state as the SSM
API, so one EmulatedInstance is both a managed node and an EC2 instance with a Name tag,
a state, a public address and an encrypted Administrator password.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import logging
import re
import secrets
import urllib.parse
from typing import Any
from xml.sax.saxutils import escape

from ssmex.emulator.api import _AUTHORIZATION, EmulatedInstance, Emulator, EmulatorApiError, LoopbackHttpServer, RecordedCall

log = logging.getLogger("ssmex.emulator.ec2")

EC2_NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
# Instance state codes of the EC2 API, by state name.
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}


def encrypt_password(password: str, public_pem: str) -> str:
    """Encrypt a password to a PEM public key as EC2 does: RSA PKCS#1 v1.5, then base64."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_public_key(public_pem.encode("ascii"))
    encrypted = key.encrypt(password.encode("utf-8"), padding.PKCS1v15())  # type: ignore[union-attr]
    return base64.b64encode(encrypted).decode("ascii")


def _indexed(form: dict[str, str], prefix: str) -> list[str]:
    """Return the values of prefix.1, prefix.2, ... in order."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)$")
    numbered = sorted((int(match.group(1)), value) for name, value in form.items() if (match := pattern.match(name)))
    return [value for _, value in numbered]


def _filters(form: dict[str, str]) -> list[tuple[str, list[str]]]:
    result = []
    index = 1
    while f"Filter.{index}.Name" in form:
        result.append((form[f"Filter.{index}.Name"], _indexed(form, f"Filter.{index}.Value")))
        index += 1
    return result


def _matches(instance: EmulatedInstance, name: str, values: list[str]) -> bool:
    if name == "tag:Name":
        return instance.name in values
    if name == "instance-state-name":
        return instance.state in values
    if name == "instance-id":
        return instance.instance_id in values
    raise EmulatorApiError("InvalidParameterValue", f"The filter '{name}' is not supported by the emulator.")


def _instance_xml(instance: EmulatedInstance) -> str:
    tags = f"<item><key>Name</key><value>{escape(instance.name)}</value></item>" if instance.name else ""
    platform = "<platform>windows</platform>" if instance.platform == "Windows" else ""
    return (
        "<item>"
        f"<instanceId>{escape(instance.instance_id)}</instanceId>"
        f"<instanceState><code>{STATE_CODES.get(instance.state, 16)}</code><name>{escape(instance.state)}</name></instanceState>"
        f"<dnsName>{escape(instance.public_dns)}</dnsName>"
        + (f"<ipAddress>{escape(instance.public_ip)}</ipAddress>" if instance.public_ip else "")
        + (f"<keyName>{escape(instance.key_name)}</keyName>" if instance.key_name else "")
        + platform
        + f"<tagSet>{tags}</tagSet>"
        "</item>"
    )


def describe_instances(emulator: Emulator, form: dict[str, str]) -> str:
    wanted = _indexed(form, "InstanceId")
    with emulator.lock:
        instances = [instance for instance in emulator.instances.values() if instance.instance_id.startswith("i-")]
    if wanted:
        known = {instance.instance_id for instance in instances}
        missing = [instance_id for instance_id in wanted if instance_id not in known]
        if missing:
            raise EmulatorApiError("InvalidInstanceID.NotFound", f"The instance ID '{missing[0]}' does not exist")
        instances = [instance for instance in instances if instance.instance_id in wanted]
    for name, values in _filters(form):
        instances = [instance for instance in instances if _matches(instance, name, values)]
    reservations = "".join(
        f"<item><reservationId>r-{instance.instance_id[2:]}</reservationId><ownerId>000000000000</ownerId>"
        f"<groupSet/><instancesSet>{_instance_xml(instance)}</instancesSet></item>"
        for instance in instances
    )
    return (
        f'<DescribeInstancesResponse xmlns="{EC2_NAMESPACE}"><requestId>{secrets.token_hex(16)}</requestId>'
        f"<reservationSet>{reservations}</reservationSet></DescribeInstancesResponse>"
    )


def get_password_data(emulator: Emulator, form: dict[str, str]) -> str:
    instance_id = form.get("InstanceId", "")
    with emulator.lock:
        instance = emulator.instances.get(instance_id)
    if instance is None or not instance_id.startswith("i-"):
        raise EmulatorApiError("InvalidInstanceID.NotFound", f"The instance ID '{instance_id}' does not exist")
    # EC2 returns an empty PasswordData until the instance has generated its password.
    data = encrypt_password(instance.password, instance.key_public_pem) if instance.password and instance.key_public_pem else ""
    timestamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return (
        f'<GetPasswordDataResponse xmlns="{EC2_NAMESPACE}"><requestId>{secrets.token_hex(16)}</requestId>'
        f"<instanceId>{escape(instance_id)}</instanceId><timestamp>{timestamp}</timestamp>"
        f"<passwordData>{data}</passwordData></GetPasswordDataResponse>"
    )


OPERATIONS = {"DescribeInstances": describe_instances, "GetPasswordData": get_password_data}


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "Ec2ApiServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ec2 %s", format % args)

    def _reply(self, status: int, xml: str) -> None:
        data = xml.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        form = {name: values[-1] for name, values in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        operation = form.get("Action", "")
        match = _AUTHORIZATION.match(self.headers.get("Authorization", ""))
        emulator = self.server.emulator
        if match is None:
            status, xml = 401, _error_xml("AuthFailure", "Missing or malformed SigV4 Authorization header.")
        elif match.group("service") != "ec2":
            status, xml = 401, _error_xml("AuthFailure", f"Credential scope names service {match.group('service')}, not ec2.")
        else:
            try:
                with emulator.lock:
                    forced = emulator._forced_errors.get(operation)
                    if forced:
                        raise forced.pop(0)
                handler = OPERATIONS.get(operation)
                if handler is None:
                    raise EmulatorApiError("InvalidAction", f"The emulator does not implement the action {operation}.")
                status, xml = 200, handler(emulator, form)
            except EmulatorApiError as error:
                status, xml = error.status, _error_xml(error.code, error.message)
        with emulator.lock:
            emulator.calls.append(
                RecordedCall(
                    operation=operation,
                    access_key_id=match.group("access_key") if match else None,
                    region=match.group("region") if match else None,
                    body=form,
                    status=status,
                )
            )
        log.debug("ec2 %s signed by %s -> %d", operation, match.group("access_key") if match else "nobody", status)
        self._reply(status, xml)


def _error_xml(code: str, message: str) -> str:
    return (
        f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{secrets.token_hex(16)}</RequestID></Response>"
    )


class Ec2ApiServer(LoopbackHttpServer):
    """The emulator's EC2 endpoint, bound to 127.0.0.1 only."""

    thread_name = "ssmex-emulator-ec2"

    def __init__(self, emulator: Emulator, port: int = 0) -> None:
        super().__init__(emulator, _Handler, port)
