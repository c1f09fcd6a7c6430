"""The subcommands, one module each; each has register(subparsers, common) and a handler.

Modules are imported only when needed: a run of one command imports that command's
module alone, which keeps start-up short for ssh's ProxyCommand and scripts.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Iterable

# Each command name with the module that registers it, in the order --help lists them.
COMMAND_MODULES: dict[str, str] = {
    "start-session": "start_session",
    "port-forward": "port_forward",
    "rdp": "rdp",
    "ec2-rdp": "rdp",
    "ssh-proxy": "ssh_proxy",
    "sessions": "sessions",
    "doctor": "doctor",
    "emulator": "emulator",
    "demo": "demo",
    "invoke": "invoke",
    "supervise": "supervise",
}


def load(names: Iterable[str] | None = None) -> list[ModuleType]:
    """Import the modules of the named commands (all commands for None), each once."""
    wanted = COMMAND_MODULES if names is None else [name for name in names if name in COMMAND_MODULES]
    modules = dict.fromkeys(COMMAND_MODULES[name] for name in wanted)
    return [importlib.import_module(f"ssmex.cli.commands.{module}") for module in modules]
