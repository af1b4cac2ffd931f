"""How a reranker's scores and a retriever's ranking become one order.

Weighted reciprocal rank fusion of two orders of the same candidates: a candidate's fused score
is 1 / (c + retriever rank) + weight / (c + reranker rank). Ranks, not scores, so a BM25 score,
an RRF score and a cross-encoder logit never need calibrating against each other. Ties go to the
better reranker rank, then the better retriever rank, so the order is deterministic. Weight `inf`
is the reranker's order alone. Only the top `pool` candidates are scored; the rest keep their
retriever order after them, so the result is always a permutation of the candidates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def fused_order(scores: Sequence[float], weight: float, c: float) -> list[int]:
    """Positions 0..n-1 of candidates given best first by the retriever, in fused order."""
    n = len(scores)
    by_score = sorted(range(n), key=lambda i: (-scores[i], i))
    rerank_rank = {i: r for r, i in enumerate(by_score, start=1)}
    if math.isinf(weight):
        return by_score
    fused = [1.0 / (c + i + 1) + weight / (c + rerank_rank[i]) for i in range(n)]
    return sorted(range(n), key=lambda i: (-fused[i], rerank_rank[i], i))


def rerank_order(scores: Sequence[float], total: int, weight: float, c: float) -> list[int]:
    """The fused order of the first len(scores) candidates, then the rest (up to `total`) as they were."""
    head = fused_order(scores, weight, c)
    return head + list(range(len(scores), total))
