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
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.errors import RagError
from rag.readers.backends import forward_inputs
from rag.readers.features import MAX_LENGTH, STRIDE, Window, label, pad, windows
from rag.train.checkpoints import (
    CHECKPOINT,
    CHECKPOINT_SECONDS,
    MODEL_DIR,
    batch_order,
    load_optimizer,
    load_rng,
    lr_at,
    progress_bar,
    read_state,
    recover_checkpoint,
    save_checkpoint,
    save_model,
)
from rag.train.data import Example

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

    def key(self) -> dict:
        return asdict(self)


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
    """Every example's windows, labelled; then each example's negatives' windows, labelled no-answer."""
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
        out += negative
    return out


def train(
    examples: Sequence[Example],
    out: Path,
    settings: TrainSettings,
    *,
    threads: int | None = None,
    progress: bool = True,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    stop_after: int | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> TrainResult:
    """Train (or resume) into `out` (claimed with `rag.outdir.claim_out`); the model folder is
    `out/model`. `stop_after` stops after that many steps in this call (tests)."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from rag.outdir import claim_out

    claim_out(out, "train")
    if threads:
        torch.set_num_threads(threads)
    source = base_folder(settings.base)
    recover_checkpoint(out)
    state = read_state(out / CHECKPOINT)
    if state is not None and state["settings"] != settings.key():
        changed = sorted(k for k, v in settings.key().items() if state["settings"].get(k) != v)
        raise RagError(
            f"{out} holds a training run with other settings ({', '.join(changed)}): "
            "resume it with the same ones, or give another --out"
        )
    start_from = out / CHECKPOINT if state is not None else Path(source)
    torch.manual_seed(settings.seed)  # before loading: the new span head's initial weights are drawn there
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True)
        model = AutoModelForQuestionAnswering.from_pretrained(str(start_from))
    except OSError as e:
        raise RagError(f"cannot load base model {settings.base!r}: {str(e).splitlines()[0]}") from None
    model.train()

    data = training_windows(tokenizer, examples, settings)
    fingerprint = data_fingerprint(data)
    if state is not None and state.get("data") not in (None, fingerprint):
        raise RagError(
            f"{out} was trained on other windows than these (the data or the retrieved no-answer passages "
            "changed): resume it with the same data and index, or give another --out"
        )
    lengths = [len(w) for w in data]
    per_epoch = math.ceil(len(data) / settings.batch_size)
    total = max(1, int(per_epoch * settings.epochs))
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
    )
    step = 0
    if state is not None:
        step = int(state["step"])
        try:
            load_optimizer(optimizer, out / CHECKPOINT)
            torch.set_rng_state(load_rng(out / CHECKPOINT))
        except Exception as e:  # noqa: BLE001 - a damaged file: say which, and the way out
            raise RagError(
                f"{out / CHECKPOINT} is damaged ({str(e).splitlines()[0][:120]}): remove that folder "
                "to start this run over (the rest of --out is kept)"
            ) from None
        say(f"resuming {out} at step {step} of {total}")
    resumed_from = step
    before_seconds = float(state.get("seconds", 0.0)) if state else 0.0  # training time of earlier calls
    before_seen = int(state.get("windows_seen", 0)) if state else 0

    bar = progress_bar(total, step, progress)
    last_save = time.monotonic()
    started = time.monotonic()
    seen = 0
    inputs = forward_inputs(model)
    log = (out / "train-log.jsonl").open("a", encoding="utf-8")
    try:
        while step < total:
            epoch, index = divmod(step, per_epoch)
            batches = batch_order(lengths, settings.batch_size, settings.seed * 1000 + epoch)
            for ids in batches[index:]:
                if step >= total:
                    break
                batch = [data[i] for i in ids]
                arrays = pad(batch, tokenizer.pad_token_id or 0)
                feeds = {k: torch.from_numpy(v) for k, v in arrays.items() if k in inputs}
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, total, settings)
                loss = model(
                    **feeds,
                    start_positions=torch.tensor([w.start for w in batch]),
                    end_positions=torch.tensor([w.end for w in batch]),
                ).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                seen += len(batch)
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", epoch=f"{step / per_epoch:.2f}")
                if step % 50 == 0 or step == total:
                    elapsed = time.monotonic() - started
                    log.write(
                        json.dumps(
                            {
                                "step": step,
                                "loss": round(loss.item(), 4),
                                "lr": lr_at(step - 1, total, settings),
                                "windows_per_s": round(seen / elapsed, 2),
                            }
                        )
                        + "\n"
                    )
                    log.flush()
                end_of_epoch = step % per_epoch == 0
                if end_of_epoch or step == total or time.monotonic() - last_save >= checkpoint_seconds:
                    save_checkpoint(
                        model,
                        optimizer,
                        out,
                        step,
                        settings,
                        fingerprint,
                        before_seconds + time.monotonic() - started,
                        before_seen + seen,
                    )
                    last_save = time.monotonic()
                if stop_after is not None and step - resumed_from >= stop_after:
                    break
            if stop_after is not None and step - resumed_from >= stop_after:
                break
    finally:
        bar.close()
        log.close()
    # The whole run's training time and throughput, over every call that trained it (not evaluation).
    seconds = before_seconds + (time.monotonic() - started if step > resumed_from else 0.0)
    seen += before_seen
    result = TrainResult(out / MODEL_DIR, step, seconds, seen / max(seconds, 1e-9), len(data), resumed_from)
    if step >= total and (step > resumed_from or not (out / MODEL_DIR).is_dir()):  # a finished run's model stays
        save_model(model, tokenizer, out / MODEL_DIR)
    return result


def data_fingerprint(data: Sequence[Window]) -> str:
    """A hash of every window's tokens and labels: a resumed run must replay the same batches."""
    import hashlib

    h = hashlib.sha256()
    for w in data:
        h.update(json.dumps([w.input_ids, w.start, w.end]).encode())
    return h.hexdigest()[:16]
