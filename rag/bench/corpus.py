"""The bench's corpus index: one per dataset, embedder and chunking, in the rag cache, built
once and updated in place; and the key of what it holds, which keys the results."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from rag.bench.config import BenchConfig
from rag.bench.datasets import BenchSet, load_dataset
from rag.config import cache_dir
from rag.errors import RagError


def load_set(config: BenchConfig) -> BenchSet:
    try:
        return load_dataset(config.dataset, config.format, split=config.split)
    except ValueError as e:
        raise RagError(str(e)) from None


def bench_embedder(config: BenchConfig):
    """The embedder a run indexes and searches with: the one given, else loaded by name."""
    from rag.embedders import default_backend, is_embedder, load_embedder

    if is_embedder(config.embedder):
        return config.embedder
    return load_embedder(config.embedder, config.backend or default_backend())


def index_key(bench: BenchSet, config: BenchConfig, embedder_name: str) -> str:
    """A hash of what the index holds: the corpus (paths and content hashes), embedder and chunking.
    It keys the results (a changed corpus is never resumed into old answers), not the index folder."""
    if bench.corpus_dir is not None:
        from rag.build import folder_sources
        from rag.errors import LoadError

        source = str(bench.corpus_dir.resolve())
        hashes = []
        for src in folder_sources(bench.corpus_dir):
            try:
                hashes.append((src.path, hashlib.sha256(src.read()).hexdigest()))
            except LoadError as e:
                hashes.append((src.path, f"unreadable: {e}"))
    else:
        source = "<documents>"
        hashes = [(d.path, hashlib.sha256(d.text.encode("utf-8")).hexdigest()) for d in bench.documents]
    return sha(
        {
            "source": source,
            "documents": sorted(hashes),
            "embedder": embedder_name,
            "chunk_tokens": config.chunk_tokens,
            "overlap": config.overlap,
            "index_type": "flat",
        }
    )[:16]


def index_folder(bench: BenchSet, config: BenchConfig, embedder_name: str) -> Path:
    """The cached index of a set: one per dataset, embedder and chunking, updated in place when the
    corpus changes (rather than a new folder per content that piles up in the cache)."""
    if config.index_cache is not None:
        return config.index_cache
    where = str(Path(config.dataset).resolve())
    key = sha(
        {
            "dataset": where,
            "embedder": embedder_name,
            "chunk_tokens": config.chunk_tokens,
            "overlap": config.overlap,
            **({"backend": config.backend} if config.backend else {}),
        }
    )[:12]
    return cache_dir() / "bench-index" / f"{safe_name(bench.name)}-{key}"


def dataset_index(config: BenchConfig) -> tuple[BenchSet, object, dict]:
    """The set, and its corpus index as `rag bench` builds or reuses it (for scripts in benchmarks/)."""
    bench = load_set(config)
    emb = bench_embedder(config)
    index, info = open_index(bench, config, emb, index_key(bench, config, emb.name))
    return bench, index, info


def open_index(bench: BenchSet, config: BenchConfig, emb, key: str) -> tuple[object, dict]:
    """Build, update or reuse the set's index (a second run embeds nothing)."""
    from rag.index import Index

    folder = index_folder(bench, config, emb.name)
    options = dict(
        embedder=emb,
        chunk_tokens=config.chunk_tokens,
        overlap=config.overlap,
        index_type="flat",
        progress=config.progress,
        warn=config.warn,
        notify=config.echo,
    )
    if bench.corpus_dir is not None:
        index = Index.build(bench.corpus_dir, folder, **options)
    else:
        index = Index.build_from_documents(bench.documents, folder, **options)
    report = index.build_report
    info = {
        "path": str(folder),
        "key": key,
        "documents": report.documents,
        "chunks": report.chunks,
        "reused": report.chunks_embedded == 0,
        "chunks_embedded": report.chunks_embedded,
        "chunks_reused": report.chunks_reused,
        "seconds": report.seconds,
        "embedder": emb.name,
        "chunk_tokens": config.chunk_tokens,
        "overlap": config.overlap,
        "index_type": index.manifest.index_type,
    }
    return index, info


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def sha(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
