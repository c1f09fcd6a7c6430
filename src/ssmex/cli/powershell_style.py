"""The PowerShell module's commands, spelled PowerShell's way, turned into ssmex commands.

Two callers share this table. `ssmex Start-SSMSessionEx -Target i-0123 -PassThru` comes
from the sh and cmd shims and is read here as PowerShell reads a command line: names
case-insensitive, any unambiguous prefix of a name, `-Name:value`, and positional values.
`ssmex invoke` gets the same parameters by name from the JSON the PowerShell module sends.
Both end as an ordinary ssmex argument list, so the existing commands do the work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ssmex.cli.powershell_values import array_literal, parse_parameter_text
from ssmex.errors import ExitCode, SsmexError
from ssmex.quoting import native_style, render_command

STRING = "string"
INTEGER = "integer"
SWITCH = "switch"
HASHTABLE = "hashtable"
STRINGS = "strings"


@dataclass(frozen=True)
class Parameter:
    """One parameter of a PowerShell-style command and the ssmex option it becomes.

    A parameter without an option is passed as a positional argument after `--`.
    """

    name: str
    kind: str = STRING
    option: str | None = None
    position: int | None = None
    mandatory: bool = False


@dataclass(frozen=True)
class Command:
    """A PowerShell-style command: its name, the ssmex words it runs and its parameters."""

    name: str
    ssmex_words: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    # Parameters of which at least one must be given.
    one_of: tuple[str, ...] = ()

    def all_parameters(self) -> tuple[Parameter, ...]:
        return self.parameters + COMMON_PARAMETERS


# -Debug turns on ssmex's redacted debug log, and -WhatIf prints the ssmex command instead
# of running it. Both are common parameters in PowerShell, so they take part in prefix matching.
COMMON_PARAMETERS = (
    Parameter("Debug", SWITCH, "--debug"),
    Parameter("WhatIf", SWITCH),
)

_AWS = (
    Parameter("ProfileName", option="--profile"),
    Parameter("Region", option="--region"),
)

COMMANDS = (
    Command(
        "Start-SSMSessionEx",
        ("start-session",),
        (
            Parameter("Target", option="--target", position=0, mandatory=True),
            Parameter("DocumentName", option="--document-name", position=1),
            Parameter("Parameter", HASHTABLE, "--parameters"),
            Parameter("Reason", option="--reason"),
            *_AWS,
            Parameter("PassThru", SWITCH, "--pass-thru"),
            Parameter("EndpointUrl", option="--endpoint-url"),
            Parameter("Ec2EndpointUrl", option="--ec2-endpoint-url"),
            Parameter("PluginPath", option="--plugin"),
            Parameter("Client", option="--client"),
        ),
    ),
    Command("Get-SSMSessionEx", ("sessions", "list", "--json"), ()),
    Command(
        "Stop-SSMSessionEx",
        ("sessions", "stop"),
        (
            Parameter("SessionId", STRINGS, position=0),
            Parameter("All", SWITCH, "--all"),
        ),
        one_of=("SessionId", "All"),
    ),
    Command(
        "Start-SSMRDPClient",
        ("rdp",),
        (
            Parameter("InstanceId", position=0, mandatory=True),
            Parameter("PemFile", option="--key-file", mandatory=True),
            Parameter("Port", INTEGER, "--port"),
            Parameter("LocalPort", INTEGER, "--local-port"),
            Parameter("NoLaunch", SWITCH, "--no-launch"),
            *_AWS,
            Parameter("EndpointUrl", option="--endpoint-url"),
            Parameter("Ec2EndpointUrl", option="--ec2-endpoint-url"),
            Parameter("PluginPath", option="--plugin"),
            Parameter("Client", option="--client"),
        ),
    ),
    Command(
        "Start-EC2RDPClient",
        ("ec2-rdp",),
        (
            Parameter("InstanceId", position=0, mandatory=True),
            Parameter("PemFile", option="--key-file", mandatory=True),
            Parameter("Port", INTEGER, "--port"),
            Parameter("NoLaunch", SWITCH, "--no-launch"),
            *_AWS,
            Parameter("Ec2EndpointUrl", option="--ec2-endpoint-url"),
        ),
    ),
)


def find_command(name: str) -> Command | None:
    """Return the PowerShell-style command with this name, ignoring case."""
    for command in COMMANDS:
        if command.name.lower() == name.lower():
            return command
    return None


def _names(parameters: Sequence[Parameter]) -> str:
    names = [f"-{parameter.name}" for parameter in parameters]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def match_parameter(command: Command, written: str) -> Parameter:
    """Find a parameter by its full name or an unambiguous prefix, ignoring case."""
    candidates = command.all_parameters()
    lowered = written.lower()
    for parameter in candidates:
        if parameter.name.lower() == lowered:
            return parameter
    matches = [parameter for parameter in candidates if parameter.name.lower().startswith(lowered)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise SsmexError(
            f"The parameter name -{written} of {command.name} is ambiguous because it matches "
            f"{_names(matches)}; type more of the name.",
            ExitCode.USAGE,
        )
    raise SsmexError(
        f"{command.name} has no parameter -{written}; its parameters are {_names(candidates)}.",
        ExitCode.USAGE,
    )


def _switch_value(command: Command, parameter: Parameter, text: str) -> bool:
    value = text.strip().lower().lstrip("$")
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise SsmexError(
        f"The switch -{parameter.name} of {command.name} takes $true or $false after a colon, not {text!r}.",
        ExitCode.USAGE,
    )


def _convert_text(command: Command, parameter: Parameter, text: str) -> Any:
    """Convert a command-line word to the parameter's kind."""
    if parameter.kind == INTEGER:
        try:
            return int(text)
        except ValueError:
            raise SsmexError(
                f"The value {text!r} of -{parameter.name} is not a whole number; pass a number such as 3389.",
                ExitCode.USAGE,
            ) from None
    if parameter.kind == HASHTABLE:
        return parse_parameter_text(text, parameter.name)
    if parameter.kind == STRINGS:
        return array_literal(text, parameter.name)
    return text


def _bind(command: Command, bound: dict[str, Any], parameter: Parameter, value: Any) -> None:
    if parameter.name in bound:
        raise SsmexError(f"The parameter -{parameter.name} of {command.name} was given twice; give it once.", ExitCode.USAGE)
    bound[parameter.name] = value


def parse_arguments(command: Command, words: Sequence[str]) -> dict[str, Any]:
    """Bind command-line words to parameters the way PowerShell's binder does.

    Named parameters first take their value from `-Name:value` or the next word; the
    remaining words fill the positional parameters not yet bound, in position order.
    Words after `--` are always positional.
    """
    bound: dict[str, Any] = {}
    positional: list[str] = []
    index = 0
    only_positional = False
    while index < len(words):
        word = words[index]
        index += 1
        if only_positional or len(word) < 2 or word[0] != "-" or not (word[1].isalpha() or word[1] == "_"):
            if word == "--" and not only_positional:
                only_positional = True
                continue
            positional.append(word)
            continue

        written, colon, attached = word[1:].partition(":")
        parameter = match_parameter(command, written)
        if parameter.kind == SWITCH:
            _bind(command, bound, parameter, _switch_value(command, parameter, attached) if colon else True)
            continue
        if colon:
            text = attached
        elif index < len(words):
            text = words[index]
            index += 1
        else:
            raise SsmexError(
                f"The parameter -{parameter.name} of {command.name} needs a value; put it after the name.",
                ExitCode.USAGE,
            )
        _bind(command, bound, parameter, _convert_text(command, parameter, text))

    open_positions = sorted(
        (parameter for parameter in command.parameters if parameter.position is not None and parameter.name not in bound),
        key=lambda parameter: parameter.position,
    )
    if len(positional) > len(open_positions):
        extra = positional[len(open_positions)]
        raise SsmexError(
            f"{command.name} has no positional parameter left for {extra!r}; name the parameter it is for.",
            ExitCode.USAGE,
        )
    for parameter, text in zip(open_positions, positional):
        bound[parameter.name] = _convert_text(command, parameter, text)
    return bound


def _check_json_value(command: Command, parameter: Parameter, value: Any) -> Any:
    """Check one value from a JSON request against the parameter's kind."""

    def invalid(expected: str) -> SsmexError:
        return SsmexError(
            f"The value of {parameter.name} for {command.name} must be {expected}, not {json.dumps(value)[:60]}.",
            ExitCode.USAGE,
        )

    if parameter.kind == SWITCH:
        if not isinstance(value, bool):
            raise invalid("true or false")
        return value
    if parameter.kind == INTEGER:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise invalid("a whole number")
        return _convert_text(command, parameter, str(value))
    if parameter.kind == HASHTABLE:
        if not isinstance(value, dict):
            raise invalid("an object of names and values")
        return parse_parameter_text(json.dumps(value), parameter.name)
    if parameter.kind == STRINGS:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise invalid("a string or a list of strings")
        return items
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise invalid("a string")
    return str(value)


def bind_request(command: Command, parameters: dict[str, Any]) -> dict[str, Any]:
    """Bind the parameters of a JSON request: full names only, ignoring case.

    A null value means the parameter was not given.
    """
    by_name = {parameter.name.lower(): parameter for parameter in command.all_parameters()}
    bound: dict[str, Any] = {}
    for written, value in parameters.items():
        parameter = by_name.get(str(written).lower())
        if parameter is None:
            raise SsmexError(
                f"{command.name} has no parameter {written}; its parameters are {_names(command.all_parameters())}.",
                ExitCode.USAGE,
            )
        if value is None:
            continue
        _bind(command, bound, parameter, _check_json_value(command, parameter, value))
    return bound


def ssmex_arguments(command: Command, bound: dict[str, Any]) -> list[str]:
    """Return the ssmex argument list for bound parameters, without the program name.

    Options are written as `--option=value`, so a value that starts with a dash is never
    taken for an option.
    """
    missing = [parameter for parameter in command.parameters if parameter.mandatory and parameter.name not in bound]
    if missing:
        pronoun = "it" if len(missing) == 1 else "them"
        raise SsmexError(f"{command.name} needs {_names(missing)}; add {pronoun} to the command.", ExitCode.USAGE)

    if command.one_of and not any(bound.get(name) for name in command.one_of):
        choices = " or ".join(f"-{name}" for name in command.one_of)
        raise SsmexError(f"{command.name} needs {choices}; add one to the command.", ExitCode.USAGE)

    arguments = list(command.ssmex_words)
    positional: list[str] = []
    for parameter in command.all_parameters():
        if parameter.name not in bound or parameter.name == "WhatIf":
            continue
        value = bound[parameter.name]
        if parameter.option is None:
            positional.extend(value if isinstance(value, list) else [str(value)])
        elif parameter.kind == SWITCH:
            if value:
                arguments.append(parameter.option)
        elif parameter.kind == HASHTABLE:
            arguments.append(f"{parameter.option}={json.dumps(value, ensure_ascii=False)}")
        else:
            arguments.append(f"{parameter.option}={value}")
    if positional:
        arguments.append("--")
        arguments.extend(positional)
    return arguments


def program_name() -> str:
    """Return how to name ssmex in a rendered command: the executable when frozen."""
    return sys.executable if getattr(sys, "frozen", False) else "ssmex"


def available_commands(parser: argparse.ArgumentParser) -> set[str]:
    """Return the subcommand names this build of ssmex has."""
    for action in parser._actions:  # argparse keeps subcommands only in this private list
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def require_available(command: Command, parser: argparse.ArgumentParser) -> None:
    if command.ssmex_words[0] not in available_commands(parser):
        raise SsmexError(
            f"{command.name} needs the `ssmex {command.ssmex_words[0]}` command, which this build of ssmex "
            "does not have; update ssmex.",
            ExitCode.USAGE,
        )


def run_words(words: Sequence[str], parser: argparse.ArgumentParser, run_main: Callable[[list[str]], int]) -> int:
    """Run `ssmex Start-SSMSessionEx ...` as written in a shell and return the exit code.

    -WhatIf prints the ssmex command in this system's shell quoting and runs nothing.
    """
    from ssmex.cli.output import print_error

    command = find_command(words[0])
    assert command is not None, "the caller checks the name with find_command"
    try:
        bound = parse_arguments(command, words[1:])
        arguments = ssmex_arguments(command, bound)
        if bound.get("WhatIf"):
            print(f"What if: {render_command([program_name(), *arguments], native_style(os.name))}")
            return int(ExitCode.OK)
        require_available(command, parser)
    except SsmexError as error:
        print_error(error.message)
        return int(error.exit_code)
    return run_main(arguments)
