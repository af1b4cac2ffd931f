"""The bench's retrieval: every sampled question searched once, in a batch, deep enough for
the ranking metrics, plus a few single queries timed as a user pays them."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rag.bench.config import LATENCY_PROBE, Retrieval
from rag.bench.datasets import BenchQuestion
from rag.bench.metrics import dedupe, mrr_at_k, ndcg_at_k, recall_at_k
from rag.retrieve import Retriever


def retrieve(
    index,
    questions: Sequence[BenchQuestion],
    depth: int,
    ks: Sequence[int],
    progress: bool = False,
    retriever: Retriever | None = None,
) -> Retrieval:
    """Search all questions in one batch, deep enough for `depth` distinct documents each.

    A chunked index can return several chunks of one document, and metrics are per document
    (deduplicated), so questions whose chunks cover fewer than `depth` documents are searched
    again deeper. Then a few single-query searches are timed: latency is what `rag ask` pays
    per question, which a batch does not show.
    """
    total = len(index)
    depth = min(depth, index.manifest.counts["documents"])  # never more distinct documents than there are
    texts = [q.question for q in questions]
    k = max(1, min(total, 2 * depth))
    start = time.perf_counter()
    found = index.search_many(texts, k, progress=progress, retriever=retriever) if texts else []
    short = [i for i, chunks in enumerate(found) if len(dedupe(p.doc_path for p in chunks)) < depth]
    while short and k < total:
        k = min(total, k * 4)
        for i, chunks in zip(short, index.search_many([texts[i] for i in short], k, retriever=retriever)):
            found[i] = chunks
        short = [i for i in short if len(dedupe(p.doc_path for p in found[i])) < depth]
    seconds = time.perf_counter() - start

    result = Retrieval({}, {}, {}, seconds)
    for q, chunks in zip(questions, found):
        ranked = dedupe(p.doc_path for p in chunks)[:depth]
        result.chunks[q.id] = chunks
        result.ranked[q.id] = ranked
        result.scores[q.id] = retrieval_scores(ranked, q.gold, ks)
    result.latency_ms = probe_latency(index, texts[:LATENCY_PROBE], min(total, 2 * depth), retriever)
    return result


def retrieval_scores(ranked: Sequence[str], gold: dict[str, int], ks: Sequence[int]) -> dict[str, float]:
    scores = {f"recall@{k}": recall_at_k(ranked, gold, k) for k in ks}
    scores["mrr@10"] = mrr_at_k(ranked, gold, 10)
    scores["ndcg@10"] = ndcg_at_k(ranked, gold, 10)
    return scores


def probe_latency(index, texts: Sequence[str], k: int, retriever: Retriever | None = None) -> list[float]:
    """Milliseconds of single `search` calls (after one warm-up), as a user's question costs."""
    if not texts:
        return []
    index.search(texts[0], k, retriever=retriever)
    times = []
    for text in texts:
        start = time.perf_counter()
        index.search(text, k, retriever=retriever)
        times.append((time.perf_counter() - start) * 1000)
    return times


def retrieval_record(run_key: str, q: BenchQuestion, retrieval: Retrieval) -> dict:
    """A results.jsonl line of a retrieval-only run (generator null)."""
    return {
        "run": run_key,
        "generator": None,
        "question_id": q.id,
        "question": q.question,
        "gold_ids": sorted(q.gold),
        "retrieved_ids": retrieval.ranked[q.id],
        "retrieval": rounded(retrieval.scores[q.id]),
    }


def rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}
