"""`rag train reader`: fine-tune an encoder with a span head on QA examples, resumably.

The recipe is transformers' run_qa.py: question + passage windows (384 tokens, stride 128),
answer characters mapped to tokens by the offsets (`rag.readers.features`), windows without
the answer labelled at [CLS]; AdamW with linear warm-up and decay; seeded. Optionally each
question also gets windows of passages rag's own retriever returns for it that do not hold the
answer, labelled no-answer, so span scores compare across passages when the reader reads five.

A short loop rather than transformers' Trainer: its checkpoints are pickles (optimizer.pt,
rng_state.pth) and rag keeps none on disk. Here a checkpoint is safetensors (weights, AdamW's
moments, the RNG) and JSON (step, settings), written to a new folder and swapped in, taken every
few minutes and at each epoch's end; a killed run resumes from the last one with the same
batches in the same order. Examples are length-grouped (megabatches sorted by length), padded
per batch.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.readers.backends import forward_inputs
from rag.readers.features import MAX_LENGTH, STRIDE, Window, label, pad, windows
from rag.train.checkpoints import CHECKPOINT, CHECKPOINT_SECONDS, MODEL_DIR, batch_order, lr_at
from rag.train.data import Example
from rag.train.loop import open_run, train_loop

__all__ = ["CHECKPOINT", "MODEL_DIR", "TrainSettings", "batch_order", "lr_at", "train"]


@dataclass
class TrainSettings:
    """What a training run depends on; a resumed run must have the same (checked)."""

    base: str = "all-MiniLM-L6-v2"
    epochs: float = 2.0
    lr: float = 1e-4
    batch_size: int = 16
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_length: int = MAX_LENGTH
    stride: int = STRIDE
    seed: int = 0
    negatives: int = 0  # no-answer passages per question from the retriever
    data: str = ""
    data_sha256: str = ""
    held_in: list[str] = field(default_factory=list)  # articles left out of training
    # A cooldown branched from a longer run: {"from_step": its checkpoint's step, "questions": where
    # the rate reaches zero} (see rag.train.loop.schedule); absent from the key of an ordinary run.
    cooldown: dict | None = None

    def key(self) -> dict:
        key = asdict(self)
        if key["cooldown"] is None:
            key.pop("cooldown")
        return key


@dataclass
class TrainResult:
    folder: Path
    steps: int
    seconds: float
    examples_per_second: float
    windows: int
    resumed_from: int = 0


def base_folder(name: str) -> str:
    """The packaged all-MiniLM-L6-v2's folder for its names; anything else as given (id or path)."""
    from rag.embedders.names import ALIASES, packaged_minilm

    if name in ALIASES and (packaged := packaged_minilm()) is not None:
        return str(packaged)
    return name


def training_windows(tokenizer, examples: Sequence[Example], settings: TrainSettings) -> list[Window]:
    """Every example's windows, labelled; then each example's negatives' windows, labelled no-answer.
    Each window's `passage` is the index of the example it belongs to."""
    out = windows(
        tokenizer,
        [e.question for e in examples],
        [e.context for e in examples],
        max_length=settings.max_length,
        stride=settings.stride,
    )
    for w in out:
        e = examples[w.passage]
        label(w, e.answer_start, e.answer)
    pairs = [(e.question, n) for e in examples for n in e.negatives]
    owners = [i for i, e in enumerate(examples) for _ in e.negatives]
    if pairs:
        negative = windows(
            tokenizer,
            [q for q, _ in pairs],
            [n for _, n in pairs],
            max_length=settings.max_length,
            stride=settings.stride,
        )
        for w in negative:
            label(w, None, None)
            w.passage = owners[w.passage]
        out += negative
    return out


def train(
    examples: Sequence[Example],
    out: Path,
    settings: TrainSettings,
    *,
    threads: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    stop_after: int | None = None,
    curve: Sequence[int] = (),
    at_point: Callable[[int, dict, object, object], None] | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> TrainResult:
    """Train (or resume) into `out` (claimed with `rag.outdir.claim_out`); the model folder is
    `out/model`. `stop_after` stops after that many steps in this call (tests).

    `curve` lists numbers of questions: at the first step by which that many questions' worth of
    windows has been trained on (`curve_steps`), `at_point(questions, clock)` runs on the model of that step (a learning
    curve, evaluated at checkpoints of this one run; see `train_loop`), given the model and tokenizer."""
    import torch

    run = open_run(out, settings, base_folder(settings.base), "AutoModelForQuestionAnswering", threads, say, device)
    tokenizer, model = run.tokenizer, run.model
    data = training_windows(tokenizer, examples, settings)
    inputs = forward_inputs(model)

    def batch_loss(ids: list[int]):
        batch = [data[i] for i in ids]
        arrays = pad(batch, tokenizer.pad_token_id or 0)
        feeds = {k: torch.from_numpy(v).to(device) for k, v in arrays.items() if k in inputs}
        starts = torch.tensor([w.start for w in batch], device=device)
        ends = torch.tensor([w.end for w in batch], device=device)
        return model(**feeds, start_positions=starts, end_positions=ends).loss, len(batch)

    points = curve_steps(len(data), len(examples), settings, curve) if at_point is not None else {}
    finish_step = None
    if settings.cooldown:
        finish_step = questions_step(len(data), len(examples), settings, settings.cooldown["questions"])

    def at_milestone(step: int, clock: dict) -> None:
        at_point(points[step], {**clock, "step": step}, model, tokenizer)

    result = train_loop(
        run,
        settings,
        lengths=[len(w) for w in data],
        fingerprint=data_fingerprint(data),
        batch_loss=batch_loss,
        mismatch="windows than these (the data or the retrieved no-answer passages changed)",
        rate="windows_per_s",
        progress=progress,
        checkpoint_seconds=checkpoint_seconds,
        stop_after=stop_after,
        milestones=sorted(points),
        at_milestone=at_milestone if points else None,
        finish_step=finish_step,
        say=say,
    )
    return TrainResult(
        out / MODEL_DIR,
        result.steps,
        result.seconds,
        result.seen / max(result.seconds, 1e-9),
        len(data),
        result.resumed_from,
    )


def curve_steps(windows: int, questions: int, settings: TrainSettings, points: Sequence[int]) -> dict[int, int]:
    """{step: N}: the first step by which N questions' worth of windows has been trained on
    (windows seen x questions / windows: a question brings its answer's window and its no-answer
    passages', which the shuffle spreads over the epoch). Points beyond the run are dropped; of
    points that fall on the same step, the largest names it."""
    import math

    per_epoch = math.ceil(windows / settings.batch_size)
    total = max(1, int(per_epoch * settings.epochs))
    out: dict[int, int] = {}
    for n in sorted(set(p for p in points if p > 0)):
        step = questions_step(windows, questions, settings, n)
        if step <= total:
            out[step] = n
    return out


def questions_step(windows: int, questions: int, settings: TrainSettings, n: int) -> int:
    """The first step by which `n` questions' worth of windows has been trained on."""
    import math

    return max(1, math.ceil(n * windows / max(questions, 1) / settings.batch_size))


def data_fingerprint(data: Sequence[Window]) -> str:
    """A hash of every window's tokens and labels: a resumed run must replay the same batches."""
    import hashlib

    h = hashlib.sha256()
    for w in data:
        h.update(json.dumps([w.input_ids, w.start, w.end]).encode())
    return h.hexdigest()[:16]
