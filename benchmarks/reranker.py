"""The cross-encoder reranker measured: held-in SQuAD articles, SciFact, and latency.

For each question the retriever's top 30 chunks are read once; the reranker scores the top 30
once, and every pool (5, 10, 20, 30) is the fused order of the first `pool` of those scores,
exactly as `rag.rerankers.apply.rerank` orders them (so the numbers are those of `--reranker`).
Metrics are per document, as `rag bench` scores retrieval. Paired bootstrap intervals (95 %)
compare the reranked ranking with the retriever's on the same questions.

- SQuAD part A, the reranker's held-in articles only (its rag-reranker.json names them): dense
  alone, hybrid alone, hybrid reranked (pools 10 and 20; the card has the whole curve). Numbers on the other articles mean nothing (it trained on them).
- SciFact (BEIR test claims; never used for choosing anything): dense alone, hybrid alone,
  hybrid reranked (pools 10 and 20).
- Latency: p50 ms to score each pool (ONNX Runtime, --threads threads), and a cold
  `rag search --reranker MODEL` (a new process) against a cold plain search.

    .venv/bin/python benchmarks/reranker.py [--model minilm-reranker] [--backend onnx] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SQUAD = ROOT.parent / "shared" / "datasets" / "squad" / "dev-v1.1-part-a.json"
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"
POOLS = (5, 10, 20, 30)
DEPTH = 30


def metrics(docs: list[str], gold: dict) -> dict[str, float]:
    from rag.bench.metrics import dedupe, mrr_at_k, ndcg_at_k, recall_at_k

    ranked = dedupe(docs)
    return {
        "recall@1": recall_at_k(ranked, gold, 1),
        "recall@5": recall_at_k(ranked, gold, 5),
        "mrr@10": mrr_at_k(ranked, gold, 10),
        "ndcg@10": ndcg_at_k(ranked, gold, 10),
    }


def mean(rows: list[dict]) -> dict[str, float]:
    return {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in rows[0]}


def paired(a: list[dict], b: list[dict], key: str) -> dict:
    import numpy as np

    from rag.bench.paired import bootstrap_interval

    diffs = np.array([x[key] - y[key] for x, y in zip(a, b)])
    low, high = bootstrap_interval(diffs)
    return {"difference": round(float(diffs.mean()), 4), "low": round(low, 4), "high": round(high, 4)}


def evaluate(name, questions, found, gold_of, reranker, settings, progress, pools=POOLS) -> dict:
    """Per pool, the reranked metrics (and the retriever's), with latency and paired intervals."""
    from tqdm.auto import tqdm

    from rag.rerankers.fusion import rerank_order

    scores, times = {}, {pool: [] for pool in pools}
    for q, chunks in tqdm(list(zip(questions, found)), desc=name, unit="q", disable=not progress):
        texts = [p.text for p in chunks[: max(pools)]]
        scores[q.id] = reranker.score(q.question, texts)
    for q, chunks in list(zip(questions, found))[:30]:  # latency as a user pays it: one call per question
        for pool in pools:
            start = time.perf_counter()
            reranker.score(q.question, [p.text for p in chunks[:pool]])
            times[pool].append((time.perf_counter() - start) * 1000)
    base = [metrics([p.doc_path for p in chunks], gold_of(q)) for q, chunks in zip(questions, found)]
    out = {"questions": len(questions), "retriever": mean(base), "pools": {}}
    for pool in pools:
        rows = []
        for q, chunks in zip(questions, found):
            order = rerank_order(scores[q.id][:pool], len(chunks), settings.weight, settings.c)
            rows.append(metrics([chunks[i].doc_path for i in order], gold_of(q)))
        out["pools"][pool] = {
            **mean(rows),
            "p50_ms": round(statistics.median(times[pool]), 1),
            "recall@1_gain": paired(rows, base, "recall@1"),
            "mrr@10_gain": paired(rows, base, "mrr@10"),
            "ndcg@10_gain": paired(rows, base, "ndcg@10"),
        }
    return out


def cold_search(index_path: str, model: str, threads: int) -> dict:
    """Median wall seconds of a new `rag search` process, plain and reranked (3 each, interleaved)."""
    rag = str(ROOT / ".venv" / "bin" / "rag")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    query = "Which NFL team represented the AFC at Super Bowl 50?"
    runs = {"plain": [], "reranked": []}
    for _ in range(3):
        for label, extra in (("plain", ["--reranker", "none"]), ("reranked", ["--reranker", model])):
            start = time.perf_counter()
            subprocess.run(
                [rag, "search", query, "--index", index_path, *extra], env=env, check=True, capture_output=True
            )
            runs[label].append(time.perf_counter() - start)
    return {label: round(statistics.median(v), 3) for label, v in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-reranker")
    parser.add_argument("--backend", default="onnx", choices=("onnx", "onnx-fp32", "torch"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weight", type=float, default=None, help="fusion weight (default: rag's)")
    parser.add_argument("--c", type=float, default=None, help="fusion constant (default: rag's)")
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    from rag.bench.config import BenchConfig
    from rag.bench.corpus import dataset_index
    from rag.cpu import this_cpu
    from rag.rerankers.base import RerankSettings
    from rag.rerankers.loading import load_reranker, locate, settings
    from rag.retrieve import Retriever
    from rag.train.data import load_examples

    options = {k: v for k, v in (("weight", args.weight), ("c", args.c)) if v is not None}
    rerank = RerankSettings(model=args.model, **options)
    reranker = load_reranker(args.model, backend=args.backend, threads=args.threads)
    record = settings(locate(args.model))
    results = {
        "cpu": this_cpu().model,
        "threads": args.threads,
        "model": args.model,
        "runtime": f"{reranker.runtime} {reranker.dtype}",
        "fusion": rerank.to_dict(),
    }
    print(f"CPU: {results['cpu']}; {args.threads} threads; {args.model} ({results['runtime']}); {rerank.describe()}")

    held = set(record.get("settings", {}).get("held_in") or [])
    if SQUAD.exists() and held:
        questions = [e for e in load_examples(SQUAD) if e.article in held]
        _, index, info = dataset_index(BenchConfig(dataset=SQUAD, progress=False))
        texts = [q.question for q in questions]
        squad = {"held_in_articles": sorted(held)}
        found = index.search_many(texts, DEPTH, retriever=Retriever("dense"))
        squad["dense"] = {
            "retriever": mean([metrics([p.doc_path for p in c], {q.doc: 1}) for q, c in zip(questions, found)])
        }
        found = index.search_many(texts, DEPTH, retriever=Retriever("hybrid"))
        squad["hybrid"] = evaluate(
            "squad hybrid", questions, found, lambda q: {q.doc: 1}, reranker, rerank, True, (10, 20)
        )
        results["squad_held_in"] = squad
        results["cold_search_s"] = cold_search(info["path"], args.model, args.threads)
        print(json.dumps(squad, indent=1))
        print("cold search:", results["cold_search_s"])
    if SCIFACT.exists() and not args.skip_scifact:
        bench, index, _ = dataset_index(BenchConfig(dataset=SCIFACT, progress=False))
        questions = [q for q in bench.questions if q.gold]
        texts = [q.question for q in questions]
        sci = {}
        found = index.search_many(texts, DEPTH, retriever=Retriever("dense"))
        sci["dense"] = {"retriever": mean([metrics([p.doc_path for p in c], q.gold) for q, c in zip(questions, found)])}
        found = index.search_many(texts, DEPTH, retriever=Retriever("hybrid"))
        sci["hybrid"] = evaluate("scifact hybrid", questions, found, lambda q: q.gold, reranker, rerank, True, (10, 20))
        results["scifact"] = sci
        print(json.dumps(sci, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
