"""`rag index --ray` against the local build on the same folder, and on a simulated cluster.

The shipped corpus is copied --copies times with every line tagged by its copy, so every chunk
is distinct and is embedded (vectors are stored once per distinct text). Each build runs in a
fresh process into a fresh index, interleaved: local (2 threads), --ray with --workers actors of
one CPU each, and --ray --ray-ship (the driver sends the bytes). Ray's start-up is timed apart
(a cluster that is already running does not pay it). The driver's peak RSS is its own
(ru_maxrss); the workers are other processes. Then a simulated cluster
(`ray.cluster_utils.Cluster`, --nodes nodes of one CPU each on this machine) builds the same
folder, and its index is compared with the local one (chunks, vectors, top-k).

    .venv/bin/python benchmarks/ray_build.py [--copies 12] [--workers 2] [--rounds 2] [--nodes 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from rag.index import Index
mode, folder, idx, workers, address = {mode!r}, {folder!r}, {idx!r}, {workers}, {address!r}
ray_options, startup = None, 0.0
if mode != "local":
    from rag.build.on_ray import RayOptions, connect
    ray_options = RayOptions(address=address, workers=workers, ship=mode == "ray-ship")
    t = time.perf_counter()
    connect(ray_options)
    startup = time.perf_counter() - t
t = time.perf_counter()
index = Index.build(folder, idx, ray=ray_options, warn=lambda m: None, notify=lambda m: None)
seconds = time.perf_counter() - t
r = index.build_report
print(json.dumps({{"mode": mode, "seconds": seconds, "startup": startup, "chunks": r.chunks,
                  "embedded": r.chunks_embedded, "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def make_corpus(folder: Path, copies: int) -> None:
    source = ROOT / "corpora" / "encoder-roles" / "docs"
    for i in range(copies):
        for path in sorted(source.iterdir()):
            if path.is_file():
                lines = path.read_text(encoding="utf-8").splitlines()
                tagged = [f"(copy {i}) {line}" if line.strip() else line for line in lines]
                target = folder / f"copy{i:03d}" / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("\n".join(tagged) + "\n", encoding="utf-8")


def build(mode: str, folder: Path, idx: Path, workers: int, address: str | None = None) -> dict:
    code = BUILD.format(root=str(ROOT), mode=mode, folder=str(folder), idx=str(idx), workers=workers, address=address)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        sys.exit(f"{mode} build failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def same_index(a: Path, b: Path) -> str:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from rag.index import Index

    x, y = Index.load(a), Index.load(b)
    q = 'SELECT c.doc_path, c.start, c."end", c.text, v.vector FROM chunks c JOIN vectors v ON v.sha256 = c.sha256 ORDER BY c.doc_path, c.start'
    rx, ry = x.db.execute(q).fetchall(), y.db.execute(q).fetchall()
    if [r[:4] for r in rx] != [r[:4] for r in ry]:
        return "different chunks"
    vx = np.stack([np.frombuffer(r[4], dtype=np.float32) for r in rx])
    vy = np.stack([np.frombuffer(r[4], dtype=np.float32) for r in ry])
    top = all(
        [(p.doc_path, p.start) for p in x.search(query, k=10, retriever=kind)]
        == [(p.doc_path, p.start) for p in y.search(query, k=10, retriever=kind)]
        for query in ("masked language modelling", "cross-attention in the decoder", "FAISS inner product")
        for kind in ("dense", "bm25", "hybrid")
    )
    return f"same chunks ({len(rx)}), max vector difference {np.abs(vx - vy).max():.1e}, same top-10: {top}"


def writer_rate(n: int = 20_000) -> dict:
    """What the one writer can take, per second: chunk rows recorded (plan) and vectors with
    their BM25 term ids stored (embed), on synthetic chunks of the corpus's length."""
    import time

    import numpy as np

    sys.path.insert(0, str(ROOT))
    from rag import lexical, store
    from rag.build.ledger import Ledger
    from rag.documents import Chunk

    text = (ROOT / "corpora" / "encoder-roles" / "docs" / "bert.md").read_text(encoding="utf-8")[:900]
    chunks = [Chunk(f"doc{i // 10}.md", f"{i} {text}", 0, 900, 1, 10) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "idx"
        store.claim(path)
        ledger = Ledger(path, warn=lambda m: None)
        ledger.open("bench")
        t = time.perf_counter()
        ledger.begin()
        ledger.insert_chunks(chunks)
        ledger.commit_plan()
        plan_s = time.perf_counter() - t
        rng = np.random.default_rng(0)
        vectors = [rng.standard_normal(384).astype(np.float32).tobytes() for _ in range(n)]
        tokens = [lexical.tokenize(c.text) for c in chunks[:512]]
        t = time.perf_counter()
        for start in range(0, n, 512):
            shas = [store.text_sha(c.text) for c in chunks[start : start + 512]]
            ledger.store_vectors(shas, vectors[start : start + 512], tokens[: len(shas)])
        store_s = time.perf_counter() - t
        ledger.close()
    return {"rows_per_s": n / plan_s, "vectors_per_s": n / store_s, "both_per_s": n / (plan_s + store_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args()
    modes = ["local", "ray", "ray-ship"]
    with tempfile.TemporaryDirectory(prefix="rag-ray-bench-") as work:
        work = Path(work)
        folder = work / "docs"
        make_corpus(folder, args.copies)
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for r in range(args.rounds):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                idx = work / f"idx-{mode}-{r}"
                runs[mode].append(build(mode, folder, idx, args.workers))
                print(f"round {r + 1}: {runs[mode][-1]}", file=sys.stderr)
        print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.copies} tagged copies of the shipped corpus")
        print(
            "| build | chunks embedded | seconds (median) | chunks/s | vs local | Ray start-up s | driver peak RSS MB |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        local = statistics.median(x["seconds"] for x in runs["local"])
        for mode in modes:
            s = statistics.median(x["seconds"] for x in runs[mode])
            e = runs[mode][0]["embedded"]
            print(
                f"| {mode} | {e} | {s:.1f} | {e / s:.1f} | {local / s:.2f} | "
                f"{statistics.median(x['startup'] for x in runs[mode]):.1f} | "
                f"{max(x['driver_peak_rss_mb'] for x in runs[mode]):.0f} |"
            )
        for mode in ("ray", "ray-ship"):
            print(f"{mode} index against local: {same_index(work / f'idx-{mode}-0', work / 'idx-local-0')}")

        w = writer_rate()
        print(
            f"the one writer, per second: {w['rows_per_s']:.0f} chunk rows recorded, {w['vectors_per_s']:.0f} "
            f"vectors stored, {w['both_per_s']:.0f} chunks through both"
        )

        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=1)
        try:
            sim = build("ray", folder, work / "idx-cluster", args.nodes, address=cluster.address)
        finally:
            cluster.shutdown()
        print(
            f"simulated cluster, {args.nodes} nodes of 1 CPU: {sim['seconds']:.1f} s; "
            f"index against local: {same_index(work / 'idx-cluster', work / 'idx-local-0')}"
        )
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
