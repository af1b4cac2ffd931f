"""Export a transformers encoder to ONNX for one task, fuse it, and quantise it to int8.

Tasks: `feature-extraction` (the embedder: last_hidden_state), `question-answering` (a reader:
start_logits, end_logits) and `text-classification` (a cross-encoder: logits). One recipe for
all: PyTorch's TorchScript exporter with eager attention (the graph ONNX Runtime's transformer
optimiser fuses best), the optimiser's fusions for BERT-like models, then ONNX Runtime's dynamic
per-channel unsigned int8 quantisation (measured for the embedder in BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

TASKS = {
    "feature-extraction": ("AutoModel", ["last_hidden_state"]),
    "question-answering": ("AutoModelForQuestionAnswering", ["start_logits", "end_logits"]),
    "text-classification": ("AutoModelForSequenceClassification", ["logits"]),
}
FUSED_TYPES = ("bert", "roberta", "xlm-roberta", "mpnet", "distilbert")


def export_onnx(folder: Path | str, fp32: Path, int8: Path | None, task: str) -> list[str]:
    """Write `fp32` (and `int8` if given) for the model in `folder`; return the input names."""
    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    if task not in TASKS:
        raise ValueError(f"unknown ONNX task {task!r}: one of {', '.join(TASKS)}")
    class_name, outputs = TASKS[task]
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    # Eager attention exports as plain MatMul/Softmax, the pattern ONNX Runtime's optimiser fuses
    # into one Attention kernel (SDPA exports as a Where/IsNaN chain it cannot fuse).
    model = getattr(transformers, class_name).from_pretrained(str(folder), attn_implementation="eager").eval()
    sample = tokenizer(
        ["a short sample", "and a somewhat longer sample sentence, to pad the first"], padding=True, return_tensors="pt"
    )
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Wrapped(torch.nn.Module):  # named arguments, so the exporter can map dynamic axes to them
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            out = self.inner(**kwargs)
            return tuple(out[name] for name in outputs)

    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    for name in outputs:
        axes[name] = {0: "batch"} if name == "logits" else {0: "batch", 1: "sequence"}
    fp32 = Path(fp32)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        args = tuple(sample[n] for n in names)
        common = {"input_names": names, "output_names": outputs, "dynamic_axes": axes}
        try:
            torch.onnx.export(Wrapped(model), args, str(fp32), dynamo=False, opset_version=14, **common)
        except Exception:  # noqa: BLE001 - a torch without the TorchScript exporter
            torch.onnx.export(
                Wrapped(model), args, str(fp32), dynamo=True, opset_version=18, external_data=False, **common
            )
        if model.config.model_type in FUSED_TYPES:
            from onnxruntime.transformers.optimizer import optimize_model

            optimize_model(
                str(fp32),
                model_type="bert",
                num_heads=model.config.num_attention_heads,
                hidden_size=model.config.hidden_size,
                opt_level=1,
            ).save_model_to_file(str(fp32))
        if int8 is not None:
            logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # "consider pre-processing"
            # A cross-encoder's ranking is finer than an embedder's or a reader's: unsigned weights cost
            # it 0.01 held-in recall@1; signed weights with the pooler and one-logit head kept in float
            # stay within 0.002 of fp32, and ran faster here (BENCHMARKS.md, the reranker).
            classifier = task == "text-classification"
            head = [n.name for n in _graph_nodes(fp32) if "pooler" in n.name or "classifier" in n.name]
            quantize_dynamic(
                str(fp32),
                str(int8),
                weight_type=QuantType.QInt8 if classifier else QuantType.QUInt8,
                per_channel=True,
                nodes_to_exclude=head if classifier else None,
                extra_options={"DefaultTensorType": 1},
            )  # FLOAT, for the fused ops' outputs
    return names


def _graph_nodes(path: Path):
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.node


def export_folder(folder: Path, fp32_name: str, int8_name: str, task: str, say=print) -> Path:
    """A trained model's ONNX files beside its weights (fp32 and int8), plus tokenizer.json, which
    the ONNX path reads with `tokenizers` alone (no transformers, no torch)."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    say(f"exporting {folder} to ONNX (fp32 and int8)")
    export_onnx(folder, folder / fp32_name, folder / int8_name, task)
    if not (folder / "tokenizer.json").is_file():
        AutoTokenizer.from_pretrained(str(folder)).backend_tokenizer.save(str(folder / "tokenizer.json"))
    return folder
