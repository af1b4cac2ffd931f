"""Where a training run computes: the CPU, or a CUDA GPU where one is present.

The project never needs a GPU (every run trains on two cores), but where one is there the same
run takes minutes instead of hours. On the GPU the forward passes run under bf16 autocast (the
weights, their gradients and AdamW's moments stay float32, so a checkpoint is the same file
whatever trained it, and a run started on a GPU can continue on a CPU and back).

On a CPU the same bf16 autocast is used where the CPU multiplies bfloat16 natively (`amx_bf16` or
`avx512_bf16`, decided per CPU at run time by `rag.cpu`): an AMD EPYC Zen 4 trains the reader
about 1.7x faster so (BENCHMARKS.md). Elsewhere bf16 is emulated and slower, so the CPU trains
in float32. `--precision fp32|bf16` (or `$RAG_TRAIN_PRECISION`) overrides the choice; the GPU runs matched the CPU's float32
learning curve within 0.03 F1 under the same autocast.
"""

from __future__ import annotations

from contextlib import nullcontext

from rag.errors import RagError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
_PREFERRED_PRECISION: str | None = None  # set by the command line's --precision (`prefer_precision`)


def prefer_precision(name: str) -> None:
    """Make `name` the precision of every run this process opens: what `--precision` does."""
    global _PREFERRED_PRECISION
    if name not in PRECISIONS:
        raise RagError(f"--precision {name}: give one of {', '.join(PRECISIONS)}")
    _PREFERRED_PRECISION = name


def resolve_precision(device: str, requested: str | None = None, cpu=None) -> tuple[str, str]:
    """("bf16" or "fp32", why) for a run on `device`: bf16 autocast on a GPU, and on a CPU that
    computes bfloat16 natively; float32 on one that would emulate it. `requested` (None: what
    `prefer_precision` set, else $RAG_TRAIN_PRECISION) other than "auto" wins."""
    import os

    from_env = not (requested or _PREFERRED_PRECISION) and os.environ.get("RAG_TRAIN_PRECISION", "").strip()
    name = requested or _PREFERRED_PRECISION or from_env or "auto"
    where = "$RAG_TRAIN_PRECISION" if from_env else "--precision"
    if name not in PRECISIONS:
        raise RagError(f"{where} {name}: give one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name, f"{where} {name}"
    if device.startswith("cuda"):
        return "bf16", "auto: a GPU"
    from rag.cpu import choose_dtype

    choice = choose_dtype("auto", cpu)
    return ("bf16" if choice.dtype == "bfloat16" else "fp32"), choice.reason


def resolve_device(name: str | None = "auto") -> str:
    """ "cuda" or "cpu" for `name` ("auto": the GPU where torch sees one); a GPU asked for and
    absent is an error naming the way out, not a silent CPU run of many hours."""
    name = (name or "auto").lower()
    if name not in DEVICES and not name.startswith("cuda:"):
        raise RagError(f"--device {name}: give one of {', '.join(DEVICES)} (or cuda:N)")
    if name == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda" if name == "auto" else name
    if name == "auto":
        return "cpu"
    raise RagError(f"--device {name}: torch sees no CUDA GPU here; use --device cpu (or auto)")


def autocast(device: str, precision: str = "bf16"):
    """bf16 autocast for a run on `device` whose precision is "bf16"; nothing for "fp32"."""
    if precision != "bf16":
        return nullcontext()
    import torch

    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


def device_of(model) -> str:
    """The device a model's weights are on, as a string torch and rag's generators take."""
    try:
        return str(next(model.parameters()).device)
    except (StopIteration, AttributeError):
        return "cpu"
