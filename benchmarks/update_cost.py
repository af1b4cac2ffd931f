"""What one small update costs as the index grows: the storage layer's own cost, measured.

For each size (chunks), a synthetic corpus of files of 20 paragraphs (one chunk each) is
indexed once, then three updates are timed, each in a fresh process (so its peak RSS is its
own): adding one 20-chunk file, editing one paragraph of one file, deleting one file. A fourth
edit is forced to merge the delta segment into a new base (see rag/segments.py), which an
update does once what changed since the last merge exceeds a tenth of the index: that is the
occasional cost the cheap updates defer.

By default the embedder is a deterministic STAND-IN (vectors from a hash of the text, 384
dimensions, words as tokens), so the figures are rag's storage cost alone: walking the folder,
SQLite, FAISS, BM25, checksums, fsync. `--real N` also runs size N with the real packaged
all-MiniLM-L6-v2 (embedding included). Every process uses one thread for FAISS and BLAS.

    .venv/bin/python benchmarks/update_cost.py --sizes 10000,100000,1000000 --real 10000 --work /tmp/update-cost
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

CHUNKS_PER_FILE = 20
WORDS_PER_PARAGRAPH = 90  # one chunk of 100 stand-in tokens (words)
REAL_WORDS_PER_PARAGRAPH = 25  # about 90 MiniLM word pieces: one chunk of 100 real tokens
VOCABULARY = 60_000


def stand_in_embedder():
    """An Embedder with the same interface: words as tokens, vectors from a hash of the text."""
    import re

    from rag.embedders.st import TorchEmbedder

    class WordTokenizer:
        _word = re.compile(r"\S+")

        def __call__(self, text, **kwargs):
            return {"offset_mapping": [m.span() for m in self._word.finditer(text)]}

    class HashEmbedder(TorchEmbedder):
        def __init__(self):
            super().__init__("stand-in/hash-384")

        tokenizer = WordTokenizer()
        dimension = 384
        max_tokens = 10**6

        def encode(self, texts, show_progress=False):
            out = np.empty((len(texts), 384), dtype=np.float32)
            for i, text in enumerate(texts):
                seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
                out[i] = np.random.Generator(np.random.Philox(seed)).standard_normal(384)
            out /= np.linalg.norm(out, axis=1, keepdims=True)
            return out

    return HashEmbedder()


def paragraph(rng, words, length: int = WORDS_PER_PARAGRAPH) -> str:
    ids = np.minimum(rng.zipf(1.2, length), VOCABULARY) - 1
    return " ".join(words[i] for i in ids) + "."


def make_corpus(folder: Path, chunks: int, length: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    words = [f"w{i:x}" for i in range(VOCABULARY)]
    folder.mkdir(parents=True, exist_ok=True)
    then = time.time() - 3600  # files that existed well before indexing (see RACY_NS in rag/build/plan.py)
    for f in range(chunks // CHUNKS_PER_FILE):
        path = folder / f"{f // 1000:03d}" / f"doc{f:07d}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n\n".join(paragraph(rng, words, length) for _ in range(CHUNKS_PER_FILE)) + "\n")
        os.utime(path, (then, then))


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(args) -> None:
    """One operation in this (fresh) process; prints a JSON line."""
    import faiss

    faiss.omp_set_num_threads(1)
    from rag.build import BuildOptions, build, folder_sources
    from rag.embedders.st import TorchEmbedder

    emb = TorchEmbedder(batch_size=64) if args.real_embedder else stand_in_embedder()
    if args.real_embedder:
        emb.encode(["warm-up"])  # load the model before the clock starts
    docs = Path(args.docs)
    rng = np.random.default_rng(args.seed)
    words = [f"w{i:x}" for i in range(VOCABULARY)]
    length = REAL_WORDS_PER_PARAGRAPH if args.real_embedder else WORDS_PER_PARAGRAPH
    if args.op == "add":
        target = docs / "added" / f"new{args.seed}.txt"
        target.parent.mkdir(exist_ok=True)
        target.write_text("\n\n".join(paragraph(rng, words, length) for _ in range(CHUNKS_PER_FILE)) + "\n")
    elif args.op in ("edit", "merge"):
        target = next(iter(sorted(docs.glob("000/*.txt"))))
        paragraphs = target.read_text().split("\n\n")
        paragraphs[7] = paragraph(rng, words, length)
        target.write_text("\n\n".join(paragraphs))
    elif args.op == "delete":
        target = sorted(docs.glob("000/*.txt"))[-1]
        target.unlink()
    if args.op == "merge":  # the same edit, written as a merge of the delta into a new base
        from rag import segments

        segments.MERGE_FRACTION = 0.0
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    options = BuildOptions(
        embedder=emb,
        chunk_tokens=100,
        overlap=0,
        warn=lambda m: None,
        notify=lambda m: None,
        progress=args.op == "build" and sys.stderr.isatty(),
    )
    started = time.perf_counter()
    report = build(lambda: folder_sources(docs), Path(args.index), str(docs.resolve()), options)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "op": args.op,
                "seconds": round(seconds, 3),
                "peak_rss_mb": round(peak_mb(), 1),
                "chunks": report.chunks,
                "embedded": report.chunks_embedded,
                "reused": report.chunks_reused,
                "generation": report.generation,
            }
        )
    )


def run_op(op: str, docs: Path, index: Path, real: bool, seed: int) -> dict:
    command = [sys.executable, __file__, "--child", op, "--docs", str(docs), "--index", str(index), "--seed", str(seed)]
    if real:
        command.append("--real-embedder")
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{op} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--real", type=int, default=0, help="Also run this size with the real embedder.")
    parser.add_argument("--work", default="/tmp/rag-update-cost")
    parser.add_argument("--out", default=None, help="Write the results as JSON here too.")
    parser.add_argument("--child", dest="op", default=None)
    parser.add_argument("--docs")
    parser.add_argument("--index")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--real-embedder", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the corpora and indexes in --work.")
    args = parser.parse_args()
    if args.op:
        return child(args)

    import shutil

    work = Path(args.work)
    runs = [(int(s), False) for s in args.sizes.split(",") if s] + ([(args.real, True)] if args.real else [])
    results = []
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        "embedder: STAND-IN (hash vectors) unless marked real; one thread"
    )
    print(
        f"{'size':>9} {'embedder':>9} {'operation':>10} {'seconds':>8} {'peak RSS MB':>12} {'embedded':>9} {'chunks':>9}"
    )
    for size, real in runs:
        case = work / f"{size}-{'real' if real else 'standin'}"
        if case.exists():
            shutil.rmtree(case)
        make_corpus(case / "docs", size, REAL_WORDS_PER_PARAGRAPH if real else WORDS_PER_PARAGRAPH)
        for n, op in enumerate(["build", "add", "edit", "delete", "merge"], start=1):
            r = run_op(op, case / "docs", case / "index", real, seed=n)
            r.update(size=size, embedder="real" if real else "stand-in")
            results.append(r)
            print(
                f"{size:>9} {r['embedder']:>9} {op:>10} {r['seconds']:>8.2f} {r['peak_rss_mb']:>12.0f} {r['embedded']:>9}"
                f" {r['chunks']:>9}",
                flush=True,
            )
        if not args.keep:
            shutil.rmtree(case)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
