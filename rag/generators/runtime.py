"""Which runtime computes a generator: transformers, or llama.cpp when asked for.

The per-CPU rule the project set for choosing llama.cpp on its own: it must answer faster end to
end *and* give the very same greedy answers, measured on RAG-sized prompts
(`benchmarks/llama_cpp_speed.py --passages 5`, `rag bench`; BENCHMARKS.md, issue 21). No preset
meets it on the CPUs measured (AMD EPYC Zen 1 and Zen 3, AVX2): qwen2.5-0.5b and smollm2 answer
slower through llama.cpp, gemma3-270m faster but with other answers for half the questions, and
qwen2.5-1.5b 1.18x faster in a third of the memory but with 2 of 20 answers changed. So `auto` is
transformers everywhere, and llama.cpp is offered where it was measured to pay: `rag models` says
so on a CPU like the one measured, and `$RAG_RUNTIME=llama.cpp` (auto, transformers, llama.cpp)
runs any GGUF model on it with the optional extra `rag[llama-cpp]` installed.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from rag.cpu import NATIVE_BF16, Cpu, DtypeChoice, this_cpu
from rag.errors import RagError

RUNTIMES = ("auto", "transformers", "llama.cpp")
INSTALL = "pip install 'rag[llama-cpp]'"

# preset -> what llama.cpp measured against transformers float32 on a CPU without native bfloat16
LLAMA_CPP_MEASURED = {
    "qwen2.5-1.5b": "llama.cpp answered it 1.18x faster in 2.4 GB instead of 7.0, F1 the same, "
    "but 2 of 20 answers changed (AMD EPYC, AVX2)",
}


@dataclass(frozen=True)
class RuntimeChoice:
    """The runtime a generator loads on, and why (shown by `rag models` and `ask -v`)."""

    runtime: str  # transformers | llama.cpp
    reason: str


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def choose_runtime(
    preset: str | None,
    gguf: bool,
    dtype: DtypeChoice,
    *,
    requested: str | None = None,
    cpu: Cpu | None = None,
    installed: bool | None = None,
) -> RuntimeChoice:
    """The runtime for a model (`preset`: its preset name, or None; `gguf`: whether its weights
    are a GGUF file) given the dtype chosen for this CPU. `requested` None reads $RAG_RUNTIME."""
    from_env = requested is None
    value = (os.environ.get("RAG_RUNTIME", "") if from_env else requested).strip().lower() or "auto"
    where = "$RAG_RUNTIME" if from_env else "runtime"
    if value not in RUNTIMES:
        raise RagError(f"{where} is {value!r}: use one of {', '.join(RUNTIMES)}")
    installed = llama_cpp_installed() if installed is None else installed
    if value == "transformers":
        return RuntimeChoice("transformers", f"{where} transformers")
    if value == "llama.cpp":
        if not gguf:  # a preference for every model: the others still answer
            return RuntimeChoice("transformers", f"{where} llama.cpp runs GGUF files only: transformers for this one")
        if not installed:
            raise RagError(f"{where} is llama.cpp but llama-cpp-python is not installed: {INSTALL}")
        return RuntimeChoice("llama.cpp", f"{where} llama.cpp")
    measured = LLAMA_CPP_MEASURED.get(preset or "")
    native = any(f in (cpu or this_cpu()).flags for f in NATIVE_BF16)
    if measured and gguf and not native and dtype.dtype == "float32":  # shown by `rag models`, not chosen
        how = "$RAG_RUNTIME=llama.cpp" + ("" if installed else f" after {INSTALL}")
        return RuntimeChoice("transformers", f"auto: {measured}; {how} to use it")
    return RuntimeChoice("transformers", "auto")


def runtime_for(name_or_path: str, dtype: DtypeChoice) -> RuntimeChoice:
    """The runtime for a preset name or a model path, on this CPU."""
    from rag.generators.presets import PRESETS

    preset = PRESETS.get(name_or_path)
    gguf = bool(preset.chunked or preset.gguf_package) if preset is not None else name_or_path.lower().endswith(".gguf")
    return choose_runtime(preset.name if preset is not None else None, gguf, dtype)
