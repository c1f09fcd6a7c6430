"""The subcommands, one module each; each has register(subparsers, common) and a handler."""

from ssmex.cli.commands import (
    demo,
    doctor,
    emulator,
    invoke,
    port_forward,
    rdp,
    sessions,
    ssh_proxy,
    start_session,
    supervise,
)

COMMANDS = [start_session, port_forward, rdp, ssh_proxy, sessions, doctor, emulator, demo, invoke, supervise]
