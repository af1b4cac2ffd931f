"""What a `rag bench` run depends on (the CLI fills it from its options) and what it keeps
in memory between its stages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.config import (
    DEFAULT_BEIR_SPLIT,
    DEFAULT_BENCH_KS,
    DEFAULT_BENCH_PASSAGES,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_SAMPLE_SEED,
)
from rag.documents import Passage
from rag.retrieve import Retriever

RANKING_DEPTH = 10  # MRR@10 and nDCG@10 need ten distinct documents
LATENCY_PROBE = 50  # single-query searches timed for retrieval latency (metrics use one batch)


@dataclass
class BenchConfig:
    """Everything a run depends on; the CLI fills it from its options."""

    dataset: Path
    generators: list[str] | None = None  # None: one of each family available here
    ks: Sequence[int] = DEFAULT_BENCH_KS
    passages: int = DEFAULT_BENCH_PASSAGES  # retrieved chunks offered to each generator
    limit: int | None = None
    sample_seed: int = DEFAULT_SAMPLE_SEED
    out: Path | None = None  # None: bench-out/<dataset>-<timestamp>
    oracle: bool = False
    retrieval_only: bool = False
    format: str | None = None
    split: str = DEFAULT_BEIR_SPLIT  # BEIR qrels file
    index_cache: Path | None = None  # None: <rag cache>/bench-index/<name>-<key>
    embedder: object = None  # name, Embedder instance, or None for the default
    backend: str | None = None  # embedding backend: torch, onnx (int8) or onnx-fp32; None: the default
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    overlap: int = DEFAULT_CHUNK_OVERLAP
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    extractive: bool = False  # also run every generator in extractive mode, side by side
    fid: bool = False  # also run every generator with Fusion-in-Decoder (encoder-decoder ones run)
    retriever: Retriever = field(default_factory=Retriever)  # dense, bm25 or hybrid (+ MMR)
    progress: bool = False
    command: str | None = None
    load: Callable[[str], object] | None = None  # how to load a generator (tests count calls)
    echo: Callable[[str], None] = lambda message: None  # one-line status messages
    warn: Callable[[str], None] | None = None
    ray: object = None  # a rag.cluster.RayOptions: answer on Ray actors, one loaded answerer each


@dataclass
class Retrieval:
    """Per question: ranked chunks, distinct ranked doc ids, and its retrieval scores."""

    chunks: dict[str, list[Passage]]
    ranked: dict[str, list[str]]
    scores: dict[str, dict[str, float]]
    seconds: float  # the batched search of all questions
    latency_ms: list[float] = field(default_factory=list)  # single-query probe
    before_rerank: Retrieval | None = None  # with a reranker: the retriever's own ranking, measured alike
    reranker: dict | None = None  # with a reranker: its settings and what ran it (`bench.reranking.reranker_info`)
