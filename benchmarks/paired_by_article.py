"""Paired comparison of two answerers of `rag bench` on the articles one of them trained on, and
on the rest: where a model trained on some of the questions, its lead there is memory, not skill.

    .venv/bin/python benchmarks/paired_by_article.py RESULTS.jsonl [MORE.jsonl ...] \\
        --a minilm-reader --b ~/runs/reader-gpu/model --held-in-of minilm-reader

Reads the records of both answerers (from one bench folder's results.jsonl, or from two run on
the same questions with the same retrieval), takes the held-in articles of the reader named by
--held-in-of (its rag-reader.json) and prints, as JSON, `rag.bench.paired.compare` (a minus b:
mean difference, paired bootstrap interval, wins/losses) on: the questions of those articles
(neither model trained on them, if the other never saw part A), the others, and all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--held-in-of", required=True, help="the reader whose held-in articles split the questions")
    args = parser.parse_args()

    from rag.bench.paired import compare
    from rag.readers.loading import reader_folder, settings

    held = set(settings(reader_folder(args.held_in_of))["settings"]["held_in"])
    records: dict[str, list[dict]] = {args.a: [], args.b: []}
    for path in args.results:
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            name = r.get("generator")
            for wanted in (args.a, args.b):
                if name == wanted or (Path(wanted).expanduser().exists() and name == str(Path(wanted).expanduser())):
                    records[wanted].append(r)

    def article(r: dict) -> str:
        return str(r["gold_ids"][0]).rsplit("/", 1)[0]

    out = {"held_in_articles": sorted(held)}
    for part, keep in (
        ("held_in", lambda r: article(r) in held),
        ("rest", lambda r: article(r) not in held),
        ("all", lambda r: True),
    ):
        a = [r for r in records[args.a] if keep(r)]
        b = [r for r in records[args.b] if keep(r)]
        out[part] = compare(args.a, a, args.b, b) or {"questions": 0}
        for name, rs in ((args.a, a), (args.b, b)):
            if rs:
                out[part][f"f1 {name}"] = round(sum(r["f1"] for r in rs) / len(rs), 4)
                out[part][f"em {name}"] = round(sum(r["em"] for r in rs) / len(rs), 4)
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
