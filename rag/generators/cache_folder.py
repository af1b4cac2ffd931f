"""Cache folders rag writes whole or not at all (the float32 conversion of a GGUF, llama.cpp's
tokenizer read from one): a killed process leaves no half-written folder to be read later."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_new_folder(target: Path, write: Callable[[Path], object]) -> None:
    """`write(folder)` into a new temporary folder beside `target`, then rename it into place, so
    a crash leaves no half-written cache. On OSError (a race lost, a read-only cache) the
    temporary folder, which is ours, is removed and the error raised."""
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))  # new, so ours to remove
        write(tmp)
        os.rename(tmp, target)
    except OSError:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
