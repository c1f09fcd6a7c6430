"""The console script's entry point, kept free of imports so that Ctrl+C during start-up
ends ssmex with exit status 130 instead of a traceback."""

import sys


def main() -> int:
    try:
        from ssmex.cli.app import main as run
    except KeyboardInterrupt:
        print("error: Interrupted.", file=sys.stderr)
        return 130
    return run()
