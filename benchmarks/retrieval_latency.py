"""Single-query search latency of dense, BM25 and hybrid retrieval, warm, in one process.

On the SQuAD v1.1 dev part A corpus (913 paragraphs) that `rag bench` indexes, each question is
searched once per retriever, interleaved (dense, bm25, hybrid, dense, ...) so that every
retriever sees the same machine state. Each `Index.search` call is timed whole: query encoding,
FAISS, BM25, fusion and fetching the passages from SQLite. Target: hybrid p50 <= 2x dense p50.

    .venv/bin/python benchmarks/retrieval_latency.py [--questions 300] [--k 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SQUAD = ROOT.parent / "shared" / "datasets" / "squad" / "dev-v1.1-part-a.json"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SQUAD)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    if not args.dataset.exists():
        sys.exit(f"{args.dataset} is missing: this benchmark reads SQuAD from ../shared/datasets/")

    from rag.bench.config import BenchConfig
    from rag.bench.corpus import dataset_index
    from rag.retrieve import Retriever

    bench, index, info = dataset_index(BenchConfig(dataset=args.dataset, progress=True))
    print(f"index: {info['documents']} documents, {info['chunks']} chunks ({'reused' if info['reused'] else 'built'})")
    questions = [q.question for q in bench.questions[: args.questions]]
    retrievers = {name: Retriever(kind=name) for name in ("dense", "bm25", "hybrid")}
    for retriever in retrievers.values():  # warm-up: BM25 loads on first use, FAISS and the model warm up
        for q in questions[:5]:
            index.search(q, args.k, retriever=retriever)
    times: dict[str, list[float]] = {name: [] for name in retrievers}
    for q in questions:
        for name, retriever in retrievers.items():
            start = time.perf_counter()
            index.search(q, args.k, retriever=retriever)
            times[name].append((time.perf_counter() - start) * 1000)

    print(f"{len(questions)} questions, k={args.k}, pool {Retriever().pool}, single-query calls, warm")
    print(f"{'retriever':<10}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
    for name, values in times.items():
        print(
            f"{name:<10}{percentile(values, 0.5):>9.2f}{percentile(values, 0.95):>9.2f}{statistics.mean(values):>9.2f}"
        )
    ratio = percentile(times["hybrid"], 0.5) / percentile(times["dense"], 0.5)
    print(f"hybrid p50 / dense p50 = {ratio:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
