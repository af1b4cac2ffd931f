"""Where a training run computes: the CPU, or a CUDA GPU where one is present.

The project never needs a GPU (every run trains on two cores), but where one is there the same
run takes minutes instead of hours. On the GPU the forward passes run under bf16 autocast (the
weights, their gradients and AdamW's moments stay float32, so a checkpoint is the same file
whatever trained it, and a run started on a GPU can continue on a CPU and back). On the CPU
nothing changes: float32, as every figure in BENCHMARKS.md measured on these machines.
"""

from __future__ import annotations

from contextlib import nullcontext

from rag.errors import RagError

DEVICES = ("auto", "cpu", "cuda")


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


def autocast(device: str):
    """bf16 autocast on a GPU; nothing on the CPU (fp32: bf16 is emulated on CPUs without it)."""
    if not device.startswith("cuda"):
        return nullcontext()
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16)


def device_of(model) -> str:
    """The device a model's weights are on, as a string torch and rag's generators take."""
    try:
        return str(next(model.parameters()).device)
    except (StopIteration, AttributeError):
        return "cpu"
