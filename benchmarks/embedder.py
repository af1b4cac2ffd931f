"""A tuned bi-encoder against the packaged one, on every held-out set: is it a better default?

For each set the corpus is indexed once per embedder (as `rag bench` indexes it: 200-token chunks,
the ONNX backend, cached by embedder), and every question is retrieved dense and hybrid. Metrics
are per document, as `rag bench` scores retrieval; the tuned models are compared with the base
question by question (paired bootstrap, 95 %).

- SQuAD v1.1 dev part A, all 4,961 questions (evaluation only: nothing that ships tuned on it);
- SciFact (BEIR test claims);
- the shipped corpus's own questions (corpora/encoder-roles/qa.jsonl).

    .venv/bin/python benchmarks/embedder.py TUNED [TUNED ...] [--threads 2] [--json OUT.json]

The issue's rule for a new default: no loss beyond its interval on any of the three sets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SETS = {
    "squad-part-a": ROOT.parent / "shared" / "datasets" / "squad" / "dev-v1.1-part-a.json",
    "scifact": ROOT.parent / "shared" / "datasets" / "scifact",
    "encoder-roles": ROOT / "corpora" / "encoder-roles" / "qa.jsonl",
}
BASE = "all-MiniLM-L6-v2"
DEPTH = 30  # chunks per question: enough distinct documents for nDCG@10 after merging chunks
KEYS = ("recall@1", "recall@5", "mrr@10", "ndcg@10")
sys.path.insert(0, str(ROOT / "benchmarks"))
from reranker import metrics, paired  # noqa: E402  (per-document metrics and the paired interval, as there)


def per_question(path: Path, embedder: str, kind: str) -> list[dict]:
    from rag.bench.config import BenchConfig
    from rag.bench.corpus import dataset_index
    from rag.retrieve import Retriever

    bench, index, _ = dataset_index(BenchConfig(dataset=path, progress=False, embedder=embedder))
    questions = [q for q in bench.questions if q.gold]
    found = index.search_many([q.question for q in questions], DEPTH, retriever=Retriever(kind))
    return [metrics([p.doc_path for p in passages], q.gold) for q, passages in zip(questions, found)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tuned", nargs="+", help="sentence-transformers folders (e.g. RUN/model, RUN/curve/8000q)")
    parser.add_argument("--base", default=BASE)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    import torch

    from rag.cpu import this_cpu

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    results: dict = {"cpu": this_cpu().model, "threads": args.threads, "base": args.base, "sets": {}}
    print(f"CPU: {results['cpu']}; {args.threads} threads; base {args.base}", flush=True)
    for name in args.sets.split(","):
        path = SETS[name]
        if not path.exists():
            print(f"{name}: {path} absent, skipped", flush=True)
            continue
        out: dict = {}
        for kind in ("dense", "hybrid"):
            started = time.monotonic()
            base = per_question(path, args.base, kind)
            row = {"questions": len(base), "base": {k: round(sum(r[k] for r in base) / len(base), 4) for k in KEYS}}
            for tuned in args.tuned:
                rows = per_question(path, tuned, kind)
                row[tuned] = {
                    "mean": {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in KEYS},
                    "minus_base": {k: paired(rows, base, k) for k in KEYS},
                }
            row["seconds"] = round(time.monotonic() - started, 1)
            out[kind] = row
            print(f"{name} {kind}: {json.dumps(row)}", flush=True)
        results["sets"][name] = out
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
