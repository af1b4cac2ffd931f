"""The machine and library versions a cost report records, and how its numbers are rounded and
printed (leaf helpers of `rag.cost.report`)."""

from __future__ import annotations

import platform
import statistics
from importlib import metadata
from pathlib import Path
from typing import Any


def _machine(context: dict[str, Any]) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "cpus_usable": usable, "platform": platform.platform(), **context}


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("rag", "torch", "transformers"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _millions(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f}M"
