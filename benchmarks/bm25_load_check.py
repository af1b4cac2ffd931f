"""What a checksum of the BM25 arrays would cost on every load, at a million chunks.

A search opens a generation's BM25 arrays memory-mapped and reads only the postings of the
query's terms. A flipped byte inside an array changes a ranking silently unless the arrays
are checked; this measures what checking costs against what a BM25 query costs, per array:

    chunk_ids.npy  int64, one per chunk        lengths.npy  int32, one per chunk
    term_ptr.npy   int64, one per term          rows.npy / tfs.npy  int32, one per posting

The arrays are synthetic but shaped like rag's (`rag.lexical.Postings`): N chunks with
--terms-per-chunk distinct terms each on average, drawn from a Zipf-like vocabulary of
--vocab terms. The files are written once, then read warm from the page cache (the best case
for checking: a cold read only adds to it). SHA-256 (what the manifest records) and CRC-32
are timed side by side, median of --repeat.

    .venv/bin/python benchmarks/bm25_load_check.py [--chunks 1000000] [--terms-per-chunk 80]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag import lexical  # noqa: E402
from rag.bench.system import _cpu_model as cpu_model  # noqa: E402
from rag.store import file_sha256 as sha256_file  # noqa: E402


def synthetic(n: int, per_chunk: int, vocab: int, seed: int = 0) -> lexical.Postings:
    """Postings for n chunks: each term's rows sorted, document frequencies Zipf-like."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab + 1) ** 1.05
    df = np.maximum(1, np.round(weights / weights.sum() * n * per_chunk)).astype(np.int64)
    df = np.minimum(df, n)
    term_ptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
    nnz = int(term_ptr[-1])
    rows = np.empty(nnz, dtype=np.int32)
    for t in range(vocab):  # rows of each term: sorted, distinct where df allows
        start, end = term_ptr[t], term_ptr[t + 1]
        k = end - start
        drawn = rng.choice(n, size=k, replace=False) if k > n // 4 else rng.integers(0, n, size=k)
        rows[start:end] = np.sort(drawn)
    tfs = rng.geometric(0.6, size=nnz).astype(np.int32)
    lengths = rng.integers(per_chunk, 2 * per_chunk, size=n).astype(np.int32)
    chunk_ids = np.arange(n, dtype=np.int64) + 1_000_000
    return lexical.Postings(chunk_ids, lengths, term_ptr, rows, tfs)


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def crc32_file(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--terms-per-chunk", type=int, default=80)
    parser.add_argument("--vocab", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); numpy {np.__version__}")
    started = time.perf_counter()
    postings = synthetic(args.chunks, args.terms_per_chunk, args.vocab)
    print(
        f"synthetic postings: {args.chunks:,} chunks, {len(postings.rows):,} postings, {args.vocab:,} terms "
        f"({time.perf_counter() - started:.0f} s to make)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def write(path: Path, save) -> dict:
            with open(path, "xb") as f:
                save(f)
            return {"size": path.stat().st_size}

        postings.save(folder, write)
        del postings
        files = {name: folder / lexical.FOLDER / name for name in lexical.FILES}
        for path in files.values():  # warm the page cache
            sha256_file(path)

        load = timed(lambda: lexical.Postings.load(folder), args.repeat)
        loaded = lexical.Postings.load(folder)
        rng = np.random.default_rng(1)
        queries = [[int(t) for t in rng.integers(50, 5000, size=4)] for _ in range(20)]
        query = timed(lambda: lexical.search_segments([(loaded, None)], queries[:1], 10), args.repeat)
        checked = timed(lambda: lexical.search_segments([(loaded, None)], queries, 10), args.repeat)
        real_check = lexical._check_postings
        lexical._check_postings = lambda *a: None
        unchecked = timed(lambda: lexical.search_segments([(loaded, None)], queries, 10), args.repeat)
        lexical._check_postings = real_check
        print(
            f"\nload (memory-map the five arrays): {load * 1000:.2f} ms; one 4-term BM25 query: {query * 1000:.0f} ms"
        )
        print(
            f"20 queries with the postings they read checked: {checked * 1000:.0f} ms, unchecked: "
            f"{unchecked * 1000:.0f} ms ({checked / unchecked:.2f}x)"
        )
        print("\n| array | size | SHA-256 | CRC-32 | SHA-256 / query |")
        print("|---|---:|---:|---:|---:|")
        small = 0.0
        for name, path in files.items():
            sha = timed(lambda p=path: sha256_file(p), args.repeat)
            crc = timed(lambda p=path: crc32_file(p), args.repeat)
            if name in ("chunk_ids.npy", "lengths.npy", "term_ptr.npy"):
                small += sha
            print(
                f"| {name} | {path.stat().st_size / 1e6:.1f} MB | {sha * 1000:.1f} ms | {crc * 1000:.1f} ms | "
                f"{sha / query:.2f}x |"
            )
        print(
            f"\nSHA-256 of the three small arrays (chunk_ids, lengths, term_ptr): {small * 1000:.1f} ms "
            f"= {small / query:.2f}x one query"
        )


if __name__ == "__main__":
    main()
