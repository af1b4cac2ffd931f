"""benchmarks/families.py --answers: the three families' table from per-question answers, each
mode read from the files it names (all questions, or rag bench's sample), CPU-seconds measured
where a run trained on a CPU and estimated from the rate where it trained on a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_answers(folder: Path, name: str, f1s: list[float]) -> None:
    rows = [{"id": f"q{i}", "answer": "x", "f1": f, "em": float(f == 1.0)} for i, f in enumerate(f1s)]
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_run(folder: Path, device: str, cpu_seconds: float) -> Path:
    folder.mkdir()
    point = {"questions": 2000, "train_seconds": 10.0, "train_cpu_seconds": cpu_seconds, "device": device}
    (folder / "curve.jsonl").write_text(json.dumps(point) + "\n", encoding="utf-8")
    return folder


def test_answers_table_reads_gold_in_full_and_hybrid_from_its_sample(tmp_path):
    answers = tmp_path / "answers"
    answers.mkdir()
    for family, gold, hybrid in (
        ("reader", [1.0, 1.0, 0.5, 1.0], [1.0, 0.0]),
        ("encoder-decoder", [0.0, 1.0, 0.5, 0.0], [0.0, 0.0]),
        ("decoder-only", [0.0, 0.0, 0.0, 0.0], [1.0, 1.0]),
    ):
        write_answers(answers, f"{family}-2000q-gold.jsonl", gold)
        write_answers(answers, f"{family}-2000q-hybrid-sample2.jsonl", hybrid)
        # a full hybrid file that must not be read when the sample is asked for
        write_answers(answers, f"{family}-2000q-hybrid.jsonl", [0.25] * 4)
    reader = write_run(tmp_path / "reader", "cpu", 1234.0)
    encdec = write_run(tmp_path / "encdec", "cuda", 5.0)
    deconly = write_run(tmp_path / "deconly", "cpu", 77.0)
    out = tmp_path / "out"
    part_a = tmp_path / "part-a.json"
    part_a.write_text("{}", encoding="utf-8")
    command = [sys.executable, str(ROOT / "benchmarks" / "families.py"), "--answers", str(answers)]
    command += ["--reader", str(reader), "--encdec", str(encdec), "--deconly", str(deconly)]
    command += ["--sizes", "2000", "--limit", "hybrid=2", "--out", str(out), "--data", str(part_a)]
    command += ["--rates", "reader=1,encoder-decoder=4,decoder-only=1"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    results = json.loads((out / "families.json").read_text(encoding="utf-8"))["sizes"]["2000"]
    gold, hybrid = results["gold"]["families"], results["hybrid"]["families"]
    assert gold["reader"] == {"f1": 0.875, "em": 0.75, "questions": 4}
    assert hybrid["decoder-only"] == {"f1": 1.0, "em": 1.0, "questions": 2}
    assert hybrid["reader"]["f1"] == 0.5
    # measured on a CPU: the curve point's own; trained on a GPU: 2 cores at the rate
    assert results["cpu_seconds"] == {"reader": 1234.0, "encoder-decoder": 1000.0, "decoder-only": 77.0}
    assert results["gpu_train_seconds"] == {"encoder-decoder": 10.0}
    pairs = {(p["a"], p["b"]): p for p in results["gold"]["paired"]}
    assert pairs[("reader", "encoder-decoder")]["questions"] == 4
    assert "| 2,000 | reader | 1,234 |" in done.stdout
    assert (out / "families.png").stat().st_size > 0


def test_answers_limit_naming_an_unknown_mode_is_refused(tmp_path):
    runs = [write_run(tmp_path / name, "cpu", 1.0) for name in ("r", "e", "d")]
    part_a = tmp_path / "part-a.json"
    part_a.write_text("{}", encoding="utf-8")
    command = [sys.executable, str(ROOT / "benchmarks" / "families.py"), "--answers", str(tmp_path)]
    command += ["--reader", str(runs[0]), "--encdec", str(runs[1]), "--deconly", str(runs[2])]
    command += ["--sizes", "2000", "--limit", "retrieved=5", "--out", str(tmp_path / "o"), "--data", str(part_a)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0
    assert "--limit retrieved=5: no mode retrieved" in done.stderr
