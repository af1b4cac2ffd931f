"""Copy a reader `rag train reader` wrote into the package, as the `minilm-reader` preset.

    .venv/bin/python benchmarks/ship_reader.py MODEL_FOLDER [--held-in-run HELD_IN_MODEL_FOLDER]

Ships what ONNX Runtime needs (model-int8.onnx, tokenizer.json), rag's record (rag-reader.json:
margin, settings, metrics) and the model card (README.md); refuses if the files exceed 50 MB or
the folder holds no rag-reader.json. A model trained on every article (`--held-in 0`) has no
held-in split to calibrate its no-answer margin on: `--held-in-run` names the held-in run with
the same settings, whose int8 margin it takes and whose numbers its card shows as its expected
quality (settings other than the held-in split must match, or it refuses). Weights committed stay in the history forever: ship the
model that is the one to ship, and rarely again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "rag" / "readers" / "minilm-reader"
FILES = ("model-int8.onnx", "tokenizer.json", "rag-reader.json", "README.md", "config.json")
LIMIT = 50 * 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--held-in-run", type=Path, help="the held-in run's model folder (for a --held-in 0 model)")
    args = parser.parse_args()
    source = args.model
    missing = [f for f in FILES if not (source / f).is_file()]
    if missing:
        sys.exit(f"{source}: missing {', '.join(missing)} (is it a finished `rag train reader` model folder?)")
    size = sum((source / f).stat().st_size for f in FILES)
    if size > LIMIT:
        sys.exit(f"{source}: {size / 2**20:.1f} MB is over the 50 MB the package may carry")
    record = json.loads((source / "rag-reader.json").read_text(encoding="utf-8"))
    if record.get("margin") is None and args.held_in_run is None:
        sys.exit(f"{source} was trained on every article and has no margin: give --held-in-run")
    if args.held_in_run is not None:
        record = with_held_in_run(
            record, json.loads((args.held_in_run / "rag-reader.json").read_text(encoding="utf-8"))
        )
    if TARGET.exists():
        stray = [p.name for p in TARGET.iterdir() if p.name not in FILES]
        if stray:
            sys.exit(f"{TARGET} holds files this script did not ship ({', '.join(stray)}): move them away first")
    TARGET.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        shutil.copyfile(source / f, TARGET / f)
    if args.held_in_run is not None:
        from rag.integrity import seal
        from rag.train.run_reader import model_card

        (TARGET / "rag-reader.json").write_text(json.dumps(seal(record), indent=2) + "\n", encoding="utf-8")
        (TARGET / "README.md").write_text(model_card(record), encoding="utf-8")
    print(f"shipped {size / 2**20:.1f} MB to {TARGET}")


def with_held_in_run(record: dict, run: dict) -> dict:
    """The record of a model trained on every article, with the held-in run's margin and numbers."""
    ours = {k: v for k, v in record["settings"].items() if k != "held_in"}
    theirs = {k: v for k, v in run["settings"].items() if k != "held_in"}
    if ours != theirs:
        differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        sys.exit(f"the held-in run was trained with other settings ({', '.join(differ)}): its margin does not apply")
    if run.get("margin") is None or not run["settings"].get("held_in"):
        sys.exit("the --held-in-run folder is not a held-in run (no held-in articles, or no margin)")
    return {**record, "margin": run["margin"], "held_in_run": {"command": run["command"], "metrics": run["metrics"]}}


if __name__ == "__main__":
    main()
