"""rag: index a folder with an encoder-only embedder, retrieve, and answer with a pluggable generator.

Heavy libraries (torch, transformers, faiss) load on first use, so importing rag is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .threads import configure as _configure_threads

_configure_threads()  # before torch, faiss or ONNX Runtime is imported: see rag/threads.py

__version__ = "0.1.0"

__all__ = [
    "Index",
    "BuildReport",
    "Document",
    "Chunk",
    "Passage",
    "Embedder",
    "RagError",
    "Pipeline",
    "Answer",
    "load_generator",
    "load_answerer",
    "Retriever",
]

if TYPE_CHECKING:
    from .answerers import load_answerer
    from .answers import Answer
    from .build import BuildReport
    from .documents import Chunk, Document, Passage
    from .embedders import Embedder
    from .errors import RagError
    from .generators import load_generator
    from .index import Index
    from .pipeline import Pipeline
    from .retrieve import Retriever

_LAZY = {
    "Index": "index",
    "BuildReport": "build",
    "Document": "documents",
    "Chunk": "documents",
    "Passage": "documents",
    "Embedder": "embedders",
    "RagError": "errors",
    "Pipeline": "pipeline",
    "Answer": "answers",
    "load_generator": "generators",
    "load_answerer": "answerers",
    "Retriever": "retrieve",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
