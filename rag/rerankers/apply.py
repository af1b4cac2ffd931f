"""Reranking a retriever's passages: score the top of the list, fuse the two orders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rag.documents import Passage
from rag.rerankers.base import RerankSettings
from rag.rerankers.fusion import rerank_order


def rerank(question: str, passages: Sequence[Passage], settings: RerankSettings, reranker=None) -> list[Passage]:
    """The same passages in the fused order, ranks renumbered; the ones the reranker read carry its
    score and name (the retriever's score stays in `score`)."""
    if not passages:
        return []
    if reranker is None:
        from rag.rerankers.loading import load_reranker

        reranker = load_reranker(settings.model)
    pool = list(passages[: settings.pool])
    scores = reranker.score(question, [p.text for p in pool])
    order = rerank_order(scores, len(passages), settings.weight, settings.c)
    out = []
    for rank, i in enumerate(order, start=1):
        read = {"rerank_score": round(scores[i], 4), "reranker": reranker.name} if i < len(pool) else {}
        out.append(replace(passages[i], rank=rank, **read))
    return out
