"""Give every model kept at a point of a `rag train generator` run's learning curve its record and
card (rag-generator.json, README.md), so `rag bench -g RUN/curve/NNq` loads and labels it.

    .venv/bin/python benchmarks/mark_generator_curve.py RUN

Runs from this version on write them as they keep each point; this marks points kept before.
The settings are the run's own (its checkpoint's state.json); points already marked are left.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    run = Path(sys.argv[1])
    from rag.generators.minilm import MARKER
    from rag.train.checkpoints import checkpoint_state
    from rag.train.generator import GenSettings
    from rag.train.run_generator import CURVE, mark_curve_model

    state = checkpoint_state(run)
    if state is None:
        sys.exit(f"{run}: no checkpoint there: give a `rag train generator` run's --out")
    settings = GenSettings(**state["settings"])
    family = settings.family
    command = f"rag train generator --family {family} --out {run.name} (curve point)"
    for line in (run / CURVE).read_text(encoding="utf-8").splitlines():
        try:
            point = json.loads(line)
        except ValueError:
            continue
        folder = run / point["model"]
        if (folder / MARKER).exists():
            print(f"{folder}: already marked")
            continue
        mark_curve_model(run, settings, point, command, point.get("held_in_questions", 0))
        print(f"{folder}: marked ({point['questions']} questions, gold F1 {point['gold_f1']})")


if __name__ == "__main__":
    main()
