"""The training loop every `rag train` command runs: resume or start, length-grouped batches,
AdamW with warm-up and linear decay, clipped gradients, a log line every few steps, checkpoints
every few minutes and at each epoch's end, and the finished model saved once.

What differs between a reader and a reranker is passed in: the model class, each example's
length (for grouping), a fingerprint of the data (a resumed run must replay the same batches)
and the loss of one batch. Deterministic in the settings' seed: the model's new head is drawn
right after seeding, and each epoch's batch order is seeded by (seed, epoch).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError
from rag.models.logs import quiet_transformers
from rag.train.checkpoints import (
    CHECKPOINT,
    CHECKPOINT_SECONDS,
    MODEL_DIR,
    batch_order,
    checkpoint_state,
    load_optimizer,
    load_rng,
    lr_at,
    progress_bar,
    recover_checkpoint,
    save_checkpoint,
    save_model,
)

GPU_CHECKPOINT_SECONDS = 60.0


@dataclass
class Run:
    """A run opened in `out`: the model (from the base or the last checkpoint) and its state."""

    out: Path
    model: object
    tokenizer: object
    state: dict | None
    device: str = "cpu"
    precision: str = "fp32"  # "bf16": forward passes under bf16 autocast (weights stay float32)


@dataclass
class LoopResult:
    steps: int
    seconds: float  # training time over every call that trained this run (not evaluation)
    seen: int  # examples (windows, pairs) over those calls
    resumed_from: int


def open_run(
    out: Path,
    settings,
    source: str,
    model_class: str | type,
    threads: int | None = None,
    say: Callable[[str], None] = lambda line: None,
    device: str = "cpu",
    **model_args,
) -> Run:
    """Claim `out` (a new or empty folder, or one `rag train` made: anything else is refused
    untouched, since a run replaces its own checkpoint and model folders there), check what it
    holds against `settings`, seed, and load the tokenizer and the model."""
    import torch
    import transformers
    from transformers import AutoTokenizer

    from rag.outdir import claim_out

    claim_out(out, "train")
    if threads:
        torch.set_num_threads(threads)
    recover_checkpoint(out)
    state = checkpoint_state(out)
    if state is not None and state["settings"] != settings.key() and not _branch_point(state, settings):
        changed = sorted(k for k, v in settings.key().items() if state["settings"].get(k) != v)
        raise RagError(
            f"{out} holds a training run with other settings ({', '.join(changed)}): "
            "resume it with the same ones, or give another --out"
        )
    start_from = out / CHECKPOINT if state is not None else Path(source)
    torch.manual_seed(settings.seed)  # before loading: the new head's initial weights are drawn there
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True)
    except OSError as e:
        raise RagError(f"cannot load base model {settings.base!r}: {str(e).splitlines()[0]}") from None
    try:
        with quiet_transformers():
            cls = getattr(transformers, model_class) if isinstance(model_class, str) else model_class
            model, info = cls.from_pretrained(str(start_from), output_loading_info=True, **model_args)
    except Exception as e:  # noqa: BLE001 - safetensors, JSON and OS errors alike: name what is damaged
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        if state is None:
            raise RagError(f"cannot load base model {settings.base!r}: {first}") from None
        raise RagError(
            f"{start_from} is damaged ({first}): the run cannot resume from it; move that folder away "
            "to start this run over (the rest of --out is kept)"
        ) from None
    new = sorted({k.rsplit(".", 1)[0] for k in info.get("missing_keys", [])})
    if new and state is None:
        say(f"new weights, initialised at random (seed {settings.seed}): {', '.join(new)}")
    model.to(device)
    model.train()
    from rag.train.device import resolve_precision

    precision, why = resolve_precision(device)
    say(f"training in {'bf16 autocast (weights float32)' if precision == 'bf16' else 'float32'}: {why}")
    return Run(out, model, tokenizer, state, device, precision)


def param_groups(model, weight_decay: float, lr_scales: dict[str, float]) -> list[dict]:
    """AdamW's groups: weight decay except on biases and LayerNorms; parameters named in
    `lr_scales` (new weights) in groups of their own whose rate is scaled by it."""
    groups: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        decays = not (name.endswith("bias") or "LayerNorm" in name)
        groups.setdefault((decays, lr_scales.get(name, 1.0)), []).append(p)
    out = []
    for (decays, scale), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1])):
        group = {"params": params, "weight_decay": weight_decay if decays else 0.0}
        if scale != 1.0:
            group["lr_scale"] = scale
        out.append(group)
    return out


def _branch_point(state: dict, settings) -> bool:
    """Whether `state` is the checkpoint a cooldown branched from: the main run's settings, at the
    very step the branch's settings name."""
    key = dict(settings.key())
    cooldown = key.pop("cooldown", None)
    return bool(cooldown) and state["settings"] == key and state["step"] == cooldown.get("from_step")


def questions_trained(settings, questions: int) -> int:
    """The questions a finished run trained on, as its card and `rag bench` name it: all
    `questions` for an epoch or more, a share of them for fewer, and for a cooldown the
    questions' worth it finished at (a run branched at 16,000 and finished at 18,500 of 86,786
    trained on 18,500, not 86,786)."""
    cooldown = getattr(settings, "cooldown", None)
    if cooldown:
        return min(questions, int(cooldown["questions"]))
    return min(questions, round(questions * settings.epochs))


def schedule(settings, per_epoch: int, finish_step: int | None = None) -> tuple[int, Callable[[int], float]]:
    """(total steps, the learning rate at each step). Normally warm-up, then linear decay to zero at
    the end of the settings' epochs. A cooldown (`settings.cooldown`, WSD-style: Hägele et al. 2024)
    continues a long run's checkpoint from its step with the rate decaying linearly from its value
    there to zero at `finish_step`, so a run can be finished early without training it again."""
    total = max(1, int(per_epoch * settings.epochs))
    cooldown = getattr(settings, "cooldown", None)
    if not cooldown:
        return total, lambda step: lr_at(step, total, settings)
    start = int(cooldown["from_step"])
    if finish_step is None or not start < finish_step <= total:
        raise RagError(
            f"--finish-at {cooldown['questions']}: the run's checkpoint is at step {start} and its epochs end at "
            f"step {total}; finish at a step between them (that point is step {finish_step})"
        )
    top = lr_at(start, total, settings)
    return finish_step, lambda step: top * max(0.0, (finish_step - step) / (finish_step - start))


def curve_steps(curve, examples: int, batch_size: int, epochs: float) -> dict[int, int]:
    """step -> number of questions for each learning-curve point a run of `examples` groups (one
    question each) in batches of `batch_size` over `epochs` reaches; points past its end are dropped."""
    import math

    total = max(1, int(math.ceil(examples / batch_size) * epochs))
    points = {}
    for n in sorted(set(curve)):
        if (step := max(1, math.ceil(n / batch_size))) <= total:
            points[step] = n
    return points


def train_loop(
    run: Run,
    settings,
    *,
    lengths: Sequence[int],
    fingerprint: str,
    batch_loss: Callable[[list[int]], tuple[object, int]],
    mismatch: str,
    rate: str,
    log_every: int = 50,
    progress: bool = True,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    stop_after: int | None = None,
    milestones: Sequence[int] = (),
    at_milestone: Callable[[int, dict], None] | None = None,
    finish_step: int | None = None,
    lr_scales: dict[str, float] | None = None,
    say: Callable[[str], None] = print,
) -> LoopResult:
    """Train `run.model` to the settings' epochs (or `stop_after` more steps); `batch_loss(ids)` gives
    one batch's loss and how many examples it held. `mismatch` names what changed when the data's
    fingerprint differs from the checkpoint's; `rate` is the log's throughput key.

    At each step in `milestones` a checkpoint is saved first, then `at_milestone(step, clock)` runs
    (a learning curve's evaluation; `clock` holds the training seconds, CPU seconds and examples
    seen so far). A run killed during that evaluation resumes at that very checkpoint and runs it
    again; `at_milestone` itself skips steps it has already recorded."""
    import torch

    from rag.train.device import autocast

    out, model, state = run.out, run.model, run.state
    if state is not None and state.get("data") not in (None, fingerprint):
        raise RagError(
            f"{out} was trained on other {mismatch}: resume it with the same data and index, or give another --out"
        )
    per_epoch = math.ceil(len(lengths) / settings.batch_size)
    total, rate_at = schedule(settings, per_epoch, finish_step)
    optimizer = torch.optim.AdamW(param_groups(model, settings.weight_decay, lr_scales or {}), lr=settings.lr)
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
    before_seconds = float(state.get("seconds", 0.0)) if state else 0.0
    before_seen = int(state.get("windows_seen", 0)) if state else 0
    before_cpu = float(state.get("cpu_seconds", 0.0)) if state else 0.0
    points = set(milestones)
    if at_milestone is not None and step in points and state is not None:
        # killed during this milestone's evaluation: the checkpoint is that step's model
        at_milestone(step, {"seconds": before_seconds, "cpu_seconds": before_cpu, "seen": before_seen})
        model.train()

    if run.device.startswith("cuda"):
        # A GPU runs a CPU's hour in a minute, often on a machine lent for minutes: keep at most a
        # minute's work at risk, as the CPU keeps five (a checkpoint takes about a second there).
        checkpoint_seconds = min(checkpoint_seconds, GPU_CHECKPOINT_SECONDS)
    bar = progress_bar(total, step, progress)
    last_save = time.monotonic()
    started = time.monotonic()
    cpu_started = time.process_time()
    paused = paused_cpu = 0.0  # time spent in milestone evaluations: not training
    seen = 0
    log = (out / "train-log.jsonl").open("a", encoding="utf-8")
    try:
        while step < total and not (stop_after is not None and step - resumed_from >= stop_after):
            epoch, index = divmod(step, per_epoch)
            batches = batch_order(lengths, settings.batch_size, settings.seed * 1000 + epoch)
            for ids in batches[index:]:
                if step >= total:
                    break
                for group in optimizer.param_groups:
                    group["lr"] = rate_at(step) * group.get("lr_scale", 1.0)
                with autocast(run.device, run.precision):
                    loss, count = batch_loss(ids)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                seen += count
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", epoch=f"{step / per_epoch:.2f}")
                if step % log_every == 0 or step == total:
                    record = {"step": step, "loss": round(loss.item(), 4), "lr": rate_at(step - 1)}
                    record["precision"] = run.precision
                    record[rate] = round(seen / (time.monotonic() - started), 2)
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                end_of_epoch = step % per_epoch == 0
                milestone = at_milestone is not None and step in points
                if milestone or end_of_epoch or step == total or time.monotonic() - last_save >= checkpoint_seconds:
                    clock = {
                        "seconds": before_seconds + time.monotonic() - started - paused,
                        "cpu_seconds": before_cpu + time.process_time() - cpu_started - paused_cpu,
                        "seen": before_seen + seen,
                    }
                    save_checkpoint(
                        model,
                        optimizer,
                        out,
                        step,
                        settings,
                        fingerprint,
                        clock["seconds"],
                        clock["seen"],
                        clock["cpu_seconds"],
                    )
                    last_save = time.monotonic()
                    if milestone:
                        wall, cpu = time.monotonic(), time.process_time()
                        at_milestone(step, clock)
                        model.train()
                        paused += time.monotonic() - wall
                        paused_cpu += time.process_time() - cpu
                        last_save = time.monotonic()
                if stop_after is not None and step - resumed_from >= stop_after:
                    break
    finally:
        bar.close()
        log.close()
    seconds = before_seconds + (time.monotonic() - started - paused if step > resumed_from else 0.0)
    if step >= total and (step > resumed_from or not (out / MODEL_DIR).is_dir()):  # a finished run's model stays
        save_model(model, run.tokenizer, out / MODEL_DIR)
    return LoopResult(step, seconds, seen + before_seen, resumed_from)
