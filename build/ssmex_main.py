"""Entry point of the frozen ssmex executable."""

import os
import sys


def restore_library_path() -> None:
    """Give child processes the library path the user had, not the bundle's.

    On Linux the PyInstaller bootloader puts its unpack folder first in LD_LIBRARY_PATH
    and keeps the user's value in LD_LIBRARY_PATH_ORIG. Children such as
    session-manager-plugin must not load the bundle's libraries. This process already
    has its libraries resolved, because the dynamic loader reads LD_LIBRARY_PATH only
    when a process starts.

    NOTE: on Windows the bootloader calls SetDllDirectory with its unpack folder, and
    children inherit that setting too; it is left alone because it has not been tried
    on Windows whether ssmex's later imports still find their DLLs after resetting it.
    """
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
        return
    bundle = getattr(sys, "_MEIPASS", None)
    first = os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)[0]
    if bundle and first and os.path.realpath(first) == os.path.realpath(bundle):
        del os.environ["LD_LIBRARY_PATH"]


if __name__ == "__main__":
    restore_library_path()

    from ssmex.entry import main

    sys.exit(main())
