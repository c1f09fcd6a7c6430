"""Questions on the terminal: picking a target from a numbered list and typing a passphrase.

Both read the terminal only when standard input is one; elsewhere the engine gets no
function and reports what it needs in one sentence instead.
"""

from __future__ import annotations

import getpass
import sys
from typing import Optional

from ssmex.errors import ExitCode, SsmexError
from ssmex.keys import PassphrasePrompt
from ssmex.process import is_interactive
from ssmex.targets import Candidate, Chooser


def choose_from_list(title: str, candidates: list[Candidate]) -> Candidate:
    """Print a numbered list on stderr and read a number with input(); Ctrl+D or Ctrl+Z ends it."""
    print(f"{title}:", file=sys.stderr)
    for number, candidate in enumerate(candidates, start=1):
        print(f"  {number}) {candidate.label()}", file=sys.stderr)
    while True:
        print(f"Choose 1-{len(candidates)}: ", end="", file=sys.stderr, flush=True)
        try:
            answer = input().strip()
        except EOFError:
            raise SsmexError("No target was chosen; run again and type one of the numbers.", ExitCode.USAGE) from None
        if answer.isdigit() and 1 <= int(answer) <= len(candidates):
            return candidates[int(answer) - 1]
        print(f"{answer!r} is not one of the numbers shown.", file=sys.stderr)


def terminal_chooser() -> Optional[Chooser]:
    return choose_from_list if is_interactive(sys.stdin) and is_interactive(sys.stderr) else None


def ask_passphrase(path: str) -> str:
    return getpass.getpass(f"Passphrase for {path}: ")


def terminal_passphrase_prompt() -> Optional[PassphrasePrompt]:
    return ask_passphrase if is_interactive(sys.stdin) else None
