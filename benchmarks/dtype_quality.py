"""Did bfloat16 cost answer quality? Two `rag bench` runs of the same setup, one per dtype, paired.

Run the same bench twice with `--dtype float32` and `--dtype bfloat16` into two folders, then:

    .venv/bin/python benchmarks/dtype_quality.py BENCH_OUT_FP32 BENCH_OUT_BF16

Per generator: F1 and EM of each, the paired difference (bfloat16 - float32) with the bench's
seeded bootstrap 95% interval over the questions both answered, win/tie/loss by F1, and how
many answers are the same text (greedy: the same tokens, as far as the text shows).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.bench.paired import compare  # noqa: E402


def records(out: Path) -> dict[str, list[dict]]:
    """Each generator's answers in a bench folder (the latest record per question wins)."""
    by_name: dict[str, dict[str, dict]] = {}
    for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            if r.get("generator") is not None:
                by_name.setdefault(r["generator"], {})[r["question_id"]] = r
    return {name: list(rows.values()) for name, rows in by_name.items()}


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    fp32, bf16 = records(Path(sys.argv[1])), records(Path(sys.argv[2]))
    print(
        "| generator | questions | F1 fp32 | F1 bf16 | F1 bf16 - fp32 | 95% CI | EM fp32 | EM bf16 | W/T/L | same text |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|---|---:|")
    for name in fp32:
        if name not in bf16:
            continue
        a, b = {r["question_id"]: r for r in bf16[name]}, {r["question_id"]: r for r in fp32[name]}
        common = sorted(set(a) & set(b))
        pair = compare("bfloat16", [a[q] for q in common], "float32", [b[q] for q in common])
        same = sum(a[q]["answer"] == b[q]["answer"] for q in common)
        mean = lambda rows, key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
        f = pair["f1"]
        print(
            f"| {name} | {len(common)} | {mean([b[q] for q in common], 'f1'):.3f} | {mean([a[q] for q in common], 'f1'):.3f} "
            f"| {f['diff']:+.3f} | [{f['low']:+.3f}, {f['high']:+.3f}] | {mean([b[q] for q in common], 'em'):.3f} | "
            f"{mean([a[q] for q in common], 'em'):.3f} | {pair['wins']}/{pair['ties']}/{pair['losses']} | "
            f"{same}/{len(common)} |"
        )


if __name__ == "__main__":
    main()
