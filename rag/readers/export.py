"""A reader's ONNX files, written beside its weights: what `rag ask -g minilm-reader` runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rag.models.weights import ONNX_FP32, ONNX_INT8


def export_reader(folder: Path, *, say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Path:
    """Export the span head in `folder` to model.onnx (fp32) and model-int8.onnx, plus tokenizer.json."""
    from rag.onnx.export import export_folder

    return export_folder(folder, ONNX_FP32, ONNX_INT8, "question-answering", say)
