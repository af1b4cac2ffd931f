"""Embedders: the interface the index, the builder and the benchmarks rely on, and the one place
that picks a backend for a name.

Backends: `torch` (sentence-transformers, fp32; `rag.embedders.st`), `onnx` (ONNX Runtime, weights
quantised to int8) and `onnx-fp32` (both `rag.embedders.onnx`). Their vectors agree to a cosine of
0.99+ (BENCHMARKS.md), so an index built with one is searched with another. Importing this package
imports neither torch nor ONNX Runtime: each backend loads its model on first use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..config import DEFAULT_BATCH_SIZE, DEFAULT_EMBEDDER
from ..errors import EmbedderNotAvailable
from .names import canonical_name
from .onnx import OnnxEmbedder, cached, usable_cache
from .st import TorchEmbedder

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BACKENDS", "Embedder", "default_backend", "is_embedder", "load_embedder", "query_embedder"]

BACKENDS = ("torch", "onnx", "onnx-fp32")


class Embedder(Protocol):
    """What callers use of an embedder, whichever backend runs it (and what a test's stand-in
    must provide): vectors of unit length, so inner product is cosine similarity."""

    name: str  # canonical: the name recorded in the manifest
    backend: str  # one of BACKENDS

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input the model reads; the builder warns when chunks are longer."""
        ...

    @property
    def tokenizer(self) -> Any:
        """Called as a Hugging Face tokenizer is by the chunker: `tokenizer(text, ...)["offset_mapping"]`."""
        ...

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """float32 array (len(texts), dimension), each row of unit length."""
        ...


def is_embedder(value: object) -> bool:
    """An embedder object (torch or ONNX) rather than a model name."""
    return hasattr(value, "encode") and hasattr(value, "name")


def load_embedder(
    name: str | None,
    backend: str = "torch",
    batch_size: int = DEFAULT_BATCH_SIZE,
    notify: Callable[[str], None] | None = None,
) -> Embedder:
    """The embedder for `name` on `backend` (`torch`, `onnx` or `onnx-fp32`; see `rag.embedders.onnx`)."""
    if backend == "torch":
        return TorchEmbedder(name, batch_size=batch_size)
    if backend not in BACKENDS:
        raise EmbedderNotAvailable(f"unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")
    emb = OnnxEmbedder(name or DEFAULT_EMBEDDER, backend, batch_size=batch_size, notify=notify)
    problem = usable_cache(emb.name)
    if problem is None:
        try:
            _ = emb.settings  # the export, read (or made) now: a cache that fails fails once, here
            return emb
        except OSError as e:
            problem = f"{e.filename or 'the ONNX export cache'}: {e.strerror or e}"
    say = notify or (lambda message: print(message, file=sys.stderr))
    say(
        f"the ONNX export cache cannot be used ({problem}): embedding with --backend torch instead "
        "(set $RAG_CACHE to a folder of your own to use ONNX Runtime)"
    )
    return TorchEmbedder(name, batch_size=batch_size)


def query_embedder(name: str, backend: str) -> Embedder:
    """The embedder for searching an index built with `name` on `backend`: ONNX whenever an export
    of the model is cached (same variant first), so a search imports no torch; else torch.
    `$RAG_QUERY_BACKEND` (torch, onnx, onnx-fp32) chooses instead."""
    forced = os.environ.get("RAG_QUERY_BACKEND", "").strip()
    if forced:
        if forced not in BACKENDS:
            raise EmbedderNotAvailable(f"$RAG_QUERY_BACKEND is {forced!r}: use one of {', '.join(BACKENDS)}")
        return load_embedder(name, forced)
    for variant in ((backend,) if backend != "torch" else ()) + ("onnx-fp32", "onnx"):
        if cached(canonical_name(name), variant) is not None:
            return OnnxEmbedder(name, variant)
    return TorchEmbedder(name)


def default_backend() -> str:
    """The backend a new index is built with: ONNX Runtime fp32 where it is installed. On this
    project's CPU (AVX2, no VNNI) int8 embeds no faster and loses 0.003 recall@5 (BENCHMARKS.md)."""
    import importlib.util

    return "onnx-fp32" if importlib.util.find_spec("onnxruntime") is not None else "torch"
