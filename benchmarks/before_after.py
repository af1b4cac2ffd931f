"""Two checkouts of rag side by side, interleaved in one run: indexing throughput (each tree's
own `benchmarks/index_throughput.py`, build against its own encode floor) and a cold
`rag search` as a new process. For a refactor that must change nothing: within noise.

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/before_after.py --before /tmp/before [--min-chunks 2000] [--rounds 2]

Both trees run with this venv's Python and packages; each imports its own `rag` (PYTHONPATH).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERY = "Which objective is BERT pre-trained with?"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def env_for(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}


def rag(tree: Path, *args: str) -> subprocess.CompletedProcess:
    code = "from rag.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env_for(tree), capture_output=True, text=True, check=True
    )


def throughput(tree: Path, min_chunks: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "index_throughput.py"), "--min-chunks", str(min_chunks)],
        env=env_for(tree),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    build = float(re.search(r"Index.build \(whole pipeline\):\s+[\d.]+ s\s+([\d.]+) chunks/s", out).group(1))
    ratio = float(re.search(r"ratio build/floor throughput: ([\d.]+)", out).group(1))
    return {"chunks_per_s": build, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the earlier commit")
    parser.add_argument("--after", type=Path, default=ROOT)
    parser.add_argument("--min-chunks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--searches", type=int, default=5)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}

    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for r in range(args.rounds):
        for name in list(trees) if r % 2 == 0 else list(trees)[::-1]:
            runs[name].append(throughput(trees[name], args.min_chunks))
            print(f"round {r + 1} {name}: {runs[name][-1]}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="rag-before-after-") as work:
        index = Path(work) / "idx"
        rag(trees["after"], "index", str(ROOT / "corpora" / "encoder-roles" / "docs"), "--index", str(index), "-q")
        cold: dict[str, list[float]] = {name: [] for name in trees}
        for r in range(args.searches):
            for name in list(trees) if r % 2 == 0 else list(trees)[::-1]:
                start = time.perf_counter()
                rag(trees[name], "search", QUERY, "-k", "5", "--index", str(index))
                cold[name].append(time.perf_counter() - start)

    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.rounds} rounds of >= {args.min_chunks} chunks, interleaved"
    )
    print("| tree | build chunks/s (median) | build / encode floor (median) | cold `rag search` s (median) |")
    print("| --- | ---: | ---: | ---: |")
    for name in trees:
        print(
            f"| {name} | {statistics.median(r['chunks_per_s'] for r in runs[name]):.1f} "
            f"| {statistics.median(r['ratio'] for r in runs[name]):.3f} | {statistics.median(cold[name]):.2f} |"
        )


if __name__ == "__main__":
    main()
