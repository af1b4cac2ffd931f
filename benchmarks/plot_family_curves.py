"""Held-in learning curves of the three families from one all-MiniLM-L6-v2, in one figure: gold-
paragraph F1 against training questions and against the CPU-seconds those questions cost.

    .venv/bin/python benchmarks/plot_family_curves.py --run reader=RUN --run encoder-decoder=RUN \\
        --run decoder-only=RUN [--points reader=2000:0.080,8000:0.483] --out benchmarks/results/families/held-in.png

Each --run reads RUN/curve.jsonl (questions, gold_f1); --points gives a family's points where its
run folder is gone (numbers from BENCHMARKS.md). CPU-seconds are questions over each recipe's
measured training rate on two cores (`--rates`, questions/s; benchmarks/generator_throughput.py
--bf16 on an AVX-512 BF16 EPYC), times two cores, so the second panel compares compute, not
wall-clock of runs that shared machines.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FAMILIES = ("reader", "encoder-decoder", "decoder-only")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="FAMILY=RUN_FOLDER")
    parser.add_argument("--points", action="append", default=[], help="FAMILY=Q:F1,Q:F1,...")
    parser.add_argument("--rates", default="reader=3.89,encoder-decoder=6.40,decoder-only=7.12")
    parser.add_argument("--title", default="")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    curves: dict[str, dict[int, float]] = {f: {} for f in FAMILIES}
    for item in args.run:
        family, run = item.split("=", 1)
        for line in (Path(run).expanduser() / "curve.jsonl").read_text(encoding="utf-8").splitlines():
            point = json.loads(line)
            curves[family][int(point["questions"])] = float(point["gold_f1"])
    for item in args.points:
        family, points = item.split("=", 1)
        for pair in points.split(","):
            q, f1 = pair.split(":")
            curves[family][int(q)] = float(f1)
    rates = {k: float(v) for k, v in (x.split("=") for x in args.rates.split(","))}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for family in FAMILIES:
        points = sorted(curves[family].items())
        if not points:
            continue
        qs, f1s = [q for q, _ in points], [f for _, f in points]
        axes[0].plot(qs, f1s, marker="o", label=family)
        axes[1].plot([2 * q / rates[family] / 3600 for q in qs], f1s, marker="o", label=family)
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("training questions (SQuAD's training set)")
    axes[1].set_xlabel("training CPU-hours, two cores (bf16, AVX-512 BF16 EPYC)")
    for ax in axes:
        ax.set_ylabel("held-in gold-paragraph F1")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(args.title or "Three families from one all-MiniLM-L6-v2 (812 held-in questions)", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(args.out)


if __name__ == "__main__":
    main()
