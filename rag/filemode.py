"""The mode a new file gets from the user's umask, for files rag writes through a temporary file.

`tempfile.mkstemp` creates files 0600 whatever the umask (it is meant for secrets); a page or a
model rag writes that way and renames into place would then be the one file of its folder others
cannot read. So such files are given the mode `open()` would have given them.
"""

from __future__ import annotations

import os
from pathlib import Path


def umask() -> int:
    """The process's umask (read from /proc where it can be, else by setting and restoring it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def as_umask_allows(fd: int) -> None:
    """Give a file made by mkstemp the mode a plain open() would have: 0666 less the umask."""
    os.fchmod(fd, 0o666 & ~umask())
