"""How to build: the options a user gave, resolved against what the index records. Pure: no
files, no models; the driver loads the embedder the settings name and says the notices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS, DEFAULT_MAX_FILE_MB, INDEX_TYPES
from ..embedders import is_embedder
from ..embedders.names import canonical_name
from ..errors import IndexError_, RagError


@dataclass
class BuildOptions:
    """How to build. None means: as the index records it, else the default."""

    embedder: Any = None  # a name, or an embedder object (torch or ONNX)
    backend: str | None = None  # torch, onnx (int8) or onnx-fp32; None: the index's, else the default
    chunk_tokens: int | None = None
    overlap: int | None = None
    index_type: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    rehash: bool = False  # read and hash every file, even those whose size and mtime are unchanged
    follow_symlinks: bool = False  # index what symbolic links point at (files and folders, loops skipped)
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB  # larger files are skipped with a warning
    rebuild: bool = (
        False  # build every document again (a new generation; stored vectors reused), source and embedder may change
    )
    progress: bool = False
    warn: Callable[[str], None] | None = None
    notify: Callable[[str], None] | None = None  # one-line notices: what a changed option rebuilds
    ray: Any = None  # a rag.build.on_ray.RayOptions: plan and embed on a Ray cluster (the writer stays here)


@dataclass
class Settings:
    """What this build uses; `notices` say what a change from the recorded settings costs."""

    embedder: str  # canonical name
    backend: str  # as chosen; the loaded embedder may fall back to torch
    chunk_tokens: int
    overlap: int
    index_type: str
    rebuild: bool
    rechunk: bool  # every document is chunked again
    rehash: bool
    notices: list[str] = field(default_factory=list)


def resolve(
    options: BuildOptions, recorded: dict, *, index: Path, source: str, has_generation: bool, default_backend: str
) -> Settings:
    """The settings for this build, or an error naming the option that conflicts with the index.
    `recorded` is what the index was built with ({} for a new index)."""
    o, rec = options, recorded
    given = o.embedder.name if is_embedder(o.embedder) else o.embedder
    name = canonical_name(given if given is not None else rec.get("embedder"))
    if rec.get("embedder") and name != rec["embedder"] and not o.rebuild:
        raise IndexError_(
            f"index {index} was built with embedder {rec['embedder']!r}, not {name!r}: pass the same "
            f"--embedder, add --rebuild to embed everything again with {name!r}, or choose another --index folder"
        )
    if rec.get("documents") and rec.get("source") != source and not o.rebuild:
        raise IndexError_(
            f"index {index} holds documents from {rec.get('source')}, not {source}: add --rebuild to "
            "replace them with these, or choose another --index folder for this one"
        )
    backend = getattr(o.embedder, "backend", None) if is_embedder(o.embedder) else None
    backend = backend or choose(o.backend, rec.get("backend"), default_backend)
    chunk_tokens = choose(o.chunk_tokens, rec.get("chunk_tokens"), DEFAULT_CHUNK_TOKENS)
    overlap = choose(o.overlap, rec.get("overlap"), DEFAULT_CHUNK_OVERLAP)
    index_type = choose(o.index_type, rec.get("index_type"), "flat")
    if index_type not in INDEX_TYPES:
        raise RagError(f"unknown index type {index_type!r}: use one of {', '.join(INDEX_TYPES)}")
    if chunk_tokens < 1 or not 0 <= overlap < chunk_tokens:
        raise RagError(f"--overlap must be at least 0 and below --chunk-tokens ({chunk_tokens}), got {overlap}")
    rechunk = o.rebuild or (bool(rec) and (rec.get("chunk_tokens"), rec.get("overlap")) != (chunk_tokens, overlap))
    notices = []
    if rechunk and has_generation and not o.rebuild:
        notices.append(
            f"--chunk-tokens {chunk_tokens} --overlap {overlap} differ from the index's "
            f"{rec['chunk_tokens']}/{rec['overlap']}: every document is chunked again, and chunks whose text "
            "changed are embedded again"
        )
    if has_generation and index_type != rec.get("index_type"):
        notices.append(
            f"--index-type {index_type} differs from the index's {rec['index_type']}: the FAISS index is "
            "rebuilt from the stored vectors (nothing is embedded again)"
        )
    return Settings(name, backend, chunk_tokens, overlap, index_type, o.rebuild, rechunk, o.rehash, notices)


def backend_notice(settings: Settings, recorded: dict, has_generation: bool) -> str | None:
    """What a backend other than the index's means for its vectors."""
    if has_generation and recorded.get("backend") and settings.backend != recorded["backend"]:
        return (
            f"--backend {settings.backend} differs from the index's {recorded['backend']}: new chunks are embedded "
            f"with {settings.backend}, stored vectors are kept (the backends' vectors agree to a cosine of 0.99)"
        )
    return None


def choose(given, recorded, default):
    return given if given is not None else (recorded if recorded is not None else default)
