"""How passages are found: dense (the encoder-only embedder and FAISS), BM25, or both fused.

Hybrid retrieval takes a pool of candidates from each ranking and fuses them with reciprocal
rank fusion (RRF): a chunk's score is the sum of 1 / (c + rank) over the rankings that hold it.
RRF needs no score calibration between cosine similarities and BM25 scores, only ranks.
The pool is fixed (`Retriever.pool`), not drawn from k, so asking for more passages only
extends the list: the top 5 of `-k 50` are the top 5 of `-k 5` (see `fuse`).
Maximal marginal relevance (MMR) can then re-rank the candidates so the k passages handed to
a generator are not near-duplicates of each other (overlapping chunks often are).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rag.rerankers.base import RerankSettings

from .config import DEFAULT_BM25_WEIGHT, DEFAULT_POOL, DEFAULT_RETRIEVER, DEFAULT_RRF_K, RETRIEVERS
from .errors import RagError

Hits = list[tuple[int, float]]  # (chunk id, score), best first


@dataclass(frozen=True)
class Retriever:
    """Which ranking to use and how to fuse and diversify it."""

    kind: str = DEFAULT_RETRIEVER
    pool: int = DEFAULT_POOL  # candidates taken from each ranking before fusing (fixed), or for MMR (at least k)
    rrf_k: float = DEFAULT_RRF_K  # RRF's constant c: larger flattens the weight of the top ranks
    bm25_weight: float = DEFAULT_BM25_WEIGHT  # the BM25 ranking's weight in the fusion; dense weighs 1
    mmr: float | None = None  # MMR's lambda: 1 ranks by relevance only, 0 by novelty only
    rerank: RerankSettings | None = None  # a cross-encoder over the top candidates (`rag.rerankers`)

    def __post_init__(self):
        for name, value in (("--rrf-k", self.rrf_k), ("--bm25-weight", self.bm25_weight), ("--mmr", self.mmr)):
            if value is not None and not math.isfinite(value):
                raise RagError(f"{name} must be a finite number, got {value}")
        if self.kind not in RETRIEVERS:
            raise RagError(f"unknown retriever {self.kind!r}: use one of {', '.join(RETRIEVERS)}")
        if self.pool < 1:
            raise RagError(f"--pool must be at least 1, got {self.pool}")
        if self.rrf_k < 0:
            raise RagError(f"--rrf-k must be 0 or more, got {self.rrf_k}")
        if self.bm25_weight < 0:
            raise RagError(f"--bm25-weight must be 0 or more, got {self.bm25_weight}")
        if self.mmr is not None and not 0.0 <= self.mmr <= 1.0:
            raise RagError(f"--mmr takes a lambda between 0 and 1, got {self.mmr}")

    @property
    def needs_bm25(self) -> bool:
        return self.kind in ("bm25", "hybrid")

    def to_dict(self) -> dict:
        """Plain data; without reranking there is no `rerank` key, so keys of runs recorded before
        reranking existed still match."""
        out = {k: v for k, v in asdict(self).items() if k != "rerank"}
        if self.rerank is not None:
            out["rerank"] = self.rerank.to_dict()
        return out

    @classmethod
    def from_dict(cls, values: dict) -> Retriever:
        """The retriever back from `to_dict` (as recorded in bench's summary.json)."""
        values = dict(values)
        rerank = values.pop("rerank", None)
        return cls(**values, rerank=RerankSettings.from_dict(rerank) if rerank is not None else None)

    @property
    def depth(self) -> int:
        """How many candidates to retrieve at least, whatever k is: the reranker's pool (1 without one)."""
        return self.rerank.pool if self.rerank is not None else 1

    def describe(self) -> str:
        text = self.kind
        if self.kind == "hybrid":
            text += f" (RRF c={self.rrf_k:g}, BM25 weight {self.bm25_weight:g}, pool {self.pool})"
        if self.mmr is not None:
            text += f", MMR lambda {self.mmr:g}"
        if self.rerank is not None:
            text += f", {self.rerank.describe()}"
        return text


def as_retriever(value: Retriever | str | None) -> Retriever:
    if value is None:
        return Retriever()
    return value if isinstance(value, Retriever) else Retriever(kind=value)


def rrf(rankings: Sequence[Sequence[int]], c: float = DEFAULT_RRF_K, weights: Sequence[float] | None = None) -> Hits:
    """Reciprocal rank fusion of id rankings (best first): sum of weight / (c + rank).

    Ties go to the best single rank, then the smaller id, so the order is deterministic.
    """
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings)):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (c + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


def fusion_depth(k: int, pool: int) -> int:
    """How deep to read each ranking for k fused hits: the pool, doubled until it reaches k (see `fuse`)."""
    depth = pool
    while depth < k:
        depth *= 2
    return depth


def fuse(dense: Sequence[int], lexical: Sequence[int], k: int, retriever: Retriever) -> Hits:
    """The k best of the RRF fusion of two id rankings (best first), over a fixed pool per ranking.

    The head is the fusion of the top `pool` of each ranking, whatever k is; when k asks for more
    than it holds, fusions of twice, four times... the pool append their new ids in their order
    (each with its score in that fusion). So the result for a larger k always begins with the
    result for a smaller one. Reading the pool from k instead would rescore the head: an id at
    rank 60 of one ranking adds to its fused score only once the pool reaches 60.
    """
    c, weights = retriever.rrf_k, (1.0, retriever.bm25_weight)
    depth = retriever.pool
    hits = rrf([dense[:depth], lexical[:depth]], c, weights)
    seen = {i for i, _ in hits}
    while len(hits) < k and depth < max(len(dense), len(lexical)):
        depth *= 2
        deeper = [(i, s) for i, s in rrf([dense[:depth], lexical[:depth]], c, weights) if i not in seen]
        hits += deeper
        seen.update(i for i, _ in deeper)
    return hits[:k]


def mmr(relevance: np.ndarray, candidates: np.ndarray, k: int, lam: float) -> list[int]:
    """Indices of k candidates chosen by maximal marginal relevance; `candidates` are unit vectors.

    Each step takes the candidate maximising lam * relevance(d) - (1 - lam) * max cos(d, chosen).
    """
    n = len(candidates)
    if n == 0:
        return []
    relevance = np.asarray(relevance, dtype=np.float32)
    similarity = candidates @ candidates.T
    chosen = [int(np.argmax(relevance))]
    redundancy = similarity[chosen[0]].copy()
    left = np.ones(n, dtype=bool)
    left[chosen[0]] = False
    while len(chosen) < min(k, n):
        score = lam * relevance - (1.0 - lam) * redundancy
        score[~left] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(pick)
        left[pick] = False
        redundancy = np.maximum(redundancy, similarity[pick])
    return chosen


def rank(index, queries: Sequence[str], k: int, retriever: Retriever, progress: bool = False) -> list[Hits]:
    """Per query, the k best (chunk id, score): cosine for dense, BM25 score for bm25, RRF score for hybrid.

    With MMR the order is MMR's and the score stays the retriever's.
    """
    wanted = max(k, retriever.pool) if retriever.mmr is not None else k  # MMR chooses among the pool
    depth = fusion_depth(wanted, retriever.pool) if retriever.kind == "hybrid" else wanted
    vectors = index.embed_queries(queries, progress) if retriever.kind != "bm25" else None
    dense = index.dense_hits(vectors, depth) if vectors is not None else None
    lexical = index.lexical_hits(queries, depth) if retriever.needs_bm25 else None
    if retriever.kind == "dense":
        hits = dense
    elif retriever.kind == "bm25":
        hits = lexical
    else:
        hits = [fuse([i for i, _ in d], [i for i, _ in b], wanted, retriever) for d, b in zip(dense, lexical)]
    if retriever.mmr is not None:
        hits = [_diversify(index, h, k, retriever.mmr, retriever.kind == "dense") for h in hits]
    return [h[:k] for h in hits]


def _diversify(index, hits: Hits, k: int, lam: float, cosine: bool) -> Hits:
    """MMR over the retriever's own candidates and relevance, so it diversifies that ranking
    rather than replacing it: dense scores are cosines already; BM25 and RRF scores are scaled
    to [0, 1] over the candidates, the range of the cosine similarities they are weighed against."""
    if not hits:
        return hits
    relevance = np.array([s for _, s in hits], dtype=np.float32)
    if not cosine:
        low, high = relevance.min(), relevance.max()
        relevance = (relevance - low) / (high - low) if high > low else np.ones_like(relevance)
    candidates = index.chunk_vectors([i for i, _ in hits])
    return [hits[i] for i in mmr(relevance, candidates, k, lam)]
