"""Weights stored as int8 with one float32 scale per row (symmetric, per output channel), in
safetensors: a MiniLM generator's 26M parameters in about 27 MB instead of 105, dequantised to
float32 as they load (so the model computes exactly as a float32 one with these weights would).

Only matrices are stored in int8 (linear layers and embeddings); biases and LayerNorms, a few
thousand numbers, stay float32. What storage costs in quality is measured (BENCHMARKS.md), not
assumed.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS = "model-int8.safetensors"
SCALE = ".int8_scale"


def save_int8(model, path: Path) -> int:
    """Write `model`'s weights (each shared tensor once) to `path`; returns its size in bytes."""
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, p in model.named_parameters():  # named_parameters gives a shared (tied) tensor once
        if id(p) in seen:
            continue
        seen.add(id(p))
        w = p.detach().to(torch.float32)
        if w.dim() == 2:
            scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
            tensors[name] = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
            tensors[name + SCALE] = scale.contiguous()
        else:
            tensors[name] = w.contiguous()
    save_file(tensors, str(path), metadata={"format": "rag-int8-rows"})
    return Path(path).stat().st_size


def load_int8(path: Path) -> dict:
    """The float32 state dict stored by `save_int8` (shared tensors once, under their first name)."""
    import torch
    from safetensors.torch import load_file

    stored = load_file(str(path))
    out = {}
    for name, tensor in stored.items():
        if name.endswith(SCALE):
            continue
        if tensor.dtype == torch.int8:
            out[name] = tensor.to(torch.float32) * stored[name + SCALE][:, None]
        else:
            out[name] = tensor
    return out
