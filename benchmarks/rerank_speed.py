"""How to rerank ten candidates faster: each way of running the cross-encoder, timed side by side.

    .venv/bin/python benchmarks/rerank_speed.py [--model FOLDER] [--threads 2] [--rounds 30] [--candidates 10]

Speed does not depend on what the weights learnt, so by default the cross-encoder is MiniLM-L6
with a fresh one-logit head (the shipped reranker's shape; its folder keeps only the int8 ONNX);
`--model` takes a trained one (with model.safetensors) to report score agreement too. Exported
once to a temporary folder: fp32 ONNX (fused attention), int8 with dynamic activation scales
(what ships: one pair per run, since a batch's shared activation scale couples the candidates),
and int8 with static activation scales calibrated on SQuAD training pairs (scales fixed, so a
pair's score cannot depend on its batch). Each variant scores the same ten (question, passage)
pairs per round, from SQuAD training paragraphs; rounds interleave the variants so a noisy
machine slows all alike. Reports the median milliseconds for ten candidates, and how far a pair's
score moves between scoring it alone and in the batch.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "datasets" / "squad" / "train-v1.0.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (SQuAD's training set, in ../shared/datasets/squad/)")

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from tokenizers import Tokenizer

    from rag.cpu import this_cpu
    from rag.models.batch import pad_rows
    from rag.onnx.export import export_onnx
    from rag.onnx.session import cpu_session
    from rag.train.data import load_examples

    examples = load_examples(args.data)
    random.Random(0).shuffle(examples)
    contexts = [e.context for e in examples[:2000]]
    work = Path(tempfile.mkdtemp(prefix="rerank-speed-"))
    folder = args.model or make_untrained(work / "model")
    fp32, dyn = work / "model.onnx", work / "model-int8.onnx"
    export_onnx(folder, fp32, dyn, "text-classification")
    raw = work / "model-raw.onnx"  # unfused, for static quantisation
    export_raw(folder, raw)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(args.max_length, strategy="longest_first")

    def arrays(pairs):
        enc = tokenizer.encode_batch(pairs)
        return pad_rows([e.ids for e in enc], [e.type_ids for e in enc], 0)

    calibration = [arrays([(examples[i].question, contexts[(i * 7) % len(contexts)])]) for i in range(2000, 2064)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            return next(self.items, None)

    static = work / "model-int8-static.onnx"
    quantize_static(
        str(raw),
        str(static),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    sessions = {name: cpu_session(path, args.threads) for name, path in
                [("fp32", fp32), ("int8 dynamic", dyn), ("int8 static", static)]}  # fmt: skip
    inputs = {name: [i.name for i in s.get_inputs()] for name, s in sessions.items()}

    def run(name, feeds):
        return sessions[name].run(["logits"], {n: feeds[n] for n in inputs[name]})[0][:, 0]

    variants = {
        "int8 dynamic, one pair a run (shipped)": ("int8 dynamic", 1),
        "int8 dynamic, batched": ("int8 dynamic", args.candidates),
        "fp32, one pair a run": ("fp32", 1),
        "fp32, batched": ("fp32", args.candidates),
        "int8 static, one pair a run": ("int8 static", 1),
        "int8 static, batched": ("int8 static", args.candidates),
    }
    times: dict[str, list[float]] = {v: [] for v in variants}
    drift: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        q = examples[r].question
        pairs = [(q, contexts[(r * 13 + j) % len(contexts)]) for j in range(args.candidates)]
        alone = {name: np.concatenate([run(name, arrays([p])) for p in pairs]) for name in sessions}
        for variant, (name, batch) in variants.items():
            started = time.perf_counter()
            scores = np.concatenate([run(name, arrays(pairs[i : i + batch])) for i in range(0, len(pairs), batch)])
            times[variant].append((time.perf_counter() - started) * 1000)
            drift[variant].append(float(np.abs(scores - alone[name]).max()))
    result = {
        "cpu": this_cpu().describe(),
        "threads": args.threads,
        "candidates": args.candidates,
        "max_length": args.max_length,
        "ms_p50": {v: round(statistics.median(t), 1) for v, t in times.items()},
        "max_batch_drift": {v: round(max(d), 4) for v, d in drift.items()},
    }
    print(json.dumps(result))
    for v in variants:
        print(f"| {this_cpu().model} | {args.threads} | {v} | {result['ms_p50'][v]} | {result['max_batch_drift'][v]} |")


def make_untrained(folder: Path) -> Path:
    """MiniLM-L6 with a fresh one-logit head (the reranker's shape), saved with its tokenizer."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rag.models.logs import quiet_transformers
    from rag.train.reader import base_folder

    torch.manual_seed(0)
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(base_folder("all-MiniLM-L6-v2"), num_labels=1)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base_folder("all-MiniLM-L6-v2")).save_pretrained(folder)
    return folder


def export_raw(folder: Path, path: Path) -> None:
    """The same export without ONNX Runtime's fusions (static quantisation works on plain MatMuls)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(folder), attn_implementation="eager").eval()
    sample = AutoTokenizer.from_pretrained(str(folder))(
        ["a sample", "another sample, longer"], padding=True, return_tensors="pt"
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(
            Wrapped(model), tuple(sample[n] for n in names), str(path), dynamo=False, opset_version=14,
            input_names=names, output_names=["logits"], dynamic_axes=axes,
        )  # fmt: skip


if __name__ == "__main__":
    main()
