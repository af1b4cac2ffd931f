"""Which runtime computes a generator on this CPU: transformers, or llama.cpp where it was measured
to answer faster with the very same greedy tokens.

The rule is a measurement, not a guess (`benchmarks/llama_cpp_speed.py --passages 5`, RAG-sized
prompts; BENCHMARKS.md, issue 21): on CPUs without native bfloat16, llama.cpp runs qwen2.5-1.5b's
4-bit GGUF faster end to end than transformers' float32 copy, with identical greedy answers, in a
third of the memory and with no float32 conversion. For every other preset it was slower, or
faster with other answers, so transformers stays. On a CPU with native bfloat16, transformers
computes in bfloat16 and llama.cpp was not measured there: transformers stays.

`$RAG_RUNTIME` (auto, transformers, llama.cpp) overrides; llama.cpp needs the optional extra
`rag[llama-cpp]` and a GGUF model.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from rag.cpu import NATIVE_BF16, Cpu, DtypeChoice, this_cpu
from rag.errors import RagError

RUNTIMES = ("auto", "transformers", "llama.cpp")
INSTALL = "pip install 'rag[llama-cpp]'"

# preset -> what was measured (whole answers, greedy tokens, memory; the CPU it was measured on)
LLAMA_CPP_FASTER = {
    "qwen2.5-1.5b": "1.12x faster with the same greedy tokens (10/10) in 1.9 GB instead of 6.6 "
    "(measured on an AMD EPYC, AVX2)",
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
        if not gguf:
            raise RagError(f"{where} is llama.cpp, which runs GGUF files only: {preset or 'this model'} is not one")
        if not installed:
            raise RagError(f"{where} is llama.cpp but llama-cpp-python is not installed: {INSTALL}")
        return RuntimeChoice("llama.cpp", f"{where} llama.cpp")
    measured = LLAMA_CPP_FASTER.get(preset or "")
    native = any(f in (cpu or this_cpu()).flags for f in NATIVE_BF16)
    if measured and gguf and not native and dtype.dtype == "float32":
        if installed:
            return RuntimeChoice("llama.cpp", f"auto: without native bfloat16, llama.cpp runs {preset} {measured}")
        return RuntimeChoice("transformers", f"auto: llama.cpp would run {preset} faster on this CPU ({INSTALL})")
    return RuntimeChoice("transformers", "auto")
