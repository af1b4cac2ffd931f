"""Indexing throughput: `Index.build` against the floor of bare encode + one FAISS add.

The shipped corpus is replicated until it holds at least --min-chunks chunks. The floor
encodes exactly the chunk texts the build produced, with the same model object and batch
size, then adds them to a flat FAISS index. Both are timed in the same process, floor
first, after a warm-up. Also times `rag --help` (best of 5 runs) to check torch is not
imported at start-up.

    .venv/bin/python benchmarks/index_throughput.py [--min-chunks 5000]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def help_seconds(runs: int = 5) -> float:
    rag = Path(sys.executable).with_name("rag")
    command = [str(rag), "--help"] if rag.exists() else [sys.executable, "-m", "rag.cli", "--help"]
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-chunks", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import faiss
    import numpy as np

    from rag.embedders.st import TorchEmbedder
    from rag.index import Index

    source = ROOT / "corpora" / "encoder-roles" / "docs"
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    try:
        embedder = TorchEmbedder(batch_size=args.batch_size)
        embedder.encode(["warm-up sentence"] * 8)
        probe = Index.build(source, work / "probe", embedder=embedder, warn=lambda m: None)
        copies = -(-args.min_chunks // len(probe))
        corpus = work / "corpus"
        for i in range(copies):
            shutil.copytree(source, corpus / f"copy{i:03d}")

        # The floor needs the very chunk texts the build makes; chunking is cheap next to encoding.
        from rag.chunking import chunk_document
        from rag.documents import Document
        from rag.loaders import load_text, walk

        texts = [
            c.text
            for path in walk(corpus)
            for c in chunk_document(Document(path.name, load_text(path)), embedder.tokenizer)
        ]
        start = time.perf_counter()
        vectors = embedder.model.encode(
            texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
        floor_s = time.perf_counter() - start

        start = time.perf_counter()
        index = Index.build(corpus, work / "idx", embedder=embedder, warn=lambda m: None)
        build_s = time.perf_counter() - start
        assert len(index) == len(texts), (len(index), len(texts))

        n = len(texts)
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {__import__('torch').get_num_threads()}"
        )
        print(f"chunks: {n} ({copies} copies of the shipped corpus), batch size {args.batch_size}")
        print(f"floor  (encode + FAISS add): {floor_s:7.1f} s  {n / floor_s:7.1f} chunks/s")
        print(f"Index.build (whole pipeline): {build_s:7.1f} s  {n / build_s:7.1f} chunks/s")
        print(f"ratio build/floor throughput: {floor_s / build_s:.3f}  (target >= 0.9)")
        print(f"rag --help: {help_seconds():.3f} s best of 5 (target < 0.3)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
