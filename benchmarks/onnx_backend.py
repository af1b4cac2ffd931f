"""The embedding backends side by side: indexing throughput, retrieval quality, cold search.

1. Throughput: SQuAD v1.1 dev part A's 913 paragraphs indexed from scratch with each backend
   (torch fp32 through sentence-transformers, ONNX Runtime fp32, ONNX Runtime int8), in one run,
   the embedder warmed up first; chunks per second of the whole `rag index` build.
2. Quality: dense recall@1/5/10 and MRR@10 over all 4,961 part-A questions, each index searched
   with queries embedded by its own backend.
3. Cold search: `rag search` as a new process, five times per query backend (median), on the
   ONNX-fp32 index, with its peak RSS; and `rag --help`.

    .venv/bin/python benchmarks/onnx_backend.py [--threads 2] [--work /tmp/onnx-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rag.config import DEFAULT_BATCH_SIZE  # noqa: E402

SQUAD = ROOT.parent / "shared" / "datasets" / "squad" / "dev-v1.1-part-a.json"
# (label, backend, length-sorted batches, batch size). sentence-transformers already sorts each
# encode call's texts by length, so every torch row is length-sorted. "torch batch 64" is the
# old default batch size; "onnx-fp32 unsorted" isolates what sorting gains on ONNX Runtime,
# "onnx-fp32" what the runtime gains over torch, "onnx" what int8 adds.
VARIANTS = (
    ("torch batch 64", "torch", True, 64),
    ("torch", "torch", True, DEFAULT_BATCH_SIZE),
    ("onnx-fp32 unsorted", "onnx-fp32", False, DEFAULT_BATCH_SIZE),
    ("onnx-fp32", "onnx-fp32", True, DEFAULT_BATCH_SIZE),
    ("onnx", "onnx", True, DEFAULT_BATCH_SIZE),
)
BASELINE = "torch"


def cold(command: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak RSS MB) of one new process running the rag CLI."""
    code = (
        "import atexit, sys\n"
        "def peak():\n"
        "    hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "    sys.stderr.write(f'PEAK {hwm}\\n')\n"
        "atexit.register(peak)\n"
        "from rag.cli import main\n"
        f"sys.argv = ['rag', *{command!r}]\n"
        "main()\n"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(proc.stderr)
    peak = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK"))
    return seconds, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--work", default="/tmp/rag-onnx-bench")
    parser.add_argument("--out", default=None)
    parser.add_argument("--dataset", type=Path, default=SQUAD)
    args = parser.parse_args()
    if not args.dataset.exists():
        raise SystemExit(f"{args.dataset} is not here: this benchmark needs ../shared/datasets")

    import torch

    from rag.bench.datasets import load_dataset
    from rag.bench.retrieval import retrieve
    from rag.embedders import load_embedder
    from rag.index import Index

    torch.set_num_threads(args.threads)
    bench = load_dataset(args.dataset)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    results: dict = {"threads": args.threads, "backends": {}}
    print(
        f"SQuAD v1.1 dev part A: {len(bench.documents)} paragraphs, {len(bench.questions)} questions; "
        f"{args.threads} threads"
    )
    for label, backend, length_sorted, batch_size in VARIANTS:
        emb = load_embedder(None, backend, batch_size=batch_size)
        if backend != "torch":
            emb.threads = args.threads
            emb.sort_by_length = length_sorted
        emb.encode(["warm-up sentence"] * 4)
        started = time.perf_counter()
        index = Index.build_from_documents(
            bench.documents, work / label.replace(" ", "-"), embedder=emb, warn=lambda m: None, notify=lambda m: None
        )
        seconds = time.perf_counter() - started
        retrieval = retrieve(index, bench.questions, 10, [1, 5, 10], retriever=None)
        scores = {
            key: round(statistics.fmean(s[key] for s in retrieval.scores.values()), 4)
            for key in ("recall@1", "recall@5", "recall@10", "mrr@10")
        }
        r = {
            "chunks": len(index),
            "build_s": round(seconds, 1),
            "chunks_per_s": round(len(index) / seconds, 1),
            **scores,
        }
        results["backends"][label] = r
        print(
            f"{label:>18}: build {r['build_s']:7.1f} s  {r['chunks_per_s']:6.1f} chunks/s  "
            f"recall@1/5/10 {r['recall@1']:.3f}/{r['recall@5']:.3f}/{r['recall@10']:.3f}  MRR@10 {r['mrr@10']:.3f}",
            flush=True,
        )
        index.close()
    base = results["backends"][BASELINE]["chunks_per_s"]
    for label, *_ in VARIANTS:
        ratio = results["backends"][label]["chunks_per_s"] / base
        results["backends"][label]["vs_torch"] = round(ratio, 2)
        print(f"{label} / {BASELINE} throughput: {ratio:.2f}x")

    question = "Which NFL team represented the AFC at Super Bowl 50?"
    for query_backend in ("onnx", "onnx-fp32", "torch"):
        env = {**os.environ, "RAG_QUERY_BACKEND": query_backend}
        runs = [cold(["search", question, "-k", "5", "--index", str(work / "onnx-fp32")], env) for _ in range(5)]
        median = statistics.median(s for s, _ in runs)
        peak = max(p for _, p in runs)
        results[f"cold_search_{query_backend}"] = {"median_s": round(median, 3), "peak_rss_mb": round(peak)}
        print(f"cold `rag search` with {query_backend} queries: median {median:.2f} s of 5, peak RSS {peak:.0f} MB")
    helps = [cold(["--help"], dict(os.environ))[0] for _ in range(5)]
    results["help_s"] = round(min(helps), 3)
    print(f"`rag --help`: best {min(helps):.3f} s of 5")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
