"""What this CPU computes natively, and the dtype generators run in because of it.

The machines this project runs on differ: some are AVX2-only, others have AVX-512 with BF16
(and some AMX). Where the CPU multiplies bfloat16 natively, a generator's matrix products run
2.7-3x faster in bf16 than in fp32 with the same greedy tokens (BENCHMARKS.md); where it does
not, bf16 is emulated and 3-4x slower. So the choice is made here, at run time, per CPU:
`auto` picks bfloat16 when /proc/cpuinfo lists `amx_bf16` or `avx512_bf16`, float32 otherwise.
`--dtype` (or `$RAG_DTYPE`) overrides it. The choice and its reason travel with every answer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import RagError

DTYPES = ("auto", "float32", "bfloat16")
NATIVE_BF16 = ("amx_bf16", "avx512_bf16")  # either one: bf16 matrix products in hardware
SHOWN_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")


@dataclass(frozen=True)
class Cpu:
    """The CPU's model name and the instruction-set flags that matter for choosing a dtype."""

    model: str
    flags: frozenset[str]

    @property
    def shown_flags(self) -> list[str]:
        return [f for f in SHOWN_FLAGS if f in self.flags]

    def describe(self) -> str:
        return f"{self.model} ({', '.join(self.shown_flags) or 'no AVX2'})"


@dataclass(frozen=True)
class DtypeChoice:
    """The dtype generators run in, and why (shown by `rag models`, `ask -v`, kept in answers)."""

    dtype: str  # float32 | bfloat16
    reason: str


_PREFERRED: str | None = None  # set by the command line's --dtype for this process (`prefer`)


def prefer(value: str) -> DtypeChoice:
    """Make `value` (checked: a bad one is a RagError) the dtype of every generator this process
    loads without a dtype of its own: what `--dtype` on the command line does."""
    global _PREFERRED
    choice = choose_dtype(value)
    _PREFERRED = value.strip().lower()
    return choice


@lru_cache(maxsize=1)
def this_cpu() -> Cpu:
    """Read once from /proc/cpuinfo (Linux); elsewhere an unknown CPU with no flags (float32)."""
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return Cpu("unknown CPU", frozenset())


def parse_cpuinfo(text: str) -> Cpu:
    """The first processor's model name and flags in /proc/cpuinfo's text."""
    model, flags = "unknown CPU", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return Cpu(model, flags)


def choose_dtype(requested: str | None = None, cpu: Cpu | None = None) -> DtypeChoice:
    """The generator dtype for `requested` (auto, float32, bfloat16; None: what `prefer` set,
    else $RAG_DTYPE, else auto) on `cpu` (default: this one)."""
    if requested is None and _PREFERRED is not None:
        requested = _PREFERRED
    from_env = requested is None and os.environ.get("RAG_DTYPE", "").strip()
    value = (requested if requested is not None else (from_env or "auto")).strip().lower()
    if value not in DTYPES:
        where = "$RAG_DTYPE" if from_env else "--dtype"
        raise RagError(f"{where} is {value!r}: use one of {', '.join(DTYPES)}")
    cpu = cpu or this_cpu()
    native = [f for f in NATIVE_BF16 if f in cpu.flags]
    if value != "auto":
        how = "$RAG_DTYPE" if from_env else "--dtype"
        warning = "" if value == "float32" or native else ", which this CPU emulates (slower than float32)"
        return DtypeChoice(value, f"{how} {value}{warning}")
    if native:
        return DtypeChoice("bfloat16", f"auto: {native[0]} on {cpu.model} computes bfloat16 natively")
    return DtypeChoice("float32", f"auto: {cpu.model} has no native bfloat16 (no amx_bf16 or avx512_bf16)")
