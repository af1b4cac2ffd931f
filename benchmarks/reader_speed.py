"""How fast the reader answers, on which runtime, and what a cold `rag ask -g READER` costs.

    .venv/bin/python benchmarks/reader_speed.py [READER] [--questions 100] [--threads 2] [--batched]

1. Warm reads: held-in SQuAD questions, 5 hybrid-retrieved passages each, read by ONNX Runtime
   int8, ONNX Runtime fp32 and PyTorch fp32, interleaved question by question (the machine is
   noisy: the three share its moods). p50/p90 ms of the read alone.
2. Cold asks: `rag ask QUESTION -g READER --index <the bench's SQuAD index>` as new processes,
   5 in a row: wall time, peak RSS, and whether torch was imported (`-X importtime`).
Prints markdown rows and the CPU model.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cold_ask(reader: str, index: Path, question: str, threads: int) -> tuple[float, float | None, bool]:
    """(wall s, peak RSS MB, torch imported) of one `rag ask` process. The peak is GNU time's
    (a child forked from this process would count this process's memory as its own)."""
    import shutil

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    command = [
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "rag.cli",
        "ask",
        question,
        "-g",
        reader,
        "--index",
        str(index),
        "--retriever",
        "hybrid",
        "--json",
    ]
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if timer:
        command = [timer, "-f", "RAG_PEAK_KB=%M", *command]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    lines = done.stderr.splitlines()
    peak = next((int(line.split("=")[1]) / 1024 for line in lines if line.startswith("RAG_PEAK_KB=")), None)
    torch = any(line.rstrip().endswith("| torch") for line in lines)
    return wall, peak, torch


def batched(reader, size: int):
    """The same reader and session, reading `size` windows per run (int8 then scales activations
    over the whole batch, so its answers can differ from the one-window reading)."""
    import copy

    inner = reader.logits

    class Batched:
        batch, runtime, dtype = size, inner.runtime, inner.dtype

        def __call__(self, arrays):
            return inner(arrays)

    other = copy.copy(reader)
    other.logits = Batched()
    return other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reader", nargs="?", default="minilm-reader")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument(
        "--batched", action="store_true", help="also time int8 ONNX reading 16 windows per run (as it did before)"
    )
    args = parser.parse_args()

    from rag.bench.config import BenchConfig
    from rag.bench.corpus import dataset_index
    from rag.cpu import this_cpu
    from rag.readers.loading import load_reader
    from rag.retrieve import Retriever
    from rag.train.run_reader import held_in_examples

    data, held = held_in_examples(args.reader)
    sample = random.Random(0).sample(held, min(args.questions, len(held)))
    _, index, info = dataset_index(BenchConfig(dataset=data))
    found = index.search_many([q.question for q in sample], 5, retriever=Retriever("hybrid"))
    from rag.generators.base import ModelNotAvailable

    readers = {}
    for backend in ("onnx", "onnx-fp32", "torch"):  # the shipped preset has int8 only; a training folder has all
        try:
            readers[backend] = load_reader(args.reader, backend=backend, threads=args.threads)
        except ModelNotAvailable as e:
            print(f"{backend}: skipped ({e})", file=sys.stderr)
    if args.batched and "onnx" in readers:
        readers["onnx, 16 windows per run"] = batched(readers["onnx"], 16)
    times: dict[str, list[float]] = {b: [] for b in readers}
    for q, passages in zip(sample, found):
        texts = [p.text for p in passages]
        for backend, reader in readers.items():
            start = time.perf_counter()
            reader.read(q.question, texts)
            times[backend].append(1000 * (time.perf_counter() - start))
    cpu = this_cpu()
    print(f"CPU: {cpu.describe()}; {args.threads} threads; {len(sample)} held-in questions, 5 hybrid passages each")
    print("| runtime | p50 ms | p90 ms | mean ms |")
    print("|---|---:|---:|---:|")
    for backend, values in times.items():
        values.sort()
        print(
            f"| {backend} | {statistics.median(values):.0f} | {values[int(0.9 * (len(values) - 1))]:.0f} | "
            f"{statistics.fmean(values):.0f} |"
        )
    print("\n| cold `rag ask` | wall s | peak RSS MB | torch imported |")
    print("|---|---:|---:|---|")
    for q in sample[: args.cold]:
        wall, rss, torch = cold_ask(args.reader, Path(info["path"]), q.question, args.threads)
        print(
            f"| {q.question[:50]} | {wall:.2f} | {'n/a' if rss is None else f'{rss:.0f}'} | {'yes' if torch else 'no'} |"
        )


if __name__ == "__main__":
    main()
