"""Which weights exactly a loaded model runs, as a short key (for `rag bench`'s resume keys)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def weights_key(folder: Path, onnx: Path | None, marker: str) -> str:
    """The weight files' names and sizes and rag's training record (its time and settings); not
    mtimes, which an install changes."""
    files = [onnx] if onnx is not None else sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    listing = [(f.name, f.stat().st_size) for f in files if f.is_file()]
    try:
        record = (folder / marker).read_text(encoding="utf-8")
    except OSError:
        record = ""
    return hashlib.sha256(json.dumps([listing, record]).encode()).hexdigest()[:12]
