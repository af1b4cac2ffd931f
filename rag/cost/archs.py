"""The architectures `rag cost` measures, built from public hyper-parameters with random weights.

Each preset's config ships as a small JSON file in rag/cost_configs/ (hyper-parameters only: no
weights, paths or quantisation), so the cost of every architecture can be measured on a machine
that has none of the checkpoints. Random weights cost exactly what trained ones do (same shapes,
same kernels, same dtype); they say nothing about answer quality.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rag.errors import RagError

ENCODER_DECODER = "encoder-decoder"  # the same strings as rag.generators.base, without importing it
DECODER_ONLY = "decoder-only"
CONFIG_FOLDER = "cost_configs"


@dataclass(frozen=True)
class Arch:
    """A preset's architecture: its config file and the published parameter count it must match."""

    name: str
    family: str
    params: int  # published size (tied embeddings counted once), for the check in the tests
    source: str  # where the hyper-parameters were read


ARCHS: dict[str, Arch] = {
    a.name: a
    for a in [
        Arch(
            "t5-small",
            ENCODER_DECODER,
            60_500_000,
            "google-t5/t5-small config.json (T5 v1.0: relu, tied embeddings); t5x t5_1_0/small.gin",
        ),
        Arch(
            "flan-t5-small",
            ENCODER_DECODER,
            77_000_000,
            "google/flan-t5-small config.json (T5 v1.1: gated-gelu, untied lm_head)",
        ),
        Arch(
            "flan-t5-base",
            ENCODER_DECODER,
            248_000_000,
            "google/flan-t5-base config.json (T5 v1.1: gated-gelu, untied lm_head)",
        ),
        Arch("gpt2", DECODER_ONLY, 124_400_000, "openai-community/gpt2 config.json"),
        Arch("distilgpt2", DECODER_ONLY, 81_900_000, "distilbert/distilgpt2 config.json (gpt2 with 6 layers)"),
        Arch(
            "smollm2",
            DECODER_ONLY,
            134_500_000,
            "HuggingFaceTB/SmolLM2-135M-Instruct, as rag converts its GGUF (config.json in rag's GGUF cache)",
        ),
        Arch(
            "qwen2.5-0.5b",
            DECODER_ONLY,
            494_000_000,
            "Qwen/Qwen2.5-Coder-0.5B-Instruct config.json (tied embeddings, as published)",
        ),
        Arch(
            "gemma3-270m",
            DECODER_ONLY,
            268_100_000,
            "google/gemma-3-270m, as rag converts its GGUF (config.json in rag's GGUF cache)",
        ),
    ]
}


def resolve(name: str) -> tuple[str, dict[str, Any]]:
    """(label, config dict) for a preset name or a path to a config.json-style file."""
    if name in ARCHS:
        text = resources.files("rag").joinpath(CONFIG_FOLDER, f"{name}.json").read_text(encoding="utf-8")
        return name, json.loads(text)
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RagError(f"--archs {path}: not a readable JSON config ({e})") from None
        if not isinstance(data, dict) or "model_type" not in data:
            raise RagError(f"--archs {path}: a config must be a JSON object with a model_type")
        return path.stem, data
    raise RagError(f"unknown architecture {name!r}: choose from {', '.join(ARCHS)} or give a config .json file")


def family(config: dict[str, Any]) -> str:
    """Encoder-decoder or decoder-only, from the config (never from the name)."""
    return ENCODER_DECODER if config.get("is_encoder_decoder") else DECODER_ONLY


def hf_config(config: dict[str, Any]) -> Any:
    """A transformers config object for the dict (AutoConfig, by model_type)."""
    from transformers import AutoConfig

    values = dict(config)
    return AutoConfig.for_model(values.pop("model_type"), **values)


def build_model(config: dict[str, Any], *, meta: bool = False, seed: int = 0) -> Any:
    """The model with random weights in fp32 (eval mode); `meta` allocates nothing (for counting).

    A config saying `tie_word_embeddings: false` gets its own output matrix, as loading the real
    checkpoint gives (transformers builds T5 tied from a bare config whatever the flag says)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    cfg = hf_config(config)
    cls = AutoModelForSeq2SeqLM if family(config) == ENCODER_DECODER else AutoModelForCausalLM
    if meta:
        with torch.device("meta"):
            model = cls.from_config(cfg, dtype=torch.float32)
    else:
        torch.manual_seed(seed)
        model = cls.from_config(cfg, dtype=torch.float32)
    if config.get("tie_word_embeddings") is False:
        _untie(model)
    return model.eval()


def count_parameters(model: Any) -> int:
    """Distinct parameters (a tied matrix counts once), as published sizes count them."""
    return sum(p.numel() for p in model.parameters())


def _untie(model: Any) -> None:
    import torch

    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    if out is not None and inp is not None and out.weight is inp.weight:
        out.weight = torch.nn.Parameter(inp.weight.detach().clone())
        if hasattr(model.config, "tie_word_embeddings"):
            model.config.tie_word_embeddings = False  # so nothing ties it back
