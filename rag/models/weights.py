"""A trained encoder's weight files beside each other: which ONNX file runs it, and which weights
exactly a loaded model runs, as a short key (for `rag bench`'s resume keys). Readers and
rerankers keep the same files: model.safetensors, model.onnx (fp32) and model-int8.onnx."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ONNX_INT8 = "model-int8.onnx"
ONNX_FP32 = "model.onnx"
ONNX_FILES = {"onnx": (ONNX_INT8, ONNX_FP32), "onnx-fp32": (ONNX_FP32,)}  # backend -> files, first found runs


def onnx_file(folder: Path, backend: str = "onnx") -> Path | None:
    """The ONNX file `backend` runs in `folder` (int8 before fp32 for "onnx"), or None."""
    for name in ONNX_FILES.get(backend, ()):
        if (folder / name).is_file():
            return folder / name
    return None


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
