"""rag on a busy machine: the same work quiet and beside one or two CPU-bound processes, with
rag's thread policy (passive waiting, rag/threads.py) and with the libraries' defaults.

Tasks, each in a fresh process (the policy must be set before torch or faiss is imported):
- query-dense, query-hybrid: 200 warm single `Index.search(question, k=5)` calls on the shipped
  corpus's index (after 10 warm-up calls), queries embedded by ONNX Runtime (the default):
  p50 and p95 milliseconds. query-torch: the same, dense, queries embedded by torch.
- index: `rag index` of the shipped corpus into a new folder (ONNX int8 embedder): seconds.
- generate: SmolLM2 answers 4 questions from fixed passages, 16 new tokens each: tokens/s.

Loads: quiet, one busy-loop process, two. Policies alternate within each repetition and
loads are interleaved; the figure reported is the median over --repeats.

    .venv/bin/python benchmarks/contention.py [--repeats 3] [--tasks query-dense,query-hybrid,index,generate]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpora" / "encoder-roles"
POLICIES = {"rag": {}, "default": {"RAG_THREAD_POLICY": "default"}}
TASKS = ("query-dense", "query-hybrid", "query-torch", "index", "generate")


def worker(task: str, index: str) -> dict:
    """Run one task in this process and return its figures."""
    sys.path.insert(0, str(ROOT))
    from rag.index import Index

    questions = [
        json.loads(line)["question"] for line in (CORPUS / "qa.jsonl").read_text().splitlines() if line.strip()
    ]
    if task.startswith("query"):
        retriever = "dense" if task == "query-torch" else task.split("-")[1]
        loaded = Index.load(index)
        for q in questions[:10]:
            loaded.search(q, 5, retriever=retriever)
        times = []
        for i in range(200):
            start = time.perf_counter()
            loaded.search(questions[i % len(questions)], 5, retriever=retriever)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * len(times))]}
    if task == "index":
        target = Path(tempfile.mkdtemp()) / "idx"
        start = time.perf_counter()
        Index.build(CORPUS / "docs", target, warn=lambda m: None, notify=lambda m: None)
        seconds = time.perf_counter() - start
        shutil.rmtree(target.parent)
        return {"seconds": seconds}
    if task == "generate":
        from rag.generators import load_generator
        from rag.pipeline import GenerationSettings, answer_from

        loaded = Index.load(index)
        generator = load_generator("smollm2")
        settings = GenerationSettings(max_new_tokens=16)
        passages = [loaded.search(q, 3) for q in questions[:4]]  # 3 passages: ~500-token prompts
        answer_from(generator, questions[0], passages[0], settings)  # warm-up
        tokens, seconds = 0, 0.0
        for q, given in zip(questions[:4], passages):
            start = time.perf_counter()
            answer = answer_from(generator, q, given, settings)
            seconds += time.perf_counter() - start
            tokens += answer.output_tokens
        return {"tokens_per_s": tokens / seconds}
    raise SystemExit(f"unknown task {task}")


def busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run(task: str, policy: str, load: int, index: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **POLICIES[policy]}
    if task == "query-torch":
        env["RAG_QUERY_BACKEND"] = "torch"
    if policy == "default":
        env.pop("OMP_WAIT_POLICY", None)  # this process imported rag, which set it
    hogs = busy(load)
    try:
        time.sleep(0.5)  # let the busy loops take their cores
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", task, "--index", index],
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", default=None)
    parser.add_argument("--index", default=None)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.index)))
        return
    sys.path.insert(0, str(ROOT))
    from rag.index import Index

    work = Path(tempfile.mkdtemp(prefix="rag-contention-"))
    index = str(work / "idx")
    Index.build(CORPUS / "docs", index, warn=lambda m: None, notify=lambda m: None)
    results: dict = {}
    tasks = [t for t in args.tasks.split(",") if t]
    print(
        f"{os.cpu_count()} cores; medians of {args.repeats}; policy 'rag' = passive waiting, 'default' = libraries' own"
    )
    for task in tasks:
        for load in (0, 1, 2):
            figures: dict[str, list[dict]] = {p: [] for p in POLICIES}
            for r in range(args.repeats):
                for policy in list(POLICIES) if r % 2 == 0 else list(POLICIES)[::-1]:
                    figures[policy].append(run(task, policy, load, index))
            for policy, runs in figures.items():
                summary = {key: round(statistics.median(run[key] for run in runs), 2) for key in runs[0]}
                results[f"{task}|{load}|{policy}"] = summary
                print(
                    f"{task:>13}  busy {load}  {policy:>7}: " + ", ".join(f"{k} {v}" for k, v in summary.items()),
                    flush=True,
                )
    shutil.rmtree(work, ignore_errors=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
