"""The bench's retrieval: every sampled question searched once, in a batch, deep enough for
the ranking metrics, plus a few single queries timed as a user pays them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from rag.bench.config import LATENCY_PROBE, Retrieval
from rag.bench.datasets import BenchQuestion
from rag.bench.metrics import dedupe, mrr_at_k, ndcg_at_k, recall_at_k
from rag.documents import Passage
from rag.retrieve import Retriever


def retrieve(
    index,
    questions: Sequence[BenchQuestion],
    depth: int,
    ks: Sequence[int],
    progress: bool = False,
    retriever: Retriever | None = None,
    reranker=None,
) -> Retrieval:
    """Search all questions in one batch, deep enough for `depth` distinct documents each.

    With a reranker (`retriever.rerank`) the batch runs without it, at least as deep as its pool,
    and each question's chunks are then reranked: one search gives the ranking before reranking
    (kept as `before_rerank`) and the final one, which answerers are given. `reranker` is the
    loaded model (else it is loaded here). Then a few single-query searches are timed, with the
    full retriever (and, for the section before reranking, without the reranker): latency is what
    `rag ask` pays per question, which a batch does not show.
    """
    settings = retriever.rerank if retriever is not None else None
    base = replace(retriever, rerank=None) if settings is not None else retriever
    depth = min(depth, index.manifest.counts["documents"])  # never more distinct documents than there are
    texts = [q.question for q in questions]
    probe_k = min(len(index), 2 * depth)
    start = time.perf_counter()
    found = search_deep(index, texts, depth, base, progress, retriever.depth if retriever is not None else 1)
    before = scored(questions, found, depth, ks, time.perf_counter() - start)
    before.latency_ms = probe_latency(index, texts[:LATENCY_PROBE], probe_k, base)
    if settings is None:
        return before
    from rag.bench.reranking import load_bench_reranker, rerank_all, reranker_info

    reranker = reranker or load_bench_reranker(retriever)
    start = time.perf_counter()
    reranked = rerank_all(questions, found, settings, reranker)
    result = scored(questions, reranked, depth, ks, before.seconds + time.perf_counter() - start)
    result.latency_ms = probe_latency(index, texts[:LATENCY_PROBE], probe_k, retriever)
    result.before_rerank, result.reranker = before, {**settings.to_dict(), **reranker_info(reranker)}
    return result


def search_deep(
    index, texts: Sequence[str], depth: int, retriever: Retriever | None, progress: bool, floor: int = 1
) -> list[list[Passage]]:
    """Each text's chunks, at least `floor` deep (a reranker's pool) and covering `depth` distinct
    documents where the index has them.

    A chunked index can return several chunks of one document, and metrics are per document
    (deduplicated), so texts whose chunks cover fewer than `depth` documents are searched again deeper.
    """
    total = len(index)
    k = max(1, min(total, max(2 * depth, floor)))
    found = index.search_many(texts, k, progress=progress, retriever=retriever) if texts else []
    short = [i for i, chunks in enumerate(found) if len(dedupe(p.doc_path for p in chunks)) < depth]
    while short and k < total:
        k = min(total, k * 4)
        for i, chunks in zip(short, index.search_many([texts[i] for i in short], k, retriever=retriever)):
            found[i] = chunks
        short = [i for i in short if len(dedupe(p.doc_path for p in found[i])) < depth]
    return found


def scored(
    questions: Sequence[BenchQuestion], found: Sequence[list[Passage]], depth: int, ks: Sequence[int], seconds: float
) -> Retrieval:
    """Each question's chunks, its top `depth` distinct documents, and their scores."""
    result = Retrieval({}, {}, {}, seconds)
    for q, chunks in zip(questions, found):
        ranked = dedupe(p.doc_path for p in chunks)[:depth]
        result.chunks[q.id] = chunks
        result.ranked[q.id] = ranked
        result.scores[q.id] = retrieval_scores(ranked, q.gold, ks)
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
        **before_rerank_fields(q, retrieval),
    }


def before_rerank_fields(q: BenchQuestion, retrieval: Retrieval) -> dict:
    """With a reranker, a record also keeps the question's ranking before it and its scores
    (nothing without one, so records stay as they were)."""
    before = retrieval.before_rerank
    if before is None:
        return {}
    return {"retrieved_ids_before_rerank": before.ranked[q.id], "retrieval_before_rerank": rounded(before.scores[q.id])}


def rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}
