"""Encoder-only readers: answer by pointing at a span of the passages, or say it is not there.

Importing this package is cheap (no torch, no onnxruntime); a model loads with `load_reader`.
"""

from rag.readers.base import MARKER, NOT_FOUND
from rag.readers.loading import BACKENDS, PRESETS, is_reader, load_reader

__all__ = ["BACKENDS", "MARKER", "NOT_FOUND", "PRESETS", "is_reader", "load_reader"]
