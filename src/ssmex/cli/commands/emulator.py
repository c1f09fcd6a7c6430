"""ssmex emulator: run the loopback Session Manager emulator until Ctrl+C."""

from __future__ import annotations

import argparse
import logging
import os
import threading

from ssmex.errors import ExitCode, SsmexError

log = logging.getLogger("ssmex.emulator")

FAKE_ACCESS_KEY_ID = "AKIAEMULATOREXAMPLE1"
FAKE_SECRET_ACCESS_KEY = "emulator-secret-not-a-real-key"


CONFIG_HELP = """\
--config FILE is JSON with a list of instances; only "id" is required:

  {"instances": [
    {"id": "i-0123456789abcdef0", "name": "web-1", "ping_status": "Online",
     "platform": "Linux", "agent_version": "3.3.1142.0",
     "ports": {"22": "127.0.0.1:2222"}, "hosts": {"db.internal": "127.0.0.1"}}
  ]}

  ports    remote port -> the HOST:PORT the emulator dials for port sessions
  hosts    host names for AWS-StartPortForwardingSessionToRemoteHost -> an address
  agent_version  above 3.0.196.0 gives multiplexed port sessions, 3.0.196.0 or older basic
  EC2 fields for name look-ups and RDP: state, public_ip, public_dns, key_name,
  key_public_pem_file (PEM public key) and password (returned by GetPasswordData)

Every address the emulator dials or reports must be a loopback address.
"""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="run a loopback stand-in for the AWS side of Session Manager",
        description=(
            "Serve the SSM API and the Session Manager data channel on 127.0.0.1 for emulated "
            "instances, so ssmex and the AWS CLI can hold sessions with no AWS account."
        ),
        epilog=CONFIG_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="SSM API port on 127.0.0.1 (default: a free port)")
    parser.add_argument("--config", metavar="FILE", help="JSON file describing the emulated instances")
    parser.add_argument("--ec2-port", type=int, default=0, metavar="PORT", help="EC2 API port on 127.0.0.1 (default: a free port)")
    parser.add_argument(
        "--data-channel-port",
        type=int,
        default=0,
        metavar="PORT",
        help="port of the data-channel websocket server on 127.0.0.1 (default: a free port)",
    )
    parser.add_argument(
        "--forward",
        action="append",
        default=[],
        metavar="INSTANCE:PORT=HOST:PORT",
        help=(
            "make port sessions to an instance's remote port reach a loopback address, such as "
            "i-0123456789abcdef0:22=127.0.0.1:2222; repeat for more ports"
        ),
    )
    parser.add_argument("--debug", action="store_true", help="log every API call and message")
    parser.set_defaults(handler=run)


def environment_lines(endpoint: str, ec2_endpoint: str | None = None) -> list[str]:
    """Return the commands that point ssmex or the AWS CLI at the emulator, for this OS's shell."""
    settings = {
        "AWS_ENDPOINT_URL_SSM": endpoint,
        **({"AWS_ENDPOINT_URL_EC2": ec2_endpoint} if ec2_endpoint else {}),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
    }
    if os.name == "nt":
        return [f"$env:{name} = '{value}'" for name, value in settings.items()]
    return [f"export {name}={value}" for name, value in settings.items()]


def _bind(create, port: int, option: str):
    """Create a loopback server, turning a port that cannot be bound into one sentence."""
    try:
        return create()
    except OSError as error:
        raise SsmexError(
            f"The port {port} (from {option}) cannot be used on 127.0.0.1 ({error.strerror}); "
            f"pass another {option} or leave it out to pick a free one.",
            ExitCode.USAGE,
        ) from None


def run(args: argparse.Namespace) -> int:
    # Imported here so that other commands do not pay for http.server at start-up.
    from ssmex.emulator.api import Emulator, SsmApiServer
    from ssmex.emulator.config import apply_forwards, load_instances
    from ssmex.emulator.datachannel import DataChannelServer
    from ssmex.emulator.ec2 import Ec2ApiServer

    logging.getLogger("ssmex.emulator").setLevel(logging.DEBUG if args.debug else logging.INFO)
    instances = load_instances(args.config)
    apply_forwards(instances, args.forward)
    emulator = Emulator(instances)
    stopped = threading.Event()
    data_channel = DataChannelServer(emulator, port=args.data_channel_port)
    api = _bind(lambda: SsmApiServer(emulator, port=args.port), args.port, "--port")
    ec2_api = _bind(lambda: Ec2ApiServer(emulator, port=args.ec2_port), args.ec2_port, "--ec2-port")
    with api as server, ec2_api as ec2_server, data_channel as channel:
        print(f"ssmex emulator: SSM API at {server.endpoint_url}, EC2 API at {ec2_server.endpoint_url}", flush=True)
        print(f"ssmex emulator: data channel at {channel.url}", flush=True)
        for instance in emulator.instances.values():
            public = f" public {instance.public_ip}" if instance.public_ip else ""
            print(
                f"  {instance.instance_id}  {instance.name or '-':14} {instance.platform:8} {instance.ping_status:14} "
                f"{instance.state}{public}".rstrip(),
                flush=True,
            )
            for remote_port, (host, port) in sorted(instance.port_map.items()):
                print(f"    port {remote_port} -> {host}:{port}", flush=True)
        print("Point ssmex or the AWS CLI at it (fake credentials):", flush=True)
        for line in environment_lines(server.endpoint_url, ec2_server.endpoint_url):
            print(f"  {line}", flush=True)
        print("Press Ctrl+C to stop.", flush=True)
        try:
            while not stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            print("ssmex emulator: stopped.", flush=True)
    return 0
