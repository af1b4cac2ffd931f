"""The whole of `rag train embedder`: the reader's data and held-in split, hard negatives mined
with rag's own retrievers, training, held-in evaluation against the base model, and a
sentence-transformers folder with its card.

Held-in evaluation is dense retrieval of the held-in questions over a fixed corpus: every
paragraph of the held-in articles plus a seeded sample of `DISTRACTORS` paragraphs of the
others, each paragraph one passage, embedded by the base model and by the tuned one alike;
recall@k counts a question found when its own paragraph is in the top k. (The whole training
file would take half an hour a model to embed on two cores; part A and SciFact, evaluated with
`rag bench --retrieval-only --embedder FOLDER`, are where a default is decided.)
"""

from __future__ import annotations

import json
import platform
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rag.integrity import seal
from rag.train.checkpoints import MODEL_DIR
from rag.train.data import Example
from rag.train.embedder import EmbedSettings, train
from rag.train.run_reader import repo_relative, split_for_training

MARKER = "rag-embedder.json"
DISTRACTORS = 3000
KS = (1, 5, 10)


@dataclass
class EmbedderRun:
    folder: Path
    finished: bool
    metrics: dict
    train_seconds: float
    questions_per_second: float


def held_in_recall(
    model: str, held: Sequence[Example], others: Sequence[Example], threads: int | None = None, seed: int = 0
) -> dict:
    """Recall@1/5/10 of `model` (a sentence-transformers name or folder) retrieving each held-in
    question's paragraph among the held-in paragraphs and `DISTRACTORS` sampled others."""
    import numpy as np

    from rag.embedders.st import TorchEmbedder

    paragraphs = {e.doc: e.context for e in held}
    pool = sorted({e.doc: e.context for e in others}.items())
    random.Random(seed).shuffle(pool)
    paragraphs.update(dict(pool[:DISTRACTORS]))
    docs = sorted(paragraphs)
    embedder = TorchEmbedder(model)
    if threads:
        import torch

        torch.set_num_threads(threads)
    passages = embedder.encode([paragraphs[d] for d in docs])
    questions = embedder.encode([q.question for q in held])
    top = np.argsort(-(questions @ passages.T), axis=1)[:, : max(KS)]
    where = {d: i for i, d in enumerate(docs)}
    gold = np.array([where[q.doc] for q in held])
    out = {f"recall@{k}": round(float((top[:, :k] == gold[:, None]).any(axis=1).mean()), 4) for k in KS}
    return {**out, "questions": len(held), "passages": len(docs)}


def train_embedder(
    data: Path,
    out: Path,
    settings: EmbedSettings,
    *,
    held_in: int = 5,
    threads: int | None = None,
    progress: bool = True,
    command: str = "",
    stop_after: int | None = None,
    checkpoint_seconds: float | None = None,
    curve: Sequence[int] = (),
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> EmbedderRun:
    """Mine, train (or resume), evaluate held-in against the base and write the card. `curve`:
    numbers of questions at which the live model is kept (out/curve/<N>q, a sentence-transformers
    folder) and its held-in recall recorded in out/curve.jsonl."""
    from rag.outdir import claim_out
    from rag.train.reader import base_folder
    from rag.train.run_reranker import run_groups

    data = Path(data)
    train_set, held = split_for_training(data, settings, held_in, say)
    claim_out(out, "train")
    groups = run_groups(data, out, train_set, settings, progress, say)
    say(f"{len(groups)} training questions, each with its passage and {settings.group - 1} hard negatives")
    at_point = curve_point(out, settings, held, train_set, threads, say) if curve and held else None
    result = train(
        groups,
        out,
        settings,
        threads=threads,
        progress=progress,
        stop_after=stop_after,
        curve=curve,
        at_point=at_point,
        say=say,
        **({} if checkpoint_seconds is None else {"checkpoint_seconds": checkpoint_seconds}),
    )
    folder = out / MODEL_DIR
    finished = folder.is_dir() and stop_after is None
    if not finished:
        return EmbedderRun(folder, False, {}, result.seconds, result.questions_per_second)
    metrics: dict = {
        "training": {
            "groups": result.groups,
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "questions_per_second": round(result.questions_per_second, 2),
        }
    }
    if held:
        metrics["held_in_base"] = held_in_recall(base_folder(settings.base), held, train_set, threads)
        metrics["held_in"] = held_in_recall(str(folder), held, train_set, threads)
        say(
            f"held-in dense retrieval: base {json.dumps(metrics['held_in_base'])}, tuned {json.dumps(metrics['held_in'])}"
        )
    write_card(folder, settings, metrics, command, len(groups), len(held))
    return EmbedderRun(folder, True, metrics, result.seconds, result.questions_per_second)


def curve_point(
    out: Path, settings: EmbedSettings, held: Sequence[Example], others: Sequence[Example], threads, say
) -> Callable:
    """The learning curve's evaluation at a checkpoint: the live model kept as out/curve/<N>q (a
    sentence-transformers folder `--embedder` loads) and its held-in recall beside the base
    model's, one line in out/curve.jsonl (a recorded point is not redone)."""
    import time

    from rag.train.checkpoints import save_model
    from rag.train.embedder import as_sentence_transformer
    from rag.train.reader import base_folder
    from rag.train.run_reader import record_point, recorded_points

    base: dict = {}

    def at_point(n: int, clock: dict, model, tokenizer) -> None:
        if n in recorded_points(out):
            return
        say(f"learning curve: {n} questions seen (step {clock['step']}): held-in dense retrieval")
        started = time.monotonic()
        keep = out / "curve" / f"{n}q"
        keep.parent.mkdir(exist_ok=True)
        save_model(model, tokenizer, keep)
        as_sentence_transformer(Path(base_folder(settings.base)), keep)
        if not base:
            base.update(held_in_recall(base_folder(settings.base), held, others, threads))
        tuned = held_in_recall(str(keep), held, others, threads)
        model.train()
        record = {
            "questions": n,
            "step": clock["step"],
            "train_seconds": round(clock["seconds"], 2),
            "train_cpu_seconds": round(clock["cpu_seconds"], 2),
            "tuned": tuned,
            "base": base,
            "eval_seconds": round(time.monotonic() - started, 1),
            "model": str(keep.relative_to(out)),
        }
        record_point(out, record, say)

    return at_point


def write_card(folder: Path, settings: EmbedSettings, metrics: dict, command: str, trained: int, held: int) -> None:
    """rag-embedder.json (what rag trained, how, and the held-in figures) and README.md."""
    from rag.cpu import this_cpu

    record = {
        "format": "rag-embedder",
        "settings": {**settings.key(), "data": repo_relative(settings.data)},
        "metrics": metrics,
        "command": command,
        "cpu": this_cpu().model,
        "python": platform.python_version(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "questions_trained": trained,
        "questions_held_in": held,
    }
    (folder / MARKER).write_text(json.dumps(seal(record), indent=2) + "\n", encoding="utf-8")
    s, m = record["settings"], metrics
    lines = [
        "# A sentence-transformers bi-encoder tuned by rag",
        "",
        f"{s['base']} fine-tuned by `rag train embedder` on question -> passage pairs with hard negatives mined by",
        "rag's hybrid and dense retrievers; multiple-negatives ranking loss, mean pooling, L2-normalised.",
        "Load it with `rag index FOLDER --embedder THIS_FOLDER` (a new index; an existing one keeps its embedder).",
        "",
        "## Base model and data",
        f"- Base: {s['base']}. Data: {Path(s['data']).name} (sha256 {s['data_sha256'][:16]}…).",
        f"- {trained} questions trained on; held-in articles (never trained on): {', '.join(s['held_in']) or 'none'}.",
        "",
        "## How it was trained",
        f"- Command: `{command}`",
        f"- Seed {s['seed']}; {s['epochs']} epochs; lr {s['lr']}; batches of {s['batch_size']} questions with "
        f"{s['group'] - 1} hard negative(s) each; texts cut at {s['max_length']} tokens.",
        f"- CPU: {record['cpu']}; {m['training']['seconds']} s, {m['training']['questions_per_second']} questions/s.",
        "",
        "## Metrics",
    ]
    if "held_in" in m:
        base, tuned = m["held_in_base"], m["held_in"]
        lines.append(
            f"Dense retrieval of the {tuned['questions']} held-in questions among {tuned['passages']} paragraphs "
            "(the held-in articles' and a seeded sample of others):"
        )
        for k in KS:
            lines.append(f"- recall@{k}: base {base[f'recall@{k}']}, tuned {tuned[f'recall@{k}']}")
    else:
        lines.append("No held-in articles (`--held-in 0`): no held-in numbers.")
    (folder / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
