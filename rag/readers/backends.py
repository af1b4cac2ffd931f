"""What computes a span head's logits: PyTorch (transformers) or ONNX Runtime.

Leaves below the reader: each takes padded NumPy arrays and returns (start, end) logits as NumPy,
so the reader code is the same on both and the ONNX path never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.models.weights import ONNX_INT8


def forward_inputs(model) -> set[str]:
    """The argument names the model's forward takes (BERT takes token_type_ids, DistilBERT does not)."""
    import inspect

    return set(inspect.signature(model.forward).parameters)


class TorchLogits:
    """transformers' AutoModelForQuestionAnswering, float32, no grad."""

    runtime = "transformers"
    batch = 16  # windows per forward pass (float32: a window's logits do not depend on its batch)

    def __init__(self, model, threads: int | None = None) -> None:
        self.model = model.eval()
        self.threads = threads
        self.inputs = forward_inputs(model)
        self.dtype = "float32"

    @classmethod
    def load(cls, location: str, threads: int | None = None) -> TorchLogits:
        from transformers import AutoModelForQuestionAnswering

        return cls(AutoModelForQuestionAnswering.from_pretrained(location, local_files_only=True), threads)

    def __call__(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        device = next(self.model.parameters()).device  # a model trained on a GPU is read there
        feeds = {k: torch.from_numpy(v).to(device) for k, v in arrays.items() if k in self.inputs}
        with torch.inference_mode():
            out = self.model(**feeds)
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()


class OnnxLogits:
    """ONNX Runtime on an exported span head (inputs as exported, outputs start/end logits)."""

    runtime = "onnxruntime"
    # One window per run, as the reranker scores one pair per run: int8 models quantise activations
    # per run (one scale over the whole batch, padding included), so batched, a window's logits
    # moved with the other passages read beside it (by up to 1.1), and with them the answer and the
    # decision to decline. Alone, a passage reads the same whatever else was retrieved.
    batch = 1

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from rag.onnx.session import cpu_session

        self.path = Path(path)
        self.session = cpu_session(path, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.dtype = "int8" if path.name == ONNX_INT8 else "float32"

    def __call__(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.session.run(["start_logits", "end_logits"], {n: arrays[n] for n in self.inputs})
        return start, end
