"""The `cheetah` console script: the Rust command of the `cheetah-cli` binary, run in this process."""

from __future__ import annotations

import signal
import sys

from . import _cheetah


def main() -> None:
    # Python's SIGINT handler only sets a flag Python checks between bytecodes, and none run
    # while the command does: the command's own handlers (update and serve stop between dates)
    # or the default disposition must see Ctrl-C, as they do in the binary.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Named `cheetah` in its usage lines however it was started (`python -m cheetah` too).
    sys.exit(_cheetah.run_cli(["cheetah", *sys.argv[1:]]))
