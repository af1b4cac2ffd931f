"""How rag's native libraries use the CPU's threads, set once before any of them is imported.

torch, faiss and ONNX Runtime each keep a pool of worker threads. By default those workers
busy-wait (spin) between tasks, which costs nothing on an idle machine and a great deal on a
busy one: with one other CPU-bound process beside it, a warm single query went from ~15 ms to
~470 ms, because the spinning workers fought that process for the cores. rag therefore asks for
passive waiting (workers sleep when idle): `OMP_WAIT_POLICY=PASSIVE` for the OpenMP pools of
torch and faiss, and no spinning in ONNX Runtime's pools. `benchmarks/contention.py` measures
it both ways, quiet and under load (BENCHMARKS.md).

Every setting is a default: a variable the user has set (`OMP_WAIT_POLICY`, `OMP_NUM_THREADS`,
`RAG_ORT_SPINNING`) wins, and `RAG_THREAD_POLICY=default` leaves every library's own default
alone. It must run before torch or faiss is imported; `rag` (the package) calls it on import.
"""

from __future__ import annotations

import os

POLICY = "PASSIVE"


def configure() -> None:
    """Set the thread policy for this process unless the user chose one."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not _libraries_default():
        os.environ.setdefault("OMP_WAIT_POLICY", POLICY)


def ort_spinning() -> bool:
    """Whether ONNX Runtime's worker threads may spin: `$RAG_ORT_SPINNING` (1/0), else spin only
    when OpenMP is told to (the same policy for every pool)."""
    value = os.environ.get("RAG_ORT_SPINNING", "").strip()
    if value:
        return value.lower() in ("1", "true", "yes", "on")
    return _libraries_default() or os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "ACTIVE"


def _libraries_default() -> bool:
    return os.environ.get("RAG_THREAD_POLICY", "").strip().lower() == "default"
