"""How fast each family trains from MiniLM on this CPU: the reader, the encoder-decoder and the
decoder-only generator (prefix-LM and causal), side by side in one process, beside `torch.mm`.

    .venv/bin/python benchmarks/generator_throughput.py [--threads 2] [--steps 6] [--rounds 3]

Each round times `--steps` training steps of every recipe in turn (batches of 16 length-grouped
SQuAD training questions, AdamW, clipped gradients, exactly the loss `rag train` computes), then
`torch.mm` in float32 on a model-shaped product, so a noisy machine slows all alike and the
ratios hold. Reported: questions a second per recipe (the reader reads each question's gold
window and one no-answer window, so its rate is windows/s ÷ 2), medians over rounds, with the
CPU model and threads, as a JSON line and a markdown row per recipe.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = ROOT.parent / "shared" / "datasets" / "squad" / "train-v1.0.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per recipe per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="also time each recipe under bf16 autocast (as rag train does on CPUs with native bf16)",
    )
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (SQuAD's training set, in ../shared/datasets/squad/)")

    import torch
    from train_throughput import mm_gflops
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from rag.cpu import this_cpu
    from rag.generators.minilm import init_cross_attention, model_args, model_class
    from rag.models.logs import quiet_transformers
    from rag.readers.features import label, pad, windows
    from rag.train.checkpoints import batch_order
    from rag.train.data import load_examples
    from rag.train.generator import GenSettings, features, make_batch_loss
    from rag.train.reader import base_folder

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cpu = this_cpu()
    examples = load_examples(args.data)
    random.Random(0).shuffle(examples)
    examples = examples[: 16 * args.steps * (args.rounds + 1)]
    folder = base_folder("all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(folder)

    recipes = {}
    for name, family, attention in [
        ("encoder-decoder", "encoder-decoder", ""),
        ("decoder-only prefix", "decoder-only", "prefix"),
        ("decoder-only causal", "decoder-only", "causal"),
    ]:
        settings = GenSettings(family=family, attention=attention)
        with quiet_transformers():
            model = model_class(family, attention or "prefix").from_pretrained(folder, **model_args(family))
        init_cross_attention(model)
        model.train()
        data = features(tokenizer, examples, settings)
        loss_of = make_batch_loss(model, tokenizer, settings, data)
        recipes[name] = (model, loss_of, batch_order([len(g) for g in data], 16, 0), 1.0)

    with quiet_transformers():
        reader = AutoModelForQuestionAnswering.from_pretrained(folder)
    reader.train()
    reader_data = windows(
        tokenizer, [e.question for e in examples], [e.context for e in examples], max_length=384, stride=128
    )
    for w in reader_data:
        label(w, examples[w.passage].answer_start, examples[w.passage].answer)

    def reader_loss(ids):
        batch = [reader_data[i] for i in ids]
        feeds = {k: torch.from_numpy(v) for k, v in pad(batch, tokenizer.pad_token_id or 0).items()}
        starts, ends = torch.tensor([w.start for w in batch]), torch.tensor([w.end for w in batch])
        return reader(**feeds, start_positions=starts, end_positions=ends).loss, len(batch)

    # a question brings its gold window and one no-answer window: two windows per question
    recipes["reader (encoder-only)"] = (reader, reader_loss, batch_order([len(w) for w in reader_data], 16, 0), 0.5)

    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-5) for name, (m, *_rest) in recipes.items()}
    modes = ["fp32"] + (["bf16"] if args.bf16 else [])
    rates: dict[str, list[float]] = {f"{name}{'' if m == 'fp32' else ' bf16'}": [] for name in recipes for m in modes}
    mm: list[float] = []
    cursor = 1
    for name, (_model, loss_of, batches, _) in recipes.items():  # warm-up
        loss, _n = loss_of(batches[0])
        loss.backward()
        optimizers[name].zero_grad(set_to_none=True)
    for _ in range(args.rounds):
        mm.append(mm_gflops(torch, 16 * 180, 384, 1536, torch.float32))
        for name, (model, loss_of, batches, per_question) in recipes.items():
            for mode in modes:  # the same batches in each precision, one after the other
                seen, started = 0, time.perf_counter()
                for ids in batches[cursor : cursor + args.steps]:
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
                        loss, n = loss_of(ids)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizers[name].step()
                    optimizers[name].zero_grad(set_to_none=True)
                    seen += n
                rates[f"{name}{'' if mode == 'fp32' else ' bf16'}"].append(
                    seen * per_question / (time.perf_counter() - started)
                )
        cursor += args.steps
    result = {
        "cpu": cpu.describe(),
        "threads": args.threads,
        "questions_per_s": {name: round(statistics.median(v), 2) for name, v in rates.items()},
        "parameters_m": {
            name: round(sum(p.numel() for p in m.parameters()) / 1e6, 1) for name, (m, *_r) in recipes.items()
        },
        "mm_gflops_model_shape": round(statistics.median(mm), 1),
    }
    print(json.dumps(result))
    for name, rate in result["questions_per_s"].items():
        print(
            f"| {cpu.model} | {args.threads} | {name} | {result['parameters_m'][name.removesuffix(' bf16')]} | {rate} | {result['mm_gflops_model_shape']} |"
        )


if __name__ == "__main__":
    main()
