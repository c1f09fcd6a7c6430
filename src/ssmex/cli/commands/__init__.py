"""The subcommands, one module each; each has register(subparsers, common) and a handler."""

from ssmex.cli.commands import sessions, start_session, supervise

COMMANDS = [start_session, sessions, supervise]
