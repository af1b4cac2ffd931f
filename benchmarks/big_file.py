"""Peak memory of indexing one very large text file: it must not grow with the file.

A text file of --mb megabytes is made from the shipped corpus's articles (each copy numbered, so
chunks differ) and indexed in a fresh process, whose peak RSS (VmHWM) is reported with the
time and the chunk count. The chunker uses the real all-MiniLM-L6-v2 tokenizer; vectors come
from a deterministic STAND-IN (a hash of the text) unless --real-embedder, because embedding
500 MB with MiniLM takes hours on two cores. The model itself adds a constant (about 0.4 GB
of torch and weights), not something that grows with the file.

    .venv/bin/python benchmarks/big_file.py --mb 50,500 [--real-embedder] [--work /tmp/big-file]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import update_cost  # noqa: E402  (sets one thread and offline mode, and puts the project on sys.path)


def make_file(path: Path, megabytes: float) -> None:
    articles = [p.read_text() for p in sorted((ROOT / "corpora" / "encoder-roles" / "docs").glob("*.md"))]
    target, written, copy = int(megabytes * 1e6), 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            for article in articles:
                text = f"\n\nCopy {copy}.\n\n" + article.replace(". ", f". ({copy}) ", 3)
                f.write(text)
                written += len(text.encode())
            copy += 1


def child(args) -> None:
    from rag.build import BuildOptions, build_folder
    from rag.embedders.st import TorchEmbedder

    if args.real_embedder:
        emb = TorchEmbedder()
        emb.encode(["warm-up"])
    else:
        from transformers import AutoTokenizer

        from rag.embedders.names import packaged_minilm

        emb = update_cost.stand_in_embedder()
        type(emb).tokenizer = AutoTokenizer.from_pretrained(str(packaged_minilm()))
        type(emb).max_tokens = 256
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    started = time.perf_counter()
    report = build_folder(
        Path(args.docs),
        Path(args.index),
        BuildOptions(
            embedder=emb,
            warn=lambda m: print(m, file=sys.stderr),
            notify=lambda m: None,
            progress=sys.stderr.isatty(),
            max_file_mb=None,
        ),
    )
    seconds = time.perf_counter() - started
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "peak_rss_mb": round(peak),
                "chunks": report.chunks,
                "embedded": report.chunks_embedded,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", default="50,500")
    parser.add_argument("--work", default="/tmp/rag-big-file")
    parser.add_argument("--real-embedder", action="store_true")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--docs")
    parser.add_argument("--index")
    args = parser.parse_args()
    if args.child:
        return child(args)
    print(
        f"one text file; tokenizer: all-MiniLM-L6-v2; vectors: {'all-MiniLM-L6-v2' if args.real_embedder else 'STAND-IN (hash)'}"
    )
    print(f"{'MB':>6} {'seconds':>9} {'peak RSS MB':>12} {'chunks':>9}")
    for mb in [float(x) for x in args.mb.split(",")]:
        case = Path(args.work) / f"{mb:g}"
        shutil.rmtree(case, ignore_errors=True)
        (case / "docs").mkdir(parents=True)
        make_file(case / "docs" / "big.txt", mb)
        command = [sys.executable, __file__, "--child", "--docs", str(case / "docs"), "--index", str(case / "index")]
        if args.real_embedder:
            command.append("--real-embedder")
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(proc.stderr)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{mb:>6g} {r['seconds']:>9.1f} {r['peak_rss_mb']:>12} {r['chunks']:>9}", flush=True)
        shutil.rmtree(case, ignore_errors=True)


if __name__ == "__main__":
    main()
