"""The reader against the generators on the held-in SQuAD articles, through `rag bench`.

    .venv/bin/python benchmarks/reader_heldin.py READER [--limit 100] [--also qwen2.5-0.5b] [--out DIR]

READER is a model folder written by `rag train reader` (or the `minilm-reader` preset): its
rag-reader.json names the articles it never trained on. This writes a copy of the SQuAD file's
paragraphs with only those articles' questions (every paragraph stays in the corpus, so
retrieval searches all of them), then runs `rag bench` twice into DIR:

- `retrieved/`: the reader and the `--also` generators on the same 5 hybrid-retrieved passages
  per question (a seeded sample of `--limit`), with the bench's paired intervals;
- `gold/`: the reader on each question's gold paragraph (`--oracle`), every held-in question.

The reader's numbers on the other part-A articles mean nothing (it trained on them): only
these are its quality. Set thread counts with OMP_NUM_THREADS / --threads as for any benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def held_in_file(data: Path, articles: list[str], out: Path) -> Path:
    """All paragraphs of `data`; questions only for the held-in articles."""
    raw = json.loads(data.read_text(encoding="utf-8"))
    keep = set(articles)
    for article in raw["data"]:
        if article["title"].replace("/", "_") not in keep:
            for paragraph in article["paragraphs"]:
                paragraph["qas"] = []
    out.mkdir(parents=True, exist_ok=True)
    path = out / "held-in-squad.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reader")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--also", default="qwen2.5-0.5b", help="comma-separated generators beside the reader")
    parser.add_argument("--out", type=Path, default=Path("bench-out/reader-heldin"))
    args = parser.parse_args()

    from rag.bench.report import text_table
    from rag.bench.runner import BenchConfig, run_bench
    from rag.readers.loading import reader_folder, settings
    from rag.retrieve import Retriever

    folder = reader_folder(args.reader)
    if folder is None:
        sys.exit(f"{args.reader}: not a reader folder")
    record = settings(folder)["settings"]
    data = held_in_file(Path(record["data"]), record["held_in"], args.out)
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    also = [g for g in args.also.split(",") if g]
    gold = run_bench(
        BenchConfig(
            dataset=data,
            generators=[args.reader],
            oracle=True,
            out=args.out / "gold",
            progress=True,
            echo=say,
            warn=say,
            retriever=Retriever("hybrid"),
        )
    )
    print(text_table(gold.summary))
    retrieved = run_bench(
        BenchConfig(
            dataset=data,
            generators=[args.reader, *also],
            limit=args.limit,
            out=args.out / "retrieved",
            progress=True,
            echo=say,
            warn=say,
            retriever=Retriever("hybrid"),
        )
    )
    print(text_table(retrieved.summary))


if __name__ == "__main__":
    main()
