"""The subcommands, one module each; each has register(subparsers, common) and a handler."""

from ssmex.cli.commands import emulator, invoke, sessions, start_session, supervise

COMMANDS = [start_session, sessions, emulator, invoke, supervise]
