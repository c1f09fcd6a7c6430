"""Fail when the onefile executable is larger than its size budget.

    python build/check_size.py [PATH]     # default: dist/ssmex (dist/ssmex.exe on Windows)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Size budget of the onefile executable, in bytes (12 MB, decimal megabytes). Most of it
# is the Python runtime, OpenSSL and botocore; see build/ssmex_bundle.py for what of
# botocore's data is kept.
ONEFILE_BUDGET_BYTES = 12_000_000


def main(argv: list[str]) -> int:
    default = Path(__file__).resolve().parent.parent / "dist" / ("ssmex.exe" if os.name == "nt" else "ssmex")
    path = Path(argv[0]) if argv else default
    if not path.is_file():
        print(f"{path} was not found; build it first with: python build/build.py", file=sys.stderr)
        return 2
    size = path.stat().st_size
    figures = f"{path} is {size / 1e6:.2f} MB ({size} bytes); the budget is {ONEFILE_BUDGET_BYTES / 1e6:.2f} MB"
    if size > ONEFILE_BUDGET_BYTES:
        print(f"{figures}: over budget by {(size - ONEFILE_BUDGET_BYTES) / 1e6:.2f} MB.", file=sys.stderr)
        return 1
    print(f"{figures}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
