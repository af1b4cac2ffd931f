"""Recall of hybrid retrieval over a grid of RRF constants, BM25 weights and pool sizes, from one search pass.

Dense and BM25 rankings are computed once for every question (deep enough for the largest
pool), then fused for each setting exactly as `rag.retrieve.rank` fuses them. The grid shows
how sensitive hybrid retrieval is to its two knobs, so the defaults rest on a trend across
the grid rather than on a single best cell.

    .venv/bin/python benchmarks/hybrid_sweep.py [--dataset ../shared/datasets/squad/dev-v1.1-part-a.json]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SQUAD = ROOT.parent / "shared" / "datasets" / "squad" / "dev-v1.1-part-a.json"
POOLS = (20, 50, 100)
CONSTANTS = (1, 10, 30, 60)
BM25_WEIGHTS = (1.0, 1.5, 2.0, 3.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SQUAD)
    args = parser.parse_args()
    if not args.dataset.exists():
        sys.exit(f"{args.dataset} is missing: this benchmark reads SQuAD from ../shared/datasets/")

    from rag.bench.config import BenchConfig
    from rag.bench.corpus import dataset_index
    from rag.bench.metrics import mrr_at_k, ndcg_at_k, recall_at_k
    from rag.retrieve import rrf

    bench, index, info = dataset_index(BenchConfig(dataset=args.dataset, progress=True))
    questions = bench.questions
    texts = [q.question for q in questions]
    depth = max(POOLS)
    dense = index.dense_hits(index.embed_queries(texts, progress=True), depth)
    lexical = index.lexical_hits(texts, depth)
    doc_of = dict(index.db.execute("SELECT id, doc_path FROM chunks"))

    def scores(rankings: list[list[int]]) -> tuple[float, ...]:
        totals = [0.0] * 5
        for q, ids in zip(questions, rankings):
            docs = [doc_of[i] for i in ids]
            for j, value in enumerate(
                (
                    recall_at_k(docs, q.gold, 1),
                    recall_at_k(docs, q.gold, 5),
                    recall_at_k(docs, q.gold, 10),
                    mrr_at_k(docs, q.gold, 10),
                    ndcg_at_k(docs, q.gold, 10),
                )
            ):
                totals[j] += value
        return tuple(t / len(questions) for t in totals)

    print(f"{len(questions)} questions, {info['documents']} documents, {info['chunks']} chunks")
    print(f"{'retriever':<34}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'MRR@10':>8}{'nDCG@10':>9}")

    def row(label: str, rankings: list[list[int]]) -> None:
        r1, r5, r10, mrr, ndcg = scores(rankings)
        print(f"{label:<34}{r1:>7.3f}{r5:>7.3f}{r10:>7.3f}{mrr:>8.3f}{ndcg:>9.3f}", flush=True)

    row("dense", [[i for i, _ in h] for h in dense])
    row("bm25", [[i for i, _ in h] for h in lexical])
    for pool in POOLS:
        for c in CONSTANTS:
            for w in BM25_WEIGHTS:
                fused = [
                    [i for i, _ in rrf([[i for i, _ in d[:pool]], [i for i, _ in b[:pool]]], c, (1.0, w))]
                    for d, b in zip(dense, lexical)
                ]
                row(f"hybrid pool={pool} c={c:g} bm25 w={w:g}", fused)


if __name__ == "__main__":
    main()
