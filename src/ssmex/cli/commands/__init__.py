"""The subcommands, one module each; each has register(subparsers, common) and a handler."""

from ssmex.cli.commands import demo, emulator, invoke, sessions, start_session, supervise

COMMANDS = [start_session, sessions, emulator, demo, invoke, supervise]
