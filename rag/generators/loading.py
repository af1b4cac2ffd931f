"""Finding, loading, listing and pulling generator models.

Loading never touches the network unless asked (`allow_download=True`): a model that is
neither a local path nor in the Hugging Face cache is a one-line ModelNotAvailable that says
how to get it. (Letting transformers try the Hub when it is unreachable costs ~25 s of
retries before it fails.) A GGUF file is dequantised once and cached as safetensors.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.generators.base import Generator, ModelNotAvailable
from rag.generators.chunked import assemble
from rag.generators.chunked import available as chunked_available
from rag.generators.presets import (
    CONVERTED_MARKER,
    PREFERENCE,
    PRESETS,
    Preset,
    gguf_cache_folder,
    gguf_converted,
    packaged_folder,
    preset_available,
    preset_gguf,
)
from rag.models.info import ModelInfo
from rag.models.logs import quiet_transformers

logger = logging.getLogger("rag.generators")

HUB = "hub"
LOCAL = "local"
GGUF = "gguf"

# Every generator runs through transformers: a GGUF is dequantised on conversion and cached in
# float32, then computes in the dtype `rag.cpu` chooses for this CPU (bfloat16 where it is native).
# llama.cpp was measured and not adopted (BENCHMARKS.md: faster decode, slower prefill here).
RUNTIME = "transformers"


@dataclass(frozen=True)
class ModelSource:
    """Where a name points: a Hub repo id, a local model folder, or a .gguf file."""

    name: str  # as the user gave it
    kind: str  # HUB | LOCAL | GGUF
    location: str
    preset: Preset | None = None


# --------------------------------------------------------------------------- resolving


def _say(line: str) -> None:
    logger.warning(line)


def resolve(name_or_path: str) -> ModelSource:
    """Preset name, existing path, or Hub id (in that order). Touches only the file system
    (a preset split over chunk packages is assembled into the cache on first use)."""
    preset = PRESETS.get(name_or_path)
    if preset is not None and preset.packaged:
        folder = packaged_folder(preset)
        if folder is None:
            raise ModelNotAvailable(
                f"Model '{name_or_path}' is not in this copy of rag (rag/generators/{preset.packaged} is missing "
                "or incomplete): reinstall rag, or train one with `rag train generator`."
            )
        return ModelSource(name_or_path, LOCAL, str(folder), preset)
    if preset is not None and preset.chunked and chunked_available(preset.chunked):
        return ModelSource(name_or_path, GGUF, str(assemble(preset.chunked, name_or_path, _say)), preset)
    if preset is not None:
        gguf = preset_gguf(preset)
        if gguf is not None:
            return ModelSource(name_or_path, GGUF, str(gguf), preset)
        return ModelSource(name_or_path, HUB, preset.repo_id or "", preset)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return ModelSource(name_or_path, LOCAL, str(path))
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return ModelSource(name_or_path, GGUF, str(path))
        raise ModelNotAvailable(
            f"'{name_or_path}' is a file but not a .gguf model; pass a model folder or a .gguf file."
        )
    if _looks_like_path(name_or_path):
        raise ModelNotAvailable(f"No model at '{name_or_path}': that path does not exist.")
    return ModelSource(name_or_path, HUB, name_or_path)


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith((".", "/", "~", "\\")) or name.lower().endswith(".gguf") or name.count("/") > 1 or "\\" in name
    )


def not_available_message(source: ModelSource) -> str:
    """The one line for a model that is not here: which model, why, and the two ways out."""
    name, preset = source.name, source.preset
    if preset is not None:
        where = f"{preset.repo_id} is not in the Hugging Face cache"
        if preset.chunked:
            return (
                f"Model '{name}' is not available offline (its packages {preset.chunked.brace} are not "
                f"installed): run `{preset.chunked.install}`."
            )
        if preset.gguf_package:
            where = f"the {preset.gguf_package.replace('_', '-')} package is not installed and {where}"
        what = f"Model '{name}' is not available offline ({where})"
    else:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f"; did you mean the preset '{close[0]}'?" if close else ""
        what = f"Model '{name}' is not available offline (not a preset or local path, and not in the Hugging Face cache{hint})"
    return f"{what}: run `rag models pull {name}` while online, or pass a local model folder or .gguf file."


# --------------------------------------------------------------------------- loading

_LOADED: dict[tuple, Generator] = {}


def load_generator(
    name_or_path: str,
    *,
    device: str = "cpu",
    context_window: int | None = None,
    allow_download: bool = False,
    dtype: str | None = None,
) -> Generator:
    """A ready generator for a preset, Hub id, model folder or .gguf file; loaded once per process.

    `context_window`: encoder-decoder input budget (default 512), or for decoder-only the cap
    on the total window (default min(model limit, 2048)). The family comes from the config.
    `dtype`: auto (bfloat16 where this CPU computes it natively, else float32), float32 or
    bfloat16; None reads $RAG_DTYPE (see `rag.cpu`). Weights are converted as they load.
    """
    from rag.cpu import choose_dtype
    from rag.generators.runtime import runtime_for

    choice = choose_dtype(dtype)
    runtime = runtime_for(name_or_path, choice) if device == "cpu" else None
    key = (name_or_path, device, context_window, choice.dtype, runtime.runtime if runtime else None)
    generator = _LOADED.get(key)
    if generator is None:
        source = resolve(name_or_path)
        generator = _LOADED[key] = _load(source, device, context_window, allow_download, choice, runtime)
    return generator


def clear_loaded() -> None:
    """Forget loaded generators (tests and benchmarks that time loading; `rag.answerers.clear_loaded`
    forgets readers too)."""
    _LOADED.clear()


def _load(
    source: ModelSource,
    device: str,
    context_window: int | None,
    allow_download: bool,
    choice: Any = None,
    runtime: Any = None,
) -> Generator:
    t0 = time.perf_counter()
    if runtime is not None and runtime.runtime == "llama.cpp" and source.kind == GGUF:
        from rag.generators.llama_cpp import load_llama_cpp

        try:
            generator = load_llama_cpp(
                Path(source.location),
                source.name,
                context_window=context_window,
                prompt=source.preset.prompt if source.preset else None,
                threads=None,
            )
        except Exception as e:  # a damaged file, an architecture this llama.cpp does not know
            raise ModelNotAvailable(f"llama.cpp cannot load '{source.location}': {_first_line(e)}") from None
        generator.load_seconds = time.perf_counter() - t0
        generator.dtype_reason = runtime.reason
        return generator
    if source.kind == LOCAL:
        trained = _load_trained(source, device)
        if trained is not None:
            trained.load_seconds = time.perf_counter() - t0
            trained.dtype_reason = "float32: rag's trained MiniLM generators run in float32"
            return trained
    bf16 = choice is not None and choice.dtype == "bfloat16" and device == "cpu"
    with quiet_transformers():
        config, model, tokenizer = _load_parts(source, device, allow_download, bf16)
    if bf16 and str(next(model.parameters()).dtype) != "torch.bfloat16":
        import torch

        model = model.to(torch.bfloat16)  # a GGUF converted just now: float32 in memory this once
    from rag.generators.causal import CausalGenerator, decoder_window
    from rag.generators.prompts import choose_prompt
    from rag.generators.seq2seq import Seq2SeqGenerator, encoder_window

    if config.is_encoder_decoder:
        cls, window = Seq2SeqGenerator, encoder_window(config, context_window)
    else:
        cls, window = CausalGenerator, decoder_window(config, context_window)
    style = choose_prompt(cls.family, tokenizer, source.preset.prompt if source.preset else None)
    generator = cls(
        source.name, model, tokenizer, context_window=window, prompt_style=style, device=device, source=source.location
    )
    generator.load_seconds = time.perf_counter() - t0
    if choice is not None:
        generator.dtype_reason = choice.reason
    logger.info("loaded %r in %.1f s", generator, generator.load_seconds)
    return generator


def _load_trained(source: ModelSource, device: str) -> Generator | None:
    """A generator `rag train generator` made (its rag-generator.json), else None."""
    from rag.generators.minilm import MARKER, load_minilm_generator
    from rag.models.record import read_record

    folder = Path(source.location)
    record = read_record(folder, MARKER, "generator")
    if not record:
        return None
    try:
        with quiet_transformers():
            return load_minilm_generator(folder, source.name, record, device)
    except Exception as e:  # noqa: BLE001 - missing or damaged weights: one line naming the folder
        raise ModelNotAvailable(f"Cannot load model '{source.name}': {_first_line(e)}") from None


def _load_parts(source: ModelSource, device: str, allow_download: bool, bf16: bool = False) -> tuple[Any, Any, Any]:
    """(config, model, tokenizer), the model class chosen from the config. With `bf16`, cached
    float32 weights are cast tensor by tensor as they load (peak memory: the bfloat16 model)."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    if source.kind == GGUF:
        folder = gguf_converted(source.location)
        if folder is None:
            config, model, tokenizer = convert_gguf(source.location)
            return config, _place(model, device), tokenizer
        location, local_only = str(folder), True
    else:
        location, local_only = source.location, source.kind == LOCAL or not allow_download

    def fail(e: BaseException) -> ModelNotAvailable:
        if source.kind == HUB and (local_only or _is_connection_error(e)):
            return ModelNotAvailable(not_available_message(source))
        return ModelNotAvailable(f"Cannot load model '{source.name}': {_first_line(e)}")

    try:
        config = AutoConfig.from_pretrained(location, local_files_only=local_only)
        model_cls = _model_class(config)
        dtype = (torch.bfloat16 if bf16 else torch.float32) if device == "cpu" else "auto"
        # bf16: the float32 file is memory-mapped and each tensor cast as it loads; the mapped pages
        # count in the load's peak RSS (4.0 GiB for qwen2.5-0.5b, 1.7 after; BENCHMARKS.md).
        model = model_cls.from_pretrained(location, config=config, local_files_only=local_only, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only)
    except ModelNotAvailable:
        raise
    except Exception as e:  # OSError (missing files), ValueError (unknown architecture), ...
        raise fail(e) from None
    return config, _place(model, device), tokenizer


def _model_class(config: Any) -> Any:
    """AutoModelForSeq2SeqLM or AutoModelForCausalLM, by `config.is_encoder_decoder` only."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM


def _place(model: Any, device: str) -> Any:
    if device != "cpu":
        model.to(device)
    return model.eval()


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def _is_connection_error(e: BaseException) -> bool:
    text = str(e).lower()
    return "connect" in text or "offline" in text or "resolve" in text


# --------------------------------------------------------------------------- GGUF


def convert_gguf(gguf_path: str | os.PathLike) -> tuple[Any, Any, Any]:
    """Dequantise a GGUF file with transformers (slow: ~30 s for 135M params) and cache it as
    safetensors + tokenizer under `gguf_cache_folder`, so the next load takes about a second.

    Returns (config, model, tokenizer) in memory. An unwritable cache only costs the speed-up.
    """
    import torch
    from transformers import AutoConfig, AutoTokenizer

    gguf_path = Path(gguf_path)
    folder, file = str(gguf_path.parent), gguf_path.name
    logger.info("converting %s to safetensors (once; cached in %s)", gguf_path, gguf_cache_folder(gguf_path))
    t0 = time.perf_counter()
    try:
        config = AutoConfig.from_pretrained(folder, gguf_file=file, local_files_only=True)
        kwargs: dict[str, Any] = {}
        try:  # newer transformers keep GGUF blocks packed unless told to dequantise
            from transformers import GgufConfig

            kwargs["quantization_config"] = GgufConfig(dequantize=True)
        except ImportError:
            pass
        model = _model_class(config).from_pretrained(
            folder, gguf_file=file, config=config, dtype=torch.float32, local_files_only=True, **kwargs
        )
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file, local_files_only=True)
    except Exception as e:
        raise ModelNotAvailable(f"Cannot load GGUF file '{gguf_path}': {_first_line(e)}") from None
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # weights are dense now; drop the marker that forbids saving
        quantizer.remove_quantization_config(model)
    seconds = time.perf_counter() - t0
    _save_converted(gguf_path, model, tokenizer, seconds)
    return model.config, model, tokenizer


def _save_converted(gguf_path: Path, model: Any, tokenizer: Any, seconds: float) -> None:
    """Cache the converted model (written whole or not at all: `write_new_folder`)."""
    target = gguf_cache_folder(gguf_path)
    if target.exists():  # finished by another process, or not rag's: either way left as it is
        return

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        st = gguf_path.stat()
        marker = {
            "gguf": str(gguf_path),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "convert_seconds": round(seconds, 1),
        }
        (tmp / CONVERTED_MARKER).write_text(json.dumps(marker, indent=2))

    from rag.generators.cache_folder import write_new_folder

    try:
        write_new_folder(target, write)
    except OSError as e:  # another process won the race, or the cache is read-only
        if gguf_converted(gguf_path) is None:
            logger.warning("could not cache the converted model in %s: %s", target, e)


# --------------------------------------------------------------------------- listing and pulling


def list_models() -> list[ModelInfo]:
    """The presets, best first (PREFERENCE order), and whether each can load offline now
    (file checks only, no torch)."""
    from rag.cpu import choose_dtype
    from rag.errors import RagError
    from rag.generators.runtime import choose_runtime, runtime_for

    rows, choice = [], choose_dtype()
    dtype = choice.dtype
    choose_runtime(None, False, choice)  # a bad $RAG_RUNTIME is one line here too
    ordered = [PRESETS[n] for n in PREFERENCE] + [p for n, p in PRESETS.items() if n not in PREFERENCE]
    for preset in ordered:
        available = preset_available(preset)
        gguf = preset_gguf(preset)
        source = preset.source if gguf is not None or preset.chunked or not preset.repo_id else preset.repo_id
        if preset.packaged:
            note = preset.note if available else f"{preset.note}; missing from this copy of rag: reinstall it"
        elif preset.chunked and gguf is None:
            note = (
                "first load assembles the GGUF (hash-checked) and converts it, then cached"
                if available
                else f"run `{preset.chunked.install}`"
            )
            note = f"{preset.note}; {note}"
        elif gguf is not None:
            note = (
                "converted copy cached" if gguf_converted(gguf) else "first load converts the GGUF (~30 s), then cached"
            )
            note = f"{preset.note}; {note}"
        elif available:
            note = f"{preset.note}; in the Hugging Face cache"
        else:
            note = f"{preset.note}; run `rag models pull {preset.name}` while online"
        runtime = f"{RUNTIME} {dtype}" + (" (GGUF dequantised)" if gguf is not None or preset.chunked else "")
        if preset.packaged:
            runtime = f"{RUNTIME} float32 (int8-stored weights)"
        try:
            if runtime_for(preset.name, choice).runtime == "llama.cpp":
                runtime = "llama.cpp (the GGUF's own weights)"
                note = note.replace(" and converts it", "")
        except RagError:  # $RAG_RUNTIME=llama.cpp without the extra: loading it says so in one line
            runtime = "llama.cpp, not installed"
        memory = f"{4 * preset.params / 2**30:.1f} / {2 * preset.params / 2**30:.1f} GiB"
        rows.append(
            ModelInfo(preset.name, preset.family, source, preset.size, available, note, preset.licence, runtime, memory)
        )
    return rows


def opted_in_default() -> str | None:
    """A preset that is the default only where bfloat16 is native (`Preset.default_needs_bf16`:
    the opt-in qwen2.5-1.5b), where it is installed and this CPU computes bfloat16; else None."""
    from rag.cpu import choose_dtype

    if choose_dtype().dtype != "bfloat16":
        return None
    return next((n for n in PREFERENCE if PRESETS[n].default_needs_bf16 and preset_available(PRESETS[n])), None)


def default_generator_name() -> str:
    """The generator to use where none is named: the opt-in one where `opted_in_default` says so,
    else the best generator preset that can load offline right now (a preset that needs native
    bfloat16 is passed over on other CPUs); flan-t5-small if none can (its error then says how to
    pull it). `rag.answerers.default_answerer_name` puts the shipped reader before the presets."""
    from rag.cpu import choose_dtype

    opted_in = opted_in_default()
    if opted_in:
        return opted_in
    bf16 = choose_dtype().dtype == "bfloat16"
    for name in PREFERENCE:
        preset = PRESETS[name]
        if (bf16 or not preset.default_needs_bf16) and preset_available(preset):
            return name
    return "flan-t5-small"
