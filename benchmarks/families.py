"""The three families from one MiniLM, measured alike: the reader, the encoder-decoder and the
decoder-only generator at the same numbers of training questions, on SQuAD dev part A.

    .venv/bin/python benchmarks/families.py --reader RUN --encdec RUN --deconly RUN \\
        [--sizes 2000,8000,16000] [--data ../shared/datasets/squad/dev-v1.1-part-a.json] \\
        [--out ~/runs/families] [--limit N | --limit hybrid=N] [--modes gold,hybrid]

For each size, the model each run kept at that curve point (RUN/curve/<N>q, float32, the
learning rate wherever the schedule had it: the same for all three) answers every question twice
with `rag bench`: from the gold paragraph (`--oracle`) and from 5 hybrid-retrieved passages (the
encoder-decoder Fusion-in-Decoder style, `+fid`; the reader reads the five, best span always
given). Each bench run is resumable (`--out` per size and mode), so a killed run goes on where it
stopped. Then OUT/families.json gathers F1, EM, paired bootstrap intervals between families,
latency, tokens/s, peak RSS and parameters, with the training CPU-seconds from each curve.jsonl;
OUT/families.png plots F1 against training questions and against training CPU-seconds; a
markdown table goes to stdout. Names the CPU.

    .venv/bin/python benchmarks/families.py --answers DIR --reader RUN --encdec RUN --deconly RUN [--sizes ...]

does the same from per-question answers benchmarks/device/eval_families.py wrote (on a lent GPU, or
on a CPU core beside the training: DIR/<family>-<N>q-<mode>[-sampleN].jsonl, the same inputs and
scoring as `rag bench`): F1, EM and the paired intervals, no latency (that is measured on the
CPU). `--limit hybrid=1000` reads the hybrid answers of rag bench's 1,000-question sample and the
gold ones over all questions. Training CPU-seconds are each curve point's own where the run
trained on a CPU; for a GPU run, what those questions cost on two cores of this project's CPUs
from the recipes' measured rates (`--rates`: questions a second, benchmarks/generator_throughput.py,
2 threads, bf16 autocast on an AVX-512 BF16 EPYC), since the GPU host's CPU-seconds say nothing
about a CPU run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PART_A = ROOT.parent / "shared" / "datasets" / "squad" / "dev-v1.1-part-a.json"
MODES = {"gold": ["--oracle"], "hybrid": []}


def curve_points(run: Path) -> dict[int, dict]:
    points = {}
    for line in (run / "curve.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            point = json.loads(line)
        except ValueError:
            continue
        points[int(point["questions"])] = point
    return points


def mark_reader_point(run: Path, point: dict) -> Path:
    """A reader curve point as a model rag loads (rag-reader.json; no margin: it always answers)."""
    from rag.readers.base import MARKER
    from rag.train.checkpoints import checkpoint_state
    from rag.train.reader import TrainSettings
    from rag.train.run_reader import write_card

    folder = run / point["model"]
    if not (folder / MARKER).exists():
        settings = TrainSettings(**checkpoint_state(run)["settings"])
        metrics = {"training": {"steps": point["step"], "seconds": point["train_seconds"], "curve_point": True}}
        command = f"rag train reader --out {run.name} (curve point)"
        write_card(
            folder, settings, metrics, float("-inf"), command, int(point["questions"]), point["held_in_questions"]
        )
    return folder


def mark_generator_point(run: Path, point: dict) -> Path:
    from rag.generators.minilm import MARKER
    from rag.train.checkpoints import checkpoint_state
    from rag.train.generator import GenSettings
    from rag.train.run_generator import mark_curve_model

    folder = run / point["model"]
    if not (folder / MARKER).exists():
        settings = GenSettings(**checkpoint_state(run)["settings"])
        command = f"rag train generator --family {settings.family} --out {run.name} (curve point)"
        mark_curve_model(run, settings, point, command, point["held_in_questions"])
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", type=Path, required=True)
    parser.add_argument("--encdec", type=Path, required=True)
    parser.add_argument("--deconly", type=Path, required=True)
    parser.add_argument("--sizes", default="2000,8000,16000")
    parser.add_argument("--data", type=Path, default=PART_A)
    parser.add_argument("--out", type=Path, default=Path.home() / "runs" / "families")
    parser.add_argument(
        "--limit",
        default=None,
        help="questions per bench (default: all), or per mode, e.g. hybrid=1000",
    )
    parser.add_argument("--modes", default="gold,hybrid")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--answers", type=Path, help="per-question answers from benchmarks/device/eval_families.py")
    parser.add_argument(
        "--rates",
        default="reader=3.89,encoder-decoder=6.40,decoder-only=7.12",
        help="training questions/s on two cores, per family (with --answers)",
    )
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (SQuAD dev part A, in ../shared/datasets/squad/)")
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    runs = {"reader": args.reader, "encoder-decoder": args.encdec, "decoder-only": args.deconly}
    points = {family: curve_points(run) for family, run in runs.items()}
    missing = [f"{family} at {n}" for n in sizes for family in runs if n not in points[family]]
    if missing and args.answers is None:
        sys.exit(f"no curve point for {', '.join(missing)}: the runs have not reached it yet")

    from rag.cpu import this_cpu

    limits = limits_by_mode(args.limit, modes)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.answers is not None:
        rates = {k: float(v) for k, v in (item.split("=") for item in args.rates.split(","))}
        results = from_answers(args.answers, sizes, modes, rates, points, limits)
        (args.out / "families.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        plot(results, args.out / "families.png", modes)
        print(table(results, modes))
        return
    results: dict = {"cpu": this_cpu().describe(), "threads": args.threads, "data": args.data.name, "sizes": {}}
    for n in sizes:
        folders = {
            "reader": mark_reader_point(args.reader, points["reader"][n]),
            "encoder-decoder": mark_generator_point(args.encdec, points["encoder-decoder"][n]),
            "decoder-only": mark_generator_point(args.deconly, points["decoder-only"][n]),
        }
        labels = {
            "reader": str(folders["reader"]),
            "encoder-decoder": f"{folders['encoder-decoder']}+fid",
            "decoder-only": str(folders["decoder-only"]),
        }
        entry: dict = {"cpu_seconds": {f: points[f][n]["train_cpu_seconds"] for f in runs}}
        for mode in modes:
            out = args.out / f"{mode}-{n}q"
            names = [
                str(folders[f])
                if mode == "gold" and f == "encoder-decoder"
                else labels[f]  # one passage: nothing to fuse
                for f in runs
            ]
            command = [str(Path(sys.executable).parent / "rag"), "bench", str(args.data), "--out", str(out), "--quiet"]
            command += ["--passages", "5", *MODES[mode], "-g", ",".join(names)]
            if limits[mode]:
                command += ["--limit", str(limits[mode])]
            print(" ".join(command), file=sys.stderr)
            subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
            entry[mode] = summarise(summary, folders)
        results["sizes"][str(n)] = entry
    (args.out / "families.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    plot(results, args.out / "families.png", modes)
    print(table(results, modes))


def limits_by_mode(text: str | None, modes: list[str]) -> dict[str, int | None]:
    """`--limit`: "1000" for every mode, or "hybrid=1000[,gold=N]" (a mode not named: all questions)."""
    if not text:
        return {m: None for m in modes}
    if "=" not in text:
        return {m: int(text) for m in modes}
    named = {k.strip(): int(v) for k, v in (item.split("=", 1) for item in text.split(",") if item)}
    unknown = sorted(set(named) - set(modes))
    if unknown:
        sys.exit(f"--limit {text}: no mode {', '.join(unknown)} (modes: {', '.join(modes)})")
    return {m: named.get(m) for m in modes}


def training_cpu_seconds(point: dict | None, n: int, rate: float) -> float:
    """What `n` training questions cost on the CPU: measured where the run trained on one (its
    curve point's CPU-seconds), else two cores at the recipe's measured rate (a GPU run's host CPU
    says nothing about a CPU run)."""
    if point is not None and point.get("device", "cpu") == "cpu" and point.get("train_cpu_seconds") is not None:
        return float(point["train_cpu_seconds"])
    return 2 * n / rate


def from_answers(
    folder: Path,
    sizes: list[int],
    modes: list[str],
    rates: dict,
    points: dict,
    limits: dict[str, int | None] | None = None,
) -> dict:
    """families.json's shape from eval_families.py's answers: per size and mode, each family's F1
    and EM over every question (or the sample `rag bench --limit N` draws, where `limits` names
    one for that mode), and the paired intervals between families (rag.bench.paired)."""
    from rag.bench.paired import compare_all
    from rag.cpu import this_cpu

    limits = limits or {}
    results: dict = {
        "cpu": this_cpu().describe(),
        "cpu_seconds_from": f"CPU runs: their own; GPU runs: two cores at {rates} questions/s",
        "answers": folder.name,
        "threads": None,  # answers only: latency is measured on the CPU with rag bench
        "data": "dev-v1.1-part-a.json",
        "sizes": {},
    }
    for n in sizes:
        entry: dict = {
            "cpu_seconds": {f: training_cpu_seconds(points[f].get(n), n, rates[f]) for f in points},
            "gpu_train_seconds": {
                f: points[f][n]["train_seconds"] for f in points if points[f].get(n, {}).get("device", "cpu") != "cpu"
            },
        }
        for mode in modes:
            records = {}
            limit = limits.get(mode)
            for family in points:
                path = folder / f"{family}-{n}q-{mode}{f'-sample{limit}' if limit else ''}.jsonl"
                if path.exists():
                    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
                    records[family] = [{"question_id": r["id"], "f1": r["f1"], "em": r["em"]} for r in rows]
            entry[mode] = {
                "families": {
                    f: {
                        "f1": sum(r["f1"] for r in rs) / len(rs),
                        "em": sum(r["em"] for r in rs) / len(rs),
                        "questions": len(rs),
                    }
                    for f, rs in records.items()
                },
                "paired": compare_all(records),
            }
        results["sizes"][str(n)] = entry
    return results


def summarise(summary: dict, folders: dict[str, Path]) -> dict:
    """Per family: F1, EM, latency, tokens/s, peak RSS, parameters; and the paired F1 intervals."""
    by_folder = {str(v): k for k, v in folders.items()}

    def family_of(name: str) -> str:
        return by_folder.get(name.split("+", 1)[0], name)

    out: dict = {"families": {}, "paired": []}
    for g in summary["generators"]:
        if "f1" not in g:
            out["families"][family_of(g["name"])] = {"status": g["status"], "error": g.get("error")}
            continue
        out["families"][family_of(g["name"])] = {
            "f1": g["f1"],
            "em": g["em"],
            "questions": g["questions"],
            "p50_ms": g["generation_ms"]["p50"],
            "p95_ms": g["generation_ms"]["p95"],
            "tokens_per_s": g.get("tokens_per_s"),
            "peak_rss_mb": g.get("peak_rss_mb"),
            "parameters": g.get("parameters"),
        }
    for p in summary.get("paired") or []:
        keep = {k: v for k, v in p.items() if k not in ("a", "b")}
        out["paired"].append({"a": family_of(p["a"]), "b": family_of(p["b"]), **keep})
    return out


def table(results: dict, modes: list[str]) -> str:
    timed = any(
        f.get("p50_ms") is not None for e in results["sizes"].values() for m in modes for f in e[m]["families"].values()
    )
    threads = f", {results['threads']} threads" if results.get("threads") else ""
    lines = [f"CPU: {results['cpu']}{threads}, {results['data']}", ""]
    columns = ["F1", "EM", "p50 ms"] if timed else ["F1", "EM"]
    lines.append(
        "| questions | family | train CPU s | " + " | ".join(f"{m} {c}" for m in modes for c in columns) + " |"
    )
    lines.append("| ---: | --- | ---: | " + " | ".join("---:" for _ in modes for _ in columns) + " |")
    for n, entry in results["sizes"].items():
        for family, cpu in entry["cpu_seconds"].items():
            cells = []
            for m in modes:
                f = entry[m]["families"].get(family, {})
                cells += [_n(f.get("f1")), _n(f.get("em"))] + ([_n(f.get("p50_ms"), 0)] if timed else [])
            lines.append(f"| {int(n):,} | {family} | {cpu:,.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _n(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def plot(results: dict, path: Path, modes: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"gold": "-", "hybrid": "--"}
    colours = {"reader": "tab:blue", "encoder-decoder": "tab:orange", "decoder-only": "tab:green"}
    for family in ("reader", "encoder-decoder", "decoder-only"):
        for mode in modes:
            xs, cpu, ys = [], [], []
            for n, entry in results["sizes"].items():
                f1 = entry[mode]["families"].get(family, {}).get("f1")
                if f1 is not None:
                    xs.append(int(n))
                    cpu.append(entry["cpu_seconds"][family] / 3600)
                    ys.append(f1)
            label = f"{family}, {'gold paragraph' if mode == 'gold' else 'hybrid top 5'}"
            axes[0].plot(xs, ys, styles[mode], color=colours[family], marker="o", label=label)
            axes[1].plot(cpu, ys, styles[mode], color=colours[family], marker="o", label=label)
    axes[0].set_xscale("log", base=2)
    sizes = [int(n) for n in results["sizes"]]
    axes[0].set_xticks(sizes, [f"{n:,}" for n in sizes])
    axes[0].minorticks_off()
    axes[0].set_xlabel("training questions")
    axes[1].set_xlabel("training CPU-hours (this CPU)")
    for ax in axes:
        ax.set_ylabel("F1 on SQuAD dev part A")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    counts = {  # questions per mode (hybrid may be rag bench's sample)
        m: max(f.get("questions", 0) for e in results["sizes"].values() for f in e[m]["families"].values())
        for m in modes
        if any(e[m]["families"] for e in results["sizes"].values())
    }
    note = "; ".join(f"{m}: {n:,} questions" for m, n in counts.items())
    fig.suptitle(
        f"Three families from one all-MiniLM-L6-v2, SQuAD dev part A, never trained on ({note})\n{results['cpu']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
