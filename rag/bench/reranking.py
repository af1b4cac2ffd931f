"""The bench with a cross-encoder reranker: the ranking before reranking is measured beside the
final one, and a paired bootstrap says whether reranking measurably moved recall@1 and MRR@10.

Retrieval runs once without the reranker (deep enough for its pool); each question's chunks are
then reranked here, so both rankings come from one search and the reranker loads once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rag.bench.datasets import BenchQuestion
from rag.bench.metrics import mrr_at_k, recall_at_k
from rag.documents import Passage
from rag.rerankers.base import RerankSettings
from rag.retrieve import Retriever

GAIN_METRICS = {
    "recall@1": lambda ranked, gold: recall_at_k(ranked, gold, 1),
    "mrr@10": lambda r, g: mrr_at_k(r, g, 10),
}


def load_bench_reranker(retriever: Retriever | None):
    """The retriever's reranker, loaded once (the same instance `Index.search` uses), or None.
    Loaded before the run touches its --out folder, so a reranker that cannot load leaves none."""
    if retriever is None or retriever.rerank is None:
        return None
    from rag.rerankers.loading import load_reranker

    return load_reranker(retriever.rerank.model)


def reranker_info(reranker) -> dict:
    """What identifies the loaded reranker's scores: the runtime, dtype and exact weights run."""
    return {
        "name": reranker.name,
        "runtime": reranker.runtime,
        "dtype": str(reranker.dtype),
        "weights_key": getattr(reranker, "weights_key", ""),
        "source": getattr(reranker, "source", ""),
    }


def run_key_part(reranker) -> dict:
    """The part of the run key the reranker's settings (already in the retriever's dict) leave out:
    another runtime, dtype or retrained weights rank differently, so their answers do not resume."""
    info = reranker_info(reranker)
    return {k: info[k] for k in ("runtime", "dtype", "weights_key")}


def rerank_all(
    questions: Sequence[BenchQuestion], found: Sequence[list[Passage]], settings: RerankSettings, reranker
) -> list[list[Passage]]:
    """Each question's chunks in the reranked order (what `Index.search` with the reranker returns)."""
    from rag.rerankers.apply import rerank

    return [rerank(q.question, chunks, settings, reranker) for q, chunks in zip(questions, found)]


def rerank_gain(before, after, questions: Sequence[BenchQuestion]) -> dict | None:
    """Reranked minus before, per question, for recall@1 and MRR@10: the mean difference and its
    paired bootstrap interval (`rag.bench.paired`); None without questions."""
    from rag.bench.paired import CONFIDENCE, RESAMPLES, SEED, bootstrap_interval, verdict

    if not questions:
        return None
    gain: dict = {"questions": len(questions), "resamples": RESAMPLES, "seed": SEED, "confidence": CONFIDENCE}
    for name, metric in GAIN_METRICS.items():
        diffs = np.array(
            [metric(after.ranked[q.id], q.gold) - metric(before.ranked[q.id], q.gold) for q in questions],
            dtype=np.float64,
        )
        low, high = bootstrap_interval(diffs)
        gain[name] = {
            "difference": float(diffs.mean()),
            "low": low,
            "high": high,
            "verdict": verdict(low, high, "reranked", "before"),
        }
    return gain


def rerank_line(summary: Mapping) -> str | None:
    """One line for the reports: who reranked, and recall@1 / MRR@10 before -> after with intervals."""
    reranker, before = summary["settings"].get("reranker"), summary.get("retrieval_before_rerank")
    if not reranker or before is None:
        return None
    after, gain = summary["retrieval"], summary.get("retrieval_rerank_gain") or {}
    parts = []
    for name, label in (("recall@1", "recall@1"), ("mrr@10", "MRR@10")):
        text = f"{label} {_f(before.get(name))} -> {_f(after.get(name))}"
        if name in gain:
            g = gain[name]
            text += f" ({_signed(g['difference'])}, {gain['confidence']:.0%} CI [{_signed(g['low'])}, {_signed(g['high'])}])"
        parts.append(text)
    return f"Retrieval reranked by {reranker['name']} (top {reranker['pool']}): " + "; ".join(parts)


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _signed(value) -> str:
    return "-" if value is None else f"{value:+.3f}"
