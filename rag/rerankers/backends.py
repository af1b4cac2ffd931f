"""What computes a cross-encoder's logits: PyTorch (transformers) or ONNX Runtime.

Leaves below the reranker: each takes padded NumPy arrays and returns one logit per pair, so
the reranker code is the same on both and the ONNX path never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.models.weights import ONNX_INT8


class TorchScores:
    """transformers' AutoModelForSequenceClassification with one label, float32, no grad."""

    runtime = "transformers"
    batch = 16  # pairs per forward pass (float32: a pair's score does not depend on its batch)

    def __init__(self, model, threads: int | None = None) -> None:
        import inspect

        self.model = model.eval()
        self.threads = threads
        self.inputs = set(inspect.signature(model.forward).parameters)
        self.dtype = "float32"

    @classmethod
    def load(cls, location: str, threads: int | None = None) -> TorchScores:
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging

        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # a weights-loading bar and report on every search are noise
        hf_logging.disable_progress_bar()
        try:
            model = AutoModelForSequenceClassification.from_pretrained(location, local_files_only=True)
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        return cls(model, threads)

    def __call__(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        feeds = {k: torch.from_numpy(v) for k, v in arrays.items() if k in self.inputs}
        with torch.inference_mode():
            logits = self.model(**feeds).logits
        return logits.float().numpy()[:, 0]


class OnnxScores:
    """ONNX Runtime on an exported cross-encoder (inputs as exported, output `logits`)."""

    runtime = "onnxruntime"
    # One pair per run. int8 models quantise activations per run (one scale over the whole batch,
    # padding included), so in a batch a pair's score moved with its neighbours (a logit of 2.6
    # read 1.2 to 2.3 beside other candidates); alone it is the same whatever else is reranked,
    # and no padding is computed: 10 pairs took 0.21 s one by one against 0.25 s batched here.
    batch = 1

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from rag.onnx.session import cpu_session

        self.path = Path(path)
        self.session = cpu_session(path, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.dtype = "int8" if self.path.name == ONNX_INT8 else "float32"

    def __call__(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        (logits,) = self.session.run(["logits"], {n: arrays[n] for n in self.inputs})
        return logits[:, 0]
