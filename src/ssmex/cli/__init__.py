"""The ssmex command line: a thin layer that parses arguments and calls the engine."""

from ssmex.cli.app import main

__all__ = ["main"]
