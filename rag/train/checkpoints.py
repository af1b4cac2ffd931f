"""The training plumbing every `rag train` command shares: length-grouped batches, the learning
rate schedule, progress, and checkpoints that are safetensors and JSON (never pickles).

A checkpoint is the model's weights, AdamW's moments and the RNG (safetensors) with the step and
settings (JSON), written to a new folder and swapped in, so a kill leaves the old one or the new
one; `recover_checkpoint` puts back whichever a kill between the two renames left aside.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

from rag.errors import RagError
from rag.integrity import seal, seal_ok

CHECKPOINT = "checkpoint"
STATE = "state.json"
MODEL_DIR = "model"
GROUPS = "groups.json"  # a run's mined training groups (rag.train.mined)
CHECKPOINT_SECONDS = 300.0
MEGABATCH = 50  # batches per length-sorted group (as transformers' group_by_length)


def batch_order(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Length-grouped batches for one epoch: shuffle, sort each megabatch by length, cut, shuffle
    the batches. Deterministic in `seed`, so a resumed epoch replays the same batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    size = batch_size * MEGABATCH
    batches = []
    for i in range(0, len(order), size):
        group = sorted(order[i : i + size], key=lambda j: -lengths[j])
        batches += [group[k : k + batch_size] for k in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


def lr_at(step: int, total: int, settings) -> float:
    """Linear warm-up over the settings' share of `total` steps, then linear decay to 0 at `total`."""
    warm = max(1, int(total * settings.warmup))
    if step < warm:
        return settings.lr * (step + 1) / warm
    return settings.lr * max(0.0, (total - step) / max(1, total - warm))


def progress_bar(total: int, done: int, enabled: bool, desc: str = "training"):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="step", desc=desc, disable=not enabled, dynamic_ncols=True)


# --- checkpoints: safetensors and JSON, swapped in whole -------------------------------------------


def recover_checkpoint(out: Path) -> None:
    """A kill between the two renames of `_save_checkpoint` leaves no checkpoint folder but the new
    one (complete once its state.json is written, which is last) or the old one: put it back."""
    if (out / CHECKPOINT).exists():
        return
    for candidate in (out / f".{CHECKPOINT}.tmp", out / f".{CHECKPOINT}.old"):
        if read_state(candidate) is not None:
            os.replace(candidate, out / CHECKPOINT)
            return


def read_state(folder: Path) -> dict | None:
    """A checkpoint folder's state, or None where it has none or a damaged one (see `checkpoint_state`)."""
    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if _valid_state(state) else None


def _valid_state(state) -> bool:
    return (
        isinstance(state, dict)
        and isinstance(state.get("step"), int)
        and not isinstance(state.get("step"), bool)
        and state["step"] >= 0
        and isinstance(state.get("settings"), dict)
    )


def checkpoint_state(out: Path) -> dict | None:
    """The state of `out`'s checkpoint; None where the run has none yet. A checkpoint folder whose
    state.json is missing or damaged is an error naming it: starting over would overwrite hours of
    progress with step 0, so the user decides."""
    folder = out / CHECKPOINT
    if not folder.exists():
        return None
    state, path, problem = _checked_state(folder)
    if state is not None:
        return state
    raise RagError(
        f"{path} {problem}: the run's progress cannot be read, so it is not resumed or overwritten; "
        f"move {folder} away to start this run over (the rest of --out is kept)"
    )


def _checked_state(folder: Path) -> tuple[dict | None, Path, str]:
    """(state, None, None) for a checkpoint folder whose state and files are intact; else (None, the
    file at fault, what is wrong with it)."""
    path = folder / STATE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, path, "is missing"
    except (OSError, ValueError) as e:
        return None, path, f"cannot be read ({(str(e).splitlines() or [type(e).__name__])[0][:100]})"
    if not _valid_state(state):
        return None, path, "is damaged (no step or settings)"
    if not seal_ok(state):
        return None, path, "is damaged (its content differs from its checksum)"
    damaged = _damaged_file(folder, state.get("files") or {})
    if damaged is not None:
        return None, folder / damaged[0], damaged[1]
    return state, path, ""


BRANCH_TMP = ".branch.tmp"


def branch_checkpoint(source: Path, out: Path, tries: int = 3) -> dict:
    """Copy `source`'s latest checkpoint into `out` (claimed, holding no checkpoint) to continue it
    there, e.g. as a cooldown; returns its state. `source` is only read, and may be training: a copy
    caught in the middle of its checkpoint's swap fails the checksums and is taken again."""
    source = Path(source)
    if not (source / CHECKPOINT).is_dir():
        raise RagError(f"{source}: no training checkpoint there: --from-run names an earlier run's --out")
    work = out / BRANCH_TMP
    problem = ""
    for _ in range(tries):
        if work.exists():
            shutil.rmtree(work)  # ours: inside our claimed --out, with our name
        try:
            shutil.copytree(source / CHECKPOINT, work)
        except (OSError, shutil.Error) as e:  # the source swapped its checkpoint while it was copied
            problem = f"cannot be copied ({str(e).splitlines()[0][:100]})"
            continue
        state, path, problem = _checked_state(work)
        if state is not None:
            os.replace(work, out / CHECKPOINT)
            return state
        problem = f"{path.name} {problem}"
    shutil.rmtree(work, ignore_errors=True)
    raise RagError(f"{source / CHECKPOINT}: {problem}: it cannot be continued; try again, or resume {source} first")


def _damaged_file(folder: Path, files: dict) -> tuple[str, str] | None:
    """(name, what is wrong) of the first checkpoint file that is missing or differs from the
    checksum recorded when it was written; None when all match."""
    from rag.store import file_sha256

    for name, digest in sorted(files.items()):
        try:
            if file_sha256(folder / name) != digest:
                return name, "is damaged (its checksum differs from the one recorded when it was written)"
        except FileNotFoundError:
            return name, "is missing"
        except OSError as e:
            return name, f"cannot be read ({e.strerror or e})"
    return None


def save_checkpoint(
    model,
    optimizer,
    out: Path,
    step: int,
    settings,
    fingerprint: str = "",
    seconds: float = 0.0,
    seen: int = 0,
    cpu_seconds: float = 0.0,
) -> None:
    """Write the checkpoint to a new folder, then swap it in: a kill leaves the old one or the new one."""
    import torch
    from safetensors.torch import save_file

    work = out / f".{CHECKPOINT}.tmp"
    if work.exists():
        shutil.rmtree(work)  # ours: inside our claimed --out, with our name
    work.mkdir()
    model.save_pretrained(str(work), safe_serialization=True)
    tensors, groups = {}, []
    full = optimizer.state_dict()
    for index, values in full["state"].items():
        for key, value in values.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{index}.{key}"] = tensor.contiguous()
    for group in full["param_groups"]:
        groups.append({k: v for k, v in group.items()})
    save_file(tensors, str(work / "optimizer.safetensors"))
    save_file({"rng": torch.get_rng_state()}, str(work / "rng.safetensors"))
    (work / "optimizer.json").write_text(json.dumps({"param_groups": groups}))
    from rag.store import file_sha256

    files = {p.name: file_sha256(p) for p in sorted(work.iterdir()) if p.is_file()}
    state = {
        "step": step,
        "settings": settings.key(),
        "data": fingerprint,
        "seconds": round(seconds, 1),
        "windows_seen": seen,
        "cpu_seconds": round(cpu_seconds, 1),
        "files": files,  # checked on resume: damage that keeps a file's size is found, not trained on
    }
    (work / STATE).write_text(json.dumps(seal(state), indent=1))
    old = out / f".{CHECKPOINT}.old"
    if old.exists():
        shutil.rmtree(old)
    if (out / CHECKPOINT).exists():
        os.replace(out / CHECKPOINT, old)
    os.replace(work, out / CHECKPOINT)
    shutil.rmtree(old, ignore_errors=True)


def branch(from_run: Path, out: Path, finish_at: int | None, settings, say) -> dict:
    """The cooldown's settings; on its first call, `from_run`'s checkpoint (and its cached retrieval
    or mined groups, which take minutes to compute) copied into `out`, once its settings are found to be these. A
    resumed cooldown keeps its branch point."""
    import shutil

    from rag.train.retrieved import RETRIEVAL

    if finish_at is None:
        raise RagError("--from-run needs --finish-at N: the questions' worth at which the learning rate reaches zero")
    if from_run.resolve() == out.resolve():
        raise RagError(f"--from-run {from_run} is --out itself: a cooldown goes in a folder of its own")
    state = checkpoint_state(out)
    if state is None:
        source = checkpoint_state(from_run) if (from_run / CHECKPOINT).is_dir() else None
        if source is not None and source["settings"] != settings.key():
            changed = sorted(k for k, v in settings.key().items() if source["settings"].get(k) != v)
            raise RagError(
                f"{from_run} was trained with other settings ({', '.join(changed)}): give its own to finish it"
            )
        state = branch_checkpoint(from_run, out)
        for cached in (RETRIEVAL, GROUPS):
            if (from_run / cached).is_file() and not (out / cached).exists():
                shutil.copyfile(from_run / cached, out / cached)
        say(
            f"cooldown: continuing {from_run} from its step {state['step']}, the learning rate decaying to 0 by {finish_at} questions"
        )
        start = state["step"]
    else:
        start = (state["settings"].get("cooldown") or {}).get("from_step", state["step"])
    return {"from_step": int(start), "questions": int(finish_at)}


def load_optimizer(optimizer, folder: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "optimizer.safetensors"))
    groups = json.loads((folder / "optimizer.json").read_text())["param_groups"]
    state: dict[int, dict] = {}
    for name, tensor in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def load_rng(folder: Path):
    from safetensors.torch import load_file

    return load_file(str(folder / "rng.safetensors"))["rng"]


def save_model(model, tokenizer, folder: Path) -> None:
    work = folder.parent / f".{folder.name}.tmp"
    if work.exists():
        shutil.rmtree(work)
    model.save_pretrained(str(work), safe_serialization=True)
    tokenizer.save_pretrained(str(work))
    if folder.exists():
        shutil.rmtree(folder)  # inside our claimed --out: the model this run wrote before
    os.replace(work, folder)
