"""Make a shippable reader of a model a `rag train reader --curve` run kept at a curve point.

    .venv/bin/python benchmarks/finish_reader.py RUN_FOLDER QUESTIONS [--threads 2]

A run's curve points (RUN_FOLDER/curve/<N>q, weights and tokenizer only) are the learning curve's
models. To weigh one against the shipped reader it needs what the end of a run gives a model:
the int8 ONNX export, the no-answer margin calibrated on the run's held-in articles (never on
part A), and rag-reader.json with its card. This copies the curve model to
RUN_FOLDER/candidate-<N>q/ (the curve point itself is left as it is), does those three steps with
the run's own settings, held-in split and retrieved passages (RUN_FOLDER/retrieval.json), and
prints the held-in figures. Then `rag bench` on part A decides (see BENCHMARKS.md).

    .venv/bin/python benchmarks/finish_reader.py RUN_FOLDER --final [--settings-from OTHER_RUN]

does the same in place for RUN_FOLDER/model, a finished run's model whose end-of-run evaluation
did not happen (trained on a GPU machine that was given back during it, with only the model
copied here). Its checkpoint stayed on that machine: `--settings-from` names a run of the same
command whose checkpoint holds the settings (checked: data hash and held-in articles), and
RUN_FOLDER/training.json what the training machine reported (the command, questions, steps,
seconds, windows/s, device, a note).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("questions", type=int, nargs="?")
    parser.add_argument("--final", action="store_true", help="RUN/model, finished in place")
    parser.add_argument("--settings-from", type=Path, help="a run of the same command holding its settings")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from rag.readers.export import export_reader
    from rag.readers.loading import load_reader
    from rag.train.checkpoints import CHECKPOINT, checkpoint_state
    from rag.train.data import load_examples, split_by_article
    from rag.train.reader import TrainSettings
    from rag.train.run_reader import CURVE, RETRIEVAL, SPLIT_SEED, Retrieved, held_in_metrics, repo_relative, write_card

    run, n = args.run, args.questions
    if (n is None) == (not args.final):
        sys.exit("give QUESTIONS (a curve point) or --final (the run's model), one of them")
    source = run / "model" if args.final else run / "curve" / f"{n}q"
    if not (source / "model.safetensors").is_file():
        sys.exit(f"{source}: no model there (the run's curve points are in {run / 'curve'})")
    state = checkpoint_state(args.settings_from or run)
    if state is None:
        sys.exit(f"{run / CHECKPOINT}: the run has no checkpoint to read its settings from")
    settings = TrainSettings(**state["settings"])
    examples = load_examples(Path(settings.data))
    train_set, held = split_by_article(examples, len(settings.held_in), SPLIT_SEED)
    if sorted({e.article for e in held}) != settings.held_in:
        sys.exit("the held-in articles differ from the run's: the data file changed")
    ranked = {
        q: [Retrieved(d, t) for d, t in items]
        for q, items in json.loads((run / RETRIEVAL).read_text(encoding="utf-8"))["ranked"].items()
    }
    if args.final:
        return finish_final(run, settings, held, ranked, args.threads)
    point = next(
        (json.loads(line) for line in (run / CURVE).read_text().splitlines() if json.loads(line)["questions"] == n),
        {},
    )
    target = run / f"candidate-{n}q"
    if target.exists():
        shutil.rmtree(target)  # ours: made by this script inside the run folder
    shutil.copytree(source, target)
    metrics = {
        "training": {
            "questions_seen": n,
            "windows": point.get("windows_seen"),
            "steps": point.get("step"),
            "seconds": point.get("train_seconds"),
            "cpu_seconds": point.get("train_cpu_seconds"),
            "windows_per_second": round(point["windows_seen"] / point["train_seconds"], 2) if point else None,
            "curve_point": f"curve/{n}q of a run planned for {settings.epochs} epoch(s)",
        }
    }
    command = (
        f"rag train reader --data {repo_relative(settings.data)} --out {run.name} --held-in {len(settings.held_in)} "
        f"--negatives {settings.negatives} --epochs {settings.epochs:g} --seed {settings.seed} --curve ...,{n},..."
    )
    reader = load_reader(str(target), backend="torch", threads=args.threads)
    margin, metrics["held_in"] = held_in_metrics(reader, held, ranked, True)
    export_reader(target)
    int8 = load_reader(str(target), backend="onnx", threads=args.threads)
    margin, metrics["held_in_int8"] = held_in_metrics(int8, held, ranked, True)
    write_card(target, settings, metrics, margin, command, n, len(held))
    print(json.dumps({"folder": str(target), "margin": margin, **metrics}, indent=1))


def finish_final(run: Path, settings, held, ranked, threads: int) -> None:
    """RUN/model evaluated, exported and carded in place, as the end of its run would have."""
    from rag.train.loop import questions_trained
    from rag.train.run_reader import finish_reader

    training = json.loads((run / "training.json").read_text(encoding="utf-8"))
    trained = questions_trained(settings, int(training["questions"]))
    command = training["command"]  # as it ran there, relative paths only
    metrics = {"training": {k: v for k, v in training.items() if k not in ("questions", "command")}}
    metrics = finish_reader(run / "model", settings, metrics, held, ranked, command, trained, threads, say=print)
    print(json.dumps({"folder": str(run / "model"), **metrics}, indent=1))


if __name__ == "__main__":
    main()
