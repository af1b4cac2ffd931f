"""A trained reader's record (rag-reader.json: how rag reads it) and its model card (README.md)."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from rag.integrity import seal
from rag.readers.base import MARKER
from rag.train.reader import TrainSettings

REPO = Path(__file__).resolve().parents[2]


def repo_relative(path: str) -> str:
    """`path` relative to the project's root (../shared/datasets/... for the shared data), so a
    model's record names no absolute path of the machine it was trained on."""
    import os

    return os.path.relpath(path, REPO) if path else path


def write_card(
    folder: Path, settings: TrainSettings, metrics: dict, margin: float, command: str, trained: int, held: int
) -> None:
    """rag-reader.json (how rag reads the model) and README.md (the model card)."""
    from rag.cpu import this_cpu

    cpu = this_cpu()
    record = {
        "format": "rag-reader",
        "margin": margin if margin != float("-inf") else None,
        "max_answer_tokens": 30,
        "max_length": settings.max_length,
        "stride": settings.stride,
        "settings": {**settings.key(), "data": repo_relative(settings.data)},
        "metrics": metrics,
        "command": command,
        "cpu": cpu.model,
        "python": platform.python_version(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "questions_trained": trained,
        "questions_held_in": held,
    }
    (folder / MARKER).write_text(json.dumps(seal(record), indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(model_card(record), encoding="utf-8")


def model_card(record: dict) -> str:
    s = record["settings"]
    m = record["metrics"]
    held = m.get("held_in")
    lines = [
        "# minilm-reader: an encoder-only extractive QA reader, trained by rag",
        "",
        "all-MiniLM-L6-v2 (6 layers, 384 hidden, 22.7M parameters) with a span head (start/end logits),",
        f"fine-tuned by `rag train reader` on {trained_on(m)}. It answers by pointing at a span of a passage,",
        'and says "Not in the documents." when no span beats the no-answer score by its margin.',
        "",
        "## Base model and data",
        f"- Base: {s['base']} (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0).",
        f"- Data: {Path(s['data']).name} (sha256 {s['data_sha256'][:16]}…): SQuAD v1.1 (Rajpurkar et al., 2016), CC BY-SA 4.0.",
        f"- {record['questions_trained']} questions trained on; held-in articles (never trained on): "
        f"{', '.join(s['held_in']) or 'none (every article was trained on)'}.",
        f"- No-answer passages per question from rag's hybrid retriever: {s['negatives']}.",
        "",
        "## How it was trained",
        f"- Command: `{record['command']}`",
        f"- Seed {s['seed']}; {s['epochs']} epochs; lr {s['lr']} (AdamW, weight decay {s['weight_decay']}, "
        f"warm-up {s['warmup']:.0%}, linear decay); batches of {s['batch_size']}, length-grouped, dynamically padded;",
        f"  windows of {s['max_length']} tokens, stride {s['stride']}.",
        *trained_on_lines(record),
        *curve_point_lines(record, f"questions' worth of windows (step {m.get('training', {}).get('steps', '?')})"),
        *cooldown_lines(s, m),
        "",
        "## Metrics",
    ]
    run = record.get("held_in_run")
    if held:
        lines += held_in_lines(m)
    elif run:
        lines += [
            "Trained on every article, so it has no held-in numbers of its own, and its numbers on SQuAD part A",
            "mean nothing. Its hyper-parameters, and its no-answer margin, come from the held-in run with the same",
            f"settings (`{run['command']}`), whose numbers follow: read them as this model's expected quality.",
            "",
            *held_in_lines(run["metrics"]),
        ]
    else:
        lines += [
            "Trained on every article: it has no held-in numbers of its own. Its quality is that of the",
            "held-in run with the same settings (BENCHMARKS.md); its numbers on SQuAD part A mean nothing.",
        ]
    lines += ["", "## Licence", "Apache-2.0 (weights, as the base model); trained on CC BY-SA 4.0 data.", ""]
    return "\n".join(lines)


def trained_on(m: dict) -> str:
    device = str(m.get("training", {}).get("device", "cpu"))
    return f"a GPU ({device.removeprefix('cuda ').strip('()')})" if device.startswith("cuda") else "two CPU cores"


def trained_on_lines(record: dict) -> list[str]:
    """The card's line on what trained it: this CPU, or a GPU (then the CPU is where it was evaluated)."""
    training = record["metrics"].get("training", {})
    speed = f"{training.get('seconds', '?')} s, {training.get('windows_per_second', '?')} windows/s"
    if str(training.get("device", "cpu")).startswith("cuda"):
        lines = [
            f"- Trained on {training['device']} ({speed}, {'float32' if training.get('precision') == 'fp32' else 'bf16 autocast'}); evaluated on CPU: {record['cpu']}."
        ]
        return lines + ([f"- {training['note']}."] if training.get("note") else [])
    autocast = ", bf16 autocast" if training.get("precision") == "bf16" else ""
    return [f"- CPU: {record['cpu']}; {speed}{autocast}."]


def curve_point_lines(record: dict, counted: str) -> list[str]:
    """The card's line for a model taken at a learning-curve point of a longer run (the reader's and
    the generators' cards); `counted` says what the number of questions counts."""
    if not record["metrics"].get("training", {}).get("curve_point"):
        return []
    return [
        f"- A learning-curve point: the model after {record['questions_trained']} {counted} of a run planned for "
        f"{record['settings']['epochs']} epoch(s), taken at that step's learning rate (not decayed to zero)."
    ]


def cooldown_lines(s: dict, m: dict) -> list[str]:
    """The card's lines for a run finished early by a cooldown."""
    cooldown = s.get("cooldown")
    if not cooldown:
        return []
    return [
        f"- Finished early (a cooldown): continued from step {cooldown['from_step']} of a run with these settings",
        f"  (`--from-run`), the learning rate decaying linearly from its value there to 0 at {cooldown['questions']}",
        f"  questions' worth of windows (step {m.get('training', {}).get('steps', '?')}); times count both runs.",
    ]


def held_in_lines(m: dict) -> list[str]:
    """The card's lines for one run's held-in metrics (fp32, and int8 where measured)."""
    held = m["held_in"]
    shipped = m.get("held_in_int8") or held
    runtime = "int8 ONNX, as shipped" if "held_in_int8" in m else "PyTorch fp32"
    lines = [
        f"On the {held['questions']} questions of the held-in articles (official SQuAD v1.1 F1/EM), PyTorch fp32:",
        f"- gold paragraph: F1 {held['gold_f1']}, EM {held['gold_em']}",
        f"- 5 retrieved passages (hybrid), best span always given: F1 {held['retrieved_f1']}, EM {held['retrieved_em']}",
    ]
    if "held_in_int8" in m:
        lines.append(f"- int8 ONNX: gold F1 {shipped['gold_f1']}, retrieved F1 {shipped['retrieved_f1']}")
    lines.append(
        f'- "Not in the documents." ({runtime}, margin {shipped.get("margin")}, chosen to decline at most 10% of '
        f"readings whose passages hold the answer): declines {shipped.get('abstain_answer_in_passages')} of those "
        f"and {shipped.get('abstain_answer_in_no_passage')} of readings whose passages do not hold it; "
        f"retrieved F1 counting declines as wrong: {shipped.get('retrieved_f1_abstaining')}"
    )
    return lines
