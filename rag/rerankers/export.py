"""A reranker's ONNX files, written beside its weights: what `--reranker minilm-reranker` runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rag.models.weights import ONNX_FP32, ONNX_INT8


def export_reranker(folder: Path, *, say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Path:
    """Export the cross-encoder in `folder` to model.onnx (fp32) and model-int8.onnx, plus tokenizer.json."""
    from rag.onnx.export import export_folder

    return export_folder(folder, ONNX_FP32, ONNX_INT8, "text-classification", say)
