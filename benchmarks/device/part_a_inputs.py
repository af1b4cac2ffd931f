"""The passages `rag bench` gives every answerer on SQuAD dev part A, written once here so a lent
GPU (which has neither ../shared nor rag's index) answers from the very same ones.

    .venv/bin/python benchmarks/device/part_a_inputs.py [--out .dev/part-a.json.xz]

For each question: its id, text and answers; the gold paragraph as `rag bench --oracle` offers it
(oracle_passages); and the 5 passages of rag's default hybrid retrieval, as `rag bench --passages
5` offers them (the same index, retrieval and ranking code). benchmarks/device/eval_families.py
reads the file there. Evaluation only: nothing trains on it.
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PART_A = ROOT.parent / "shared" / "datasets" / "squad" / "dev-v1.1-part-a.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PART_A)
    parser.add_argument("--out", type=Path, default=ROOT / ".dev" / "part-a.json.xz")
    parser.add_argument("--passages", type=int, default=5)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (SQuAD dev part A, in ../shared/datasets/squad/)")

    from rag.bench.answering import document_texts, oracle_passages
    from rag.bench.config import RANKING_DEPTH, BenchConfig
    from rag.bench.corpus import bench_embedder, index_key, load_set, open_index
    from rag.bench.retrieval import retrieve

    config = BenchConfig(dataset=args.data, passages=args.passages, progress=True)
    bench = load_set(config)
    emb = bench_embedder(config)
    index, info = open_index(bench, config, emb, index_key(bench, config, emb.name))
    depth = max(max(config.ks), RANKING_DEPTH, config.passages)
    retrieval = retrieve(index, bench.questions, depth, config.ks, progress=True, retriever=config.retriever)
    index.close()
    texts = document_texts(bench)
    rows = [
        {
            "id": q.id,
            "question": q.question,
            "answers": q.answers,
            "gold": [asdict(p) for p in oracle_passages(q, texts, config.passages)],
            "hybrid": [asdict(p) for p in retrieval.chunks[q.id][: config.passages]],
        }
        for q in bench.questions
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(args.out, "wt", preset=9) as f:
        json.dump(
            {"data": args.data.name, "index": info["path"], "retriever": str(config.retriever), "questions": rows}, f
        )
    print(f"{args.out}: {len(rows)} questions ({args.out.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
