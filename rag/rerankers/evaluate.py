"""Held-in evaluation of a reranker, and its model card.

Each held-in question's top 30 hybrid chunks are scored once; every rerank pool (5, 10, 20, 30)
and fusion setting is then an order of those scores (`rag.rerankers.fusion`), scored per
document as `rag bench` scores retrieval (recall@1, recall@5, MRR@10 against the gold paragraph).
`chosen` is rag's default setting (`rag.config`: pool, fusion weight and constant), which this grid
decided: the grid is kept whole so the choice can be re-read; `best` is its best recall@1 (any pool).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rag.config import DEFAULT_RERANK_C, DEFAULT_RERANK_POOL, DEFAULT_RERANK_WEIGHT
from rag.integrity import seal
from rag.metrics import dedupe, mrr_at_k, recall_at_k
from rag.rerankers.base import MARKER
from rag.rerankers.fusion import rerank_order

POOLS = (5, 10, 20, 30)
WEIGHTS = (0.5, 1.0, 2.0, 4.0, float("inf"))
CONSTANTS = (1.0, 10.0, 60.0)
LATENCY_QUESTIONS = 30


def ranking_scores(docs: Sequence[str], gold: str) -> dict[str, float]:
    ranked, g = dedupe(docs), {gold: 1}
    return {
        "recall@1": recall_at_k(ranked, g, 1),
        "recall@5": recall_at_k(ranked, g, 5),
        "mrr@10": mrr_at_k(ranked, g, 10),
    }


def mean_scores(rows: Sequence[dict]) -> dict[str, float]:
    return {key: round(sum(r[key] for r in rows) / max(1, len(rows)), 4) for key in rows[0]} if rows else {}


def held_in_metrics(model: str, held: Sequence, ranked: dict[str, list], backend: str, threads, progress: bool) -> dict:
    """Recall and MRR of the retriever alone and of every pool x fusion setting; p50 latency per pool."""
    from rag.rerankers.loading import load_reranker

    reranker = load_reranker(model, backend=backend, threads=threads)
    questions = [q for q in held if ranked.get(q.id)]
    items = questions
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(questions, desc="held-in", unit="q")
    top = max(POOLS)
    scored = {q.id: reranker.score(q.question, [p.text for p in ranked[q.id][:top]]) for q in items}
    base = mean_scores([ranking_scores([p.doc_path for p in ranked[q.id]], q.doc) for q in questions])
    grid = []
    for pool in POOLS:
        for weight in WEIGHTS:
            for c in CONSTANTS if weight != float("inf") else (0.0,):
                rows = []
                for q in questions:
                    passages = ranked[q.id]
                    order = rerank_order(scored[q.id][:pool], len(passages), weight, c)
                    rows.append(ranking_scores([passages[i].doc_path for i in order], q.doc))
                grid.append({"pool": pool, "weight": weight, "c": c, **mean_scores(rows)})
    rows = []
    for q in questions:
        order = rerank_order(
            scored[q.id][:DEFAULT_RERANK_POOL], len(ranked[q.id]), DEFAULT_RERANK_WEIGHT, DEFAULT_RERANK_C
        )
        rows.append(ranking_scores([ranked[q.id][i].doc_path for i in order], q.doc))
    chosen = {"pool": DEFAULT_RERANK_POOL, "weight": DEFAULT_RERANK_WEIGHT, "c": DEFAULT_RERANK_C, **mean_scores(rows)}
    best = max(grid, key=lambda g: (g["recall@1"], g["mrr@10"], -g["pool"]))
    latency = {}
    for pool in POOLS:
        times = []
        for q in questions[:LATENCY_QUESTIONS]:
            texts = [p.text for p in ranked[q.id][:pool]]
            start = time.perf_counter()
            reranker.score(q.question, texts)
            times.append((time.perf_counter() - start) * 1000)
        latency[str(pool)] = round(statistics.median(times), 1) if times else None
    return {
        "questions": len(questions),
        "runtime": f"{reranker.runtime} {reranker.dtype}",
        "retriever": {"kind": "hybrid", **base},
        "chosen": chosen,
        "best": {**best, "weight": "inf" if best["weight"] == float("inf") else best["weight"]},
        "latency_ms_p50": latency,
        "grid": [{**g, "weight": "inf" if g["weight"] == float("inf") else g["weight"]} for g in grid],
    }


def write_card(folder: Path, settings, metrics: dict, command: str, groups: int, held: int) -> None:
    """rag-reranker.json (how rag reads the model) and README.md (the model card)."""
    from rag.cpu import this_cpu

    record = {
        "format": "rag-reranker",
        "max_length": settings.max_length,
        "settings": settings.key(),
        "metrics": metrics,
        "command": command,
        "cpu": this_cpu().model,
        "python": platform.python_version(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "groups_trained": groups,
        "questions_held_in": held,
    }
    (folder / MARKER).write_text(json.dumps(seal(record), indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(model_card(record), encoding="utf-8")


def model_card(record: dict) -> str:
    s, m = record["settings"], record["metrics"]
    training = m.get("training", {})
    lines = [
        "# minilm-reranker: an encoder-only cross-encoder reranker, trained by rag",
        "",
        "all-MiniLM-L6-v2 (6 layers, 384 hidden, 22.7M parameters) with a one-logit head, fine-tuned by",
        "`rag train reranker` on two CPU cores. It reads a question and a passage as one sequence and",
        "scores the pair; rag reranks the retriever's top candidates with it and fuses the two orders.",
        "",
        "## Base model and data",
        f"- Base: {s['base']} (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0).",
        f"- Data: {Path(s['data']).name} (sha256 {s['data_sha256'][:16]}…): SQuAD v1.1 (Rajpurkar et al., 2016), CC BY-SA 4.0.",
        f"- {record['groups_trained']} training questions, each with the gold paragraph's chunk that holds the answer",
        f"  and {s['group'] - 1} hard negatives drawn (seeded) from the top 12 chunks of rag's hybrid and dense",
        "  retrievers that hold no answer and are not from the gold paragraph or a held-in article.",
        f"- Held-in articles (never trained on, their text never seen): {', '.join(s['held_in']) or 'none'}.",
        "",
        "## How it was trained",
        f"- Command: `{record['command']}`",
        f"- Seed {s['seed']}; {s['epochs']} epoch(s); {s['loss']} loss over each group; lr {s['lr']} (AdamW, weight decay "
        f"{s['weight_decay']}, warm-up {s['warmup']:.0%}, linear decay); {s['batch_size']} questions per step;",
        f"  pairs cut at {s['max_length']} tokens, length-grouped, dynamically padded.",
        f"- CPU: {record['cpu']}; {training.get('seconds', '?')} s, {training.get('pairs_per_second', '?')} pairs/s.",
        "",
        "## Metrics",
    ]
    for key, label in (("held_in", "PyTorch fp32"), ("held_in_int8", "int8 ONNX, as shipped")):
        held = m.get(key)
        if not held:
            continue
        base, chosen = held["retriever"], held["chosen"]
        lines += [
            f"On the {held['questions']} questions of the held-in articles, {label}, reranking hybrid's chunks over all",
            f"of part A (per document, gold paragraph): hybrid alone recall@1 {base['recall@1']}, recall@5 {base['recall@5']},",
            f"MRR@10 {base['mrr@10']}; reranked as rag does by default (top {chosen['pool']}, fusion weight {chosen['weight']}, c {chosen['c']}):",
            f"recall@1 {chosen['recall@1']}, recall@5 {chosen['recall@5']}, MRR@10 {chosen['mrr@10']}.",
            f"p50 ms to score the pool, by pool size: {held['latency_ms_p50']}.",
            "",
        ]
    lines += [
        "rag's default pool and fusion were chosen on these held-in questions (the whole grid is in rag-reranker.json);",
        "SciFact (BENCHMARKS.md) is the check that was never used for choosing. Numbers on the rest of",
        "SQuAD part A mean nothing (trained on).",
        "",
        "## Licence",
        "Apache-2.0 (weights, as the base model); trained on CC BY-SA 4.0 data.",
        "",
    ]
    return "\n".join(lines)
