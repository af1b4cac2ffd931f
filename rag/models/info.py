"""What `rag models` lists, one row per model of any role (generators and readers alike)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelInfo:
    """One row of `rag models`."""

    name: str
    family: str
    source: str
    size: str
    available: bool
    note: str = ""
    licence: str = ""
    runtime: str = ""  # what runs it here, e.g. "transformers float32" (a GGUF is dequantised)
    memory: str = ""  # what its weights take in memory in float32 and in bfloat16
