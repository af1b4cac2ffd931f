"""float32 against bfloat16 for the offline generators, on the CPU this runs on.

Per preset, the same model is loaded twice (`load_generator(name, dtype=...)`: the cached
float32 weights, converted at load) and every question is answered by both, interleaved (the
order alternates per question) after one untimed warm-up each, with the very same prompt ids
(`g.prepare`: the question and five passages, the gold paragraph and the four after it in its
article, as a RAG prompt of about a thousand tokens). Greedy, at most --max-new-tokens.

Per dtype: prefill tokens/s (prompt forward and first token), decode ms per token (the other
new tokens), whole-answer seconds (median), peak RSS (a fresh subprocess per dtype that loads
the model and answers one question: VmHWM), the share of the memory-bandwidth bound reached in
decode (bandwidth / bytes of weights read per token: 4 or 2 bytes a parameter), and how many
answers are token for token the same as float32's.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/dtype_speed.py [--models qwen2.5-0.5b,gemma3-270m,smollm2]
        [--questions 30] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from llama_cpp_speed import copy_bandwidth, hf_run, squad_items  # noqa: E402

import rag  # noqa: E402,F401  (the thread policy, before torch loads OpenMP)
from rag.bench.system import status_kb  # noqa: E402

DTYPES = ("float32", "bfloat16")


def rag_items(n: int) -> list[tuple[str, list, list[str]]]:
    """(question, five passages, answers): the gold paragraph first, then the four after it."""
    return squad_items(n, passages=5)


def peak_rss(model: str, dtype: str, ids: list[int], max_new: int, threads: int) -> float | None:
    """VmHWM of a fresh process that loads `model` in `dtype` and answers once (MiB)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"ids": ids, "max_new": max_new}, f)
    try:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--probe",
                f.name,
                "--models",
                model,
                "--dtype",
                dtype,
                "--threads",
                str(threads),
            ],
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_MiB"] if out.returncode == 0 else None


def probe(args: argparse.Namespace) -> None:
    import torch

    from rag.generators import load_generator

    torch.set_num_threads(args.threads)
    spec = json.loads(Path(args.probe).read_text())
    g = load_generator(args.models, dtype=args.dtype)
    hf_run(g, spec["ids"], spec["max_new"])
    print(json.dumps({"peak_rss_MiB": status_kb("VmHWM") / 1024}))


def bench_model(name: str, items, args, bandwidth: dict) -> dict:
    import torch

    from rag.bench.metrics import f1
    from rag.generators import clear_loaded, load_generator
    from rag.generators.prompts import cut_answer

    torch.set_num_threads(args.threads)
    clear_loaded()
    models = {dtype: load_generator(name, dtype=dtype) for dtype in DTYPES}
    g = models["float32"]
    prepared = [
        (q, g.prepare(q, passages, max_new_tokens=args.max_new_tokens)[1], answers) for q, passages, answers in items
    ]
    for m in models.values():  # warm-up, untimed
        hf_run(m, prepared[0][1], 4)
    runs: dict[str, list[dict]] = {d: [] for d in DTYPES}
    for k, (_question, ids, answers) in enumerate(prepared):
        for dtype in DTYPES if k % 2 == 0 else DTYPES[::-1]:
            r = hf_run(models[dtype], ids, args.max_new_tokens)
            r["prompt_tokens"] = len(ids)
            r["f1"] = f1(
                cut_answer(g.tokenizer.decode(r["tokens"], skip_special_tokens=True), g.prompt_style.stop_at_newline),
                answers,
            )
            runs[dtype].append(r)
        print(
            f"  [{name} {k + 1}/{len(prepared)}] prompt {len(ids)} tokens; "
            f"{'same' if runs['float32'][-1]['tokens'] == runs['bfloat16'][-1]['tokens'] else 'different'}",
            flush=True,
        )
    params = g.num_parameters
    out = {"model": name, "parameters": params, "questions": len(prepared)}
    for dtype, rows in runs.items():
        pre_tok = sum(r["prompt_tokens"] for r in rows)
        dec_tok = sum(len(r["tokens"]) - 1 for r in rows)
        dec_s = sum(r["decode_s"] for r in rows)
        decode_tok_s = dec_tok / dec_s if dec_s > 0 else 0.0
        bytes_per_token = (4 if dtype == "float32" else 2) * params
        out[dtype] = {
            "prefill_tok_s": pre_tok / sum(r["prefill_s"] for r in rows),
            "decode_ms_per_token": 1000 * dec_s / dec_tok if dec_tok else None,
            "answer_s_median": statistics.median(r["prefill_s"] + r["decode_s"] for r in rows),
            "answer_s_total": sum(r["prefill_s"] + r["decode_s"] for r in rows),
            "f1": statistics.mean(r["f1"] for r in rows),
            "share_of_bound": decode_tok_s / (bandwidth["traffic_GBps"] * 1e9 / bytes_per_token),
            "peak_rss_MiB": None
            if args.no_rss
            else peak_rss(name, dtype, prepared[0][1], args.max_new_tokens, args.threads),
        }
    out["identical"] = sum(a["tokens"] == b["tokens"] for a, b in zip(runs["float32"], runs["bfloat16"]))
    out["speedup_whole_answers"] = out["float32"]["answer_s_total"] / out["bfloat16"]["answer_s_total"]
    out["speedup_prefill"] = out["bfloat16"]["prefill_tok_s"] / out["float32"]["prefill_tok_s"]
    del models
    clear_loaded()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="qwen2.5-0.5b,gemma3-270m,smollm2")
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        return probe(args)

    from rag.cpu import choose_dtype, this_cpu

    print(f"CPU: {this_cpu().describe()}; auto picks {choose_dtype('auto').dtype}; threads {args.threads}")
    bandwidth = copy_bandwidth()
    items = rag_items(args.questions)
    results = [bench_model(name, items, args, bandwidth) for name in args.models.split(",")]
    print(f"\nmemory bandwidth (numpy copy, read + write): {bandwidth['traffic_GBps']:.1f} GB/s")
    print(
        "\n| model | dtype | prefill tok/s | decode ms/token | answer s (median) | share of bound | peak RSS MiB | F1 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for dtype in DTYPES:
            d = r[dtype]
            rss = "-" if d["peak_rss_MiB"] is None else f"{d['peak_rss_MiB']:.0f}"
            print(
                f"| {r['model']} | {dtype} | {d['prefill_tok_s']:.0f} | {d['decode_ms_per_token']:.0f} | "
                f"{d['answer_s_median']:.2f} | {d['share_of_bound']:.0%} | {rss} | {d['f1']:.3f} |"
            )
    print()
    for r in results:
        print(
            f"{r['model']}: whole answers {r['speedup_whole_answers']:.2f}x faster in bfloat16 (prefill "
            f"{r['speedup_prefill']:.2f}x); greedy tokens identical {r['identical']}/{r['questions']}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"cpu": this_cpu().describe(), "bandwidth": bandwidth, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
