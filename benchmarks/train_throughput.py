"""How fast `rag train reader` trains on this CPU, and what share of its matrix-multiply throughput
that is.

    .venv/bin/python benchmarks/train_throughput.py [--threads 2] [--steps 12] [--max-length 384]

In one process, interleaved: (1) training steps of the reader's own recipe (MiniLM + span head,
batches of 16 length-grouped SQuAD training windows, AdamW, clipped gradients) timed as windows
and tokens a second; (2) `torch.mm` in float32 on the shapes the model multiplies (tokens x 384 by
384 x 1536) and on a square 2048 x 2048, as GFLOP/s. The model's training FLOPs per token (6 x the
non-embedding parameters, plus attention's 12 x layers x tokens-in-window x hidden) turned into
GFLOP/s give the share of the measured `torch.mm` rate the training reaches. Where the CPU
multiplies bfloat16 natively (`amx_bf16`/`avx512_bf16`), `--bf16` times steps under bf16 autocast
too. Prints a markdown row with the CPU model and thread count.
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
DATA = ROOT.parent / "shared" / "datasets" / "squad" / "train-v1.0.json"


def mm_gflops(torch, m: int, k: int, n: int, dtype, seconds: float = 2.0) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    torch.mm(a, b)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.mm(a, b)
        runs += 1
    return 2 * m * k * n * runs / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12, help="timed training steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--bf16", action="store_true", help="also time steps under bf16 autocast")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (SQuAD's training set, in ../shared/datasets/squad/)")

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from rag.cpu import this_cpu
    from rag.readers.features import label, pad, windows
    from rag.train.checkpoints import batch_order
    from rag.train.data import load_examples
    from rag.train.reader import base_folder

    torch.set_num_threads(args.threads)
    cpu = this_cpu()
    examples = load_examples(args.data)
    random.Random(0).shuffle(examples)
    examples = examples[: 16 * args.steps * args.rounds * 2]
    folder = base_folder("all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForQuestionAnswering.from_pretrained(folder)
    model.train()
    data = windows(
        tokenizer,
        [e.question for e in examples],
        [e.context for e in examples],
        max_length=args.max_length,
        stride=128,
    )
    for w in data:
        label(w, examples[w.passage].answer_start, examples[w.passage].answer)
    batches = batch_order([len(w) for w in data], 16, 0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    config = model.config
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    dense = sum(p.numel() for p in model.parameters()) - embedding

    def step(ids, bf16: bool) -> tuple[int, int]:
        batch = [data[i] for i in ids]
        feeds = {k: torch.from_numpy(v) for k, v in pad(batch, tokenizer.pad_token_id or 0).items()}
        starts, ends = torch.tensor([w.start for w in batch]), torch.tensor([w.end for w in batch])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**feeds, start_positions=starts, end_positions=ends).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        padded = feeds["input_ids"].shape
        return len(batch), padded[0] * padded[1]

    def flops(tokens_by_window: list[int]) -> float:
        per = 0.0
        for n in tokens_by_window:
            per += 6 * dense * n + 12 * config.num_hidden_layers * n * n * config.hidden_size
        return per

    modes = [False] + ([True] if args.bf16 else [])
    rates: dict[str, list[float]] = {"fp32": [], "bf16": [], "tokens": [], "share": [], "mm_model": [], "mm_square": []}
    cursor = 0
    step(batches[cursor], False)  # warm-up
    cursor += 1
    for _ in range(args.rounds):
        rates["mm_model"].append(mm_gflops(torch, 16 * 180, 384, 1536, torch.float32))
        rates["mm_square"].append(mm_gflops(torch, 2048, 2048, 2048, torch.float32))
        for bf16 in modes:
            seen = tokens = 0
            work = 0.0
            started = time.perf_counter()
            for ids in batches[cursor : cursor + args.steps]:
                n, padded = step(ids, bf16)
                seen += n
                tokens += padded
                work += flops([padded // n] * n)
            seconds = time.perf_counter() - started
            cursor += args.steps
            rates["bf16" if bf16 else "fp32"].append(seen / seconds)
            if not bf16:
                rates["tokens"].append(tokens / seconds)
                rates["share"].append(work / seconds / 1e9)
    median = {k: statistics.median(v) for k, v in rates.items() if v}
    result = {
        "cpu": cpu.describe(),
        "threads": args.threads,
        "max_length": args.max_length,
        "windows_per_s_fp32": round(median["fp32"], 2),
        "padded_tokens_per_s": round(median["tokens"]),
        "train_gflops": round(median["share"], 1),
        "mm_gflops_model_shape": round(median["mm_model"], 1),
        "mm_gflops_square": round(median["mm_square"], 1),
        "share_of_mm_model_shape": round(median["share"] / median["mm_model"], 3),
    }
    if "bf16" in median:
        result["windows_per_s_bf16"] = round(median["bf16"], 2)
    print(json.dumps(result))
    print(
        f"| {cpu.model} | {args.threads} | {result['windows_per_s_fp32']} | {result['padded_tokens_per_s']} | "
        f"{result['train_gflops']} | {result['mm_gflops_model_shape']} | {result['mm_gflops_square']} | "
        f"{result['share_of_mm_model_shape']:.0%} |"
    )


if __name__ == "__main__":
    main()
