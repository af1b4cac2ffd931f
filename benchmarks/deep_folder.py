"""What an unchanged update of a very deep folder costs: a chain of DEPTH nested folders with one
small document at each level (issue 32: 1,200 levels took 35 s, 32 s of them system time).

    .venv/bin/python benchmarks/deep_folder.py [--depth 1200] [--threads 2]

Builds the index once (embedding DEPTH tiny documents), then times `Index.build` of the unchanged
folder three times and the folder walk alone: wall, user and system seconds. Prints the CPU model.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(work) -> tuple[float, float, float]:
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    work()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter() - started, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=1200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * args.depth + 1000))  # shutil.rmtree recurses
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from rag.build.sources import folder_sources
    from rag.cpu import this_cpu
    from rag.index import Index

    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "deep"
        cur = docs
        for i in range(args.depth):
            cur.mkdir()
            (cur / f"level-{i}.txt").write_text(f"This document sits {i} folders down.\n")
            cur = cur / "d"
        old = time.time() - 3600
        for path in docs.rglob("*.txt"):
            os.utime(path, (old, old))
        idx = Path(tmp) / "idx"
        quiet = dict(warn=lambda m: None, notify=lambda m: None)
        Index.build(docs, idx, **quiet).close()
        walk = timed(lambda: sum(1 for _ in folder_sources(docs, skip=[idx])))
        updates = [timed(lambda: Index.build(docs, idx, **quiet).close()) for _ in range(3)]
    print(f"CPU: {this_cpu().describe()}; depth {args.depth}, {args.depth} documents")
    print(f"walk alone: {walk[0]:.2f} s wall, {walk[1]:.2f} s user, {walk[2]:.2f} s system")
    for wall, user, system in updates:
        print(f"unchanged update: {wall:.2f} s wall, {user:.2f} s user, {system:.2f} s system")


if __name__ == "__main__":
    main()
