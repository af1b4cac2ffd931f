"""A generation folder's marker (rag-generation.json): checked by `rag info --check`, and written
again by an update where the folder is proven the generation's by its manifest, so a generation
whose marker was lost is still retired like any other. See `rag.store` for the layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .store import FORMAT, FORMAT_VERSION, GEN_MARKER, _read_marker, fsync_dir


def gen_marker_ok(folder: Path, gen: int) -> bool:
    marker = _read_marker(folder / GEN_MARKER, FORMAT + "-generation")
    return marker is not None and marker.get("generation") == gen


def restore_gen_marker(folder: Path, gen: int, files: dict) -> bool:
    """Write a generation's missing or damaged marker again, only where the folder is proven the
    generation's: it holds nothing but the files its manifest lists (checked by the caller against
    their checksums), so it can later be retired like any other. Returns whether it was written."""
    tops = {name.split("/", 1)[0] for name in files} | {GEN_MARKER, GEN_MARKER + ".tmp"}
    try:
        entries = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    if not entries <= tops:
        return False
    path = folder / GEN_MARKER
    tmp = path.with_name(path.name + ".tmp")
    data = {"format": FORMAT + "-generation", "format_version": FORMAT_VERSION, "generation": gen}
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    fsync_dir(folder)
    return True
