"""One ONNX Runtime session recipe for every encoder-only role (embedder, reader): CPU provider,
the thread count asked for, one inter-op thread, spinning as `rag.threads` decides, quiet logs."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_session(path: str | Path, threads: int | None = None):
    import onnxruntime as ort

    from rag.threads import ort_spinning

    # Warnings of the process-wide logger come before any session's own level applies (an
    # ANSI-coloured telemetry line when run as another user, for one): errors only, as for sessions.
    ort.set_default_logger_severity(3)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    spin = "1" if ort_spinning() else "0"  # see rag/threads.py
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
