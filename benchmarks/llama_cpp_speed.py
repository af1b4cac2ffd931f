"""llama.cpp (llama-cpp-python) against transformers on the project's offline GGUF generators.

Both backends get the very same prompt token ids, built by the project itself
(`load_generator(name).prepare(question, [gold passage])`), and decode greedily up to
`--max-new-tokens` new tokens or an id in `g.eos_token_ids`:

  hf     `g.model.generate(ids, mask, **g.generation_kwargs(n))`: the GGUF dequantised (rag's cached
         float32 conversion), computing in the dtype rag chooses for this CPU (bfloat16 where it
         is native: `$RAG_DTYPE` to pin one), torch.set_num_threads(threads)
  llama  `llama_cpp.Llama(gguf, n_ctx=2048, n_threads=threads, n_threads_batch=threads)`:
         `eval(ids)` (prefill), then argmax of the last logits and `eval([token])` per token

Per question the two run interleaved in one process (the order alternates per question) after
one untimed warm-up each. Prefill = prompt forward (+ first token); decode = the remaining
new tokens, n_new - 1 forwards, for both backends. Wall time (perf_counter) and process CPU
time (process_time, all threads) are taken for each phase.

Peak RSS of each backend is measured apart, in a fresh subprocess per backend and model that
imports only what that backend needs, loads the model and answers one question (VmHWM of
that process: ru_maxrss would carry the parent's peak over fork + exec).

SQuAD v1.1 dev part A questions (spread evenly over the file) with their gold paragraph as
the only passage; answers scored with rag.bench.metrics (official SQuAD EM/F1), after the
project's own `cut_answer` (first line only for completion-style prompts).

The decode bound is memory bandwidth / bytes of weights read per generated token:
  hf     4 bytes x parameters (tied embeddings counted once: read once, as the output layer)
  llama  the GGUF's tensor bytes, minus the token-embedding table when the file has a separate
         output.weight (then the table is only a row lookup); with tied embeddings the table is
         the output layer and is read in full every token
Bandwidth: numpy copy of a 512 MiB array, best of 3 rounds x 5 a second apart (other load on
the machine makes single rounds noisy), counted as read + write bytes (STREAM "Copy"
convention; single thread).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/llama_cpp_speed.py \
        [--models smollm2,qwen2.5-0.5b] [--questions 10] [--passages 1|5] [--threads 2] [--json out.json]

The last lines per model say whether the per-CPU rule for offering llama.cpp is met: whole
answers faster (median) and the same greedy tokens for every question.

Needs llama-cpp-python (not a project dependency): build it portable (GGML_NATIVE=OFF).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rag  # noqa: E402,F401  (sets the thread policy before torch / llama.cpp load OpenMP)
from rag.bench.system import PeakMemory, status_kb  # noqa: E402
from rag.cpu import this_cpu  # noqa: E402

SQUAD = ROOT.parent / "shared" / "datasets" / "squad" / "dev-v1.1-part-a.json"
DEFAULT_MODELS = "smollm2,qwen2.5-0.5b"
N_CTX = 2048


# --------------------------------------------------------------------------- inputs


def squad_items(n: int, passages: int = 1) -> list[tuple[str, list, list[str]]]:
    """(question, passages, answers) for n questions spread evenly over the file: the gold
    paragraph first, then the paragraphs after it in the file up to `passages` (5 is the shape of
    a RAG prompt, about 500-1000 tokens; 1 is the gold paragraph alone)."""
    from rag.bench.datasets import load_squad
    from rag.documents import Passage

    bench = load_squad(SQUAD)
    order = [d.path for d in bench.documents]
    docs = {d.path: d.text for d in bench.documents}
    step = max(1, len(bench.questions) // n)
    items = []
    for q in bench.questions[::step][:n]:
        at = order.index(next(iter(q.gold)))
        chosen = [
            Passage(
                chunk_id=i,
                doc_path=p,
                text=docs[p],
                start=0,
                end=len(docs[p]),
                first_line=1,
                last_line=docs[p].count("\n") + 1,
                score=1.0,
                rank=i + 1,
            )
            for i, p in enumerate(order[at : at + passages])
        ]
        items.append((q.question, chosen, q.answers))
    return items


def gguf_path(name: str) -> Path:
    from rag.generators.chunked import assemble
    from rag.generators.chunked import available as chunked_available
    from rag.generators.presets import PRESETS, preset_gguf

    preset = PRESETS[name]
    path = preset_gguf(preset)
    if path is None and preset.chunked and chunked_available(preset.chunked):
        path = assemble(preset.chunked, name, print)  # installed as chunk packages, not yet joined
    if path is None:
        raise SystemExit(f"{name}: GGUF file not on disk (run `rag models pull {name}`)")
    return path


def gguf_weights(path: Path) -> dict:
    """Tensor bytes of a GGUF file and what one generated token reads of them."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    sizes = {t.name: int(t.n_bytes) for t in reader.tensors}
    total = sum(sizes.values())
    embd = sizes.get("token_embd.weight", 0)
    untied = "output.weight" in sizes
    embd_type = next((t.tensor_type.name for t in reader.tensors if t.name == "token_embd.weight"), "?")
    return {
        "file_bytes": path.stat().st_size,
        "tensor_bytes": total,
        "token_embd_bytes": embd,
        "token_embd_type": embd_type,
        "tied": not untied,
        "read_per_token": total - embd if untied else total,
    }


def copy_bandwidth(mib: int = 512, repeats: int = 5, rounds: int = 3) -> dict:
    import numpy as np

    src = np.ones(mib * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in
    best = float("inf")
    for r in range(rounds):
        if r:
            time.sleep(1)
        best = min(best, *(_timed(lambda: np.copyto(dst, src)) for _ in range(repeats)))
    return {
        "array_MiB": mib,
        "best_s": best,
        "copy_GBps": src.nbytes / best / 1e9,
        "traffic_GBps": 2 * src.nbytes / best / 1e9,
    }


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --------------------------------------------------------------------------- backends


def hf_run(g, ids: list[int], max_new: int) -> dict:
    import torch
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):
        def __init__(self) -> None:
            self.marks: list[tuple[float, float]] = []

        def put(self, value) -> None:
            self.marks.append((time.perf_counter(), time.process_time()))

        def end(self) -> None:
            pass

    clock = Clock()
    input_ids = torch.tensor([ids], dtype=torch.long)
    w0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        out = g.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            streamer=clock,
            **g.generation_kwargs(max_new),
        )
    w2, c2 = time.perf_counter(), time.process_time()
    new = out[0, len(ids) :].tolist()
    # marks[0] is the prompt (put before the first forward), marks[1] the first new token
    w1, c1 = clock.marks[1] if len(clock.marks) > 1 else (w2, c2)
    return {"tokens": new, "prefill_s": w1 - w0, "prefill_cpu": c1 - c0, "decode_s": w2 - w1, "decode_cpu": c2 - c1}


def llama_load(path: Path, threads: int):
    from llama_cpp import Llama

    return Llama(
        model_path=str(path), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads, verbose=False, logits_all=False
    )


def llama_run(llm, ids: list[int], eos: set[int], max_new: int) -> dict:
    import numpy as np

    n_vocab = llm.n_vocab()

    def next_token() -> int:
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,))
        return int(np.argmax(logits))

    w0, c0 = time.perf_counter(), time.process_time()
    llm.reset()
    llm.eval(ids)
    tok = next_token()
    w1, c1 = time.perf_counter(), time.process_time()
    new = [tok]
    while tok not in eos and len(new) < max_new:
        llm.eval([tok])
        tok = next_token()
        new.append(tok)
    w2, c2 = time.perf_counter(), time.process_time()
    return {"tokens": new, "prefill_s": w1 - w0, "prefill_cpu": c1 - c0, "decode_s": w2 - w1, "decode_cpu": c2 - c1}


def llama_eog_ids(llm) -> list[int]:
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    return [i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)]


# --------------------------------------------------------------------------- RSS probes


def probe(args: argparse.Namespace) -> None:
    """Child process: load one backend, answer one prompt, print RSS figures as JSON."""
    spec = json.loads(Path(args.probe_input).read_text())
    ids, eos, max_new = spec["ids"], set(spec["eos"]), spec["max_new"]
    if args.probe == "hf":
        import torch
        import transformers  # noqa: F401

        torch.set_num_threads(args.threads)
        from rag.generators import load_generator

        before = PeakMemory.current_mb()
        g = load_generator(args.models)
        loaded = PeakMemory.current_mb()
        hf_run(g, ids, max_new)
    else:
        import llama_cpp  # noqa: F401

        before = PeakMemory.current_mb()
        llm = llama_load(Path(spec["gguf"]), args.threads)
        loaded = PeakMemory.current_mb()
        llama_run(llm, ids, eos, max_new)
    hwm = status_kb("VmHWM")  # this process's own peak: not inherited across fork + exec, unlike ru_maxrss
    peak = hwm / 1024 if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rss_after_imports_MiB": before, "rss_after_load_MiB": loaded, "peak_rss_MiB": peak}))


def run_probe(backend: str, model: str, spec: dict, threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--probe",
                backend,
                "--probe-input",
                f.name,
                "--models",
                model,
                "--threads",
                str(threads),
            ],
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        return {"error": f"rc={out.returncode}: {out.stderr.strip().splitlines()[-1:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- one model


def bench_model(name: str, items, args, bandwidth: dict) -> dict:
    import torch

    from rag.bench.metrics import exact_match, f1
    from rag.generators import load_generator
    from rag.generators.prompts import cut_answer

    torch.set_num_threads(args.threads)
    path = gguf_path(name)
    weights = gguf_weights(path)
    t = time.perf_counter()
    g = load_generator(name)
    hf_load = time.perf_counter() - t
    t = time.perf_counter()
    llm = llama_load(path, args.threads)
    llama_load_s = time.perf_counter() - t
    eos = set(g.eos_token_ids)
    stop = g.prompt_style.stop_at_newline
    emb_in, emb_out = g.model.get_input_embeddings(), g.model.get_output_embeddings()
    hf_tied = emb_out is not None and emb_in.weight.data_ptr() == emb_out.weight.data_ptr()
    hf_params = g.num_parameters

    def text(tokens: list[int]) -> str:
        return cut_answer(g.tokenizer.decode(tokens, skip_special_tokens=True), stop)

    prepared = []
    tok_mismatch = []
    for question, passages, answers in items:
        fit, ids = g.prepare(question, passages, max_new_tokens=args.max_new_tokens)
        prepared.append((question, ids, answers))
        # does llama.cpp's own tokenizer give the same ids for the rendered prompt? (info only)
        own = llm.tokenize(fit.prompt.encode("utf-8"), add_bos=g.prompt_style.add_special_tokens, special=True)
        if own != ids:
            first = next((i for i, (a, b) in enumerate(zip(own, ids)) if a != b), min(len(own), len(ids)))
            tok_mismatch.append(
                {
                    "question": question,
                    "hf_len": len(ids),
                    "llama_len": len(own),
                    "first_diff": first,
                    "hf_ids": ids[max(0, first - 2) : first + 3],
                    "llama_ids": own[max(0, first - 2) : first + 3],
                }
            )

    # warm-up (untimed)
    hf_run(g, prepared[0][1], 4)
    llama_run(llm, prepared[0][1], eos, 4)

    rows = []
    for k, (question, ids, answers) in enumerate(prepared):
        order = ("hf", "llama") if k % 2 == 0 else ("llama", "hf")
        res = {}
        for backend in order:
            res[backend] = (
                hf_run(g, ids, args.max_new_tokens)
                if backend == "hf"
                else llama_run(llm, ids, eos, args.max_new_tokens)
            )
        row = {"question": question, "answers": answers, "prompt_tokens": len(ids)}
        for b in ("hf", "llama"):
            r = res[b]
            r["text"] = text(r["tokens"])
            r["f1"] = f1(r["text"], answers)
            r["em"] = exact_match(r["text"], answers)
            row[b] = r
        a, b = res["hf"]["tokens"], res["llama"]["tokens"]
        row["identical"] = a == b
        row["first_diff"] = (
            None if a == b else next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        )
        rows.append(row)
        print(
            f"  [{name} {k + 1}/{len(prepared)}] prompt {len(ids)} tok; hf {len(a)} new, llama {len(b)} new; "
            f"{'same' if row['identical'] else 'DIFFERENT at ' + str(row['first_diff'])}",
            flush=True,
        )

    def agg(b: str) -> dict:
        pre_tok = sum(r["prompt_tokens"] for r in rows)
        dec_tok = sum(len(r[b]["tokens"]) - 1 for r in rows)
        pre_s = sum(r[b]["prefill_s"] for r in rows)
        dec_s = sum(r[b]["decode_s"] for r in rows)
        out = {
            "prefill_tok_s": pre_tok / pre_s,
            "decode_tok_s": dec_tok / dec_s if dec_s > 0 else 0.0,
            "prefill_s": pre_s,
            "decode_s": dec_s,
            "prefill_cpu_s": sum(r[b]["prefill_cpu"] for r in rows),
            "decode_cpu_s": sum(r[b]["decode_cpu"] for r in rows),
            "new_tokens": sum(len(r[b]["tokens"]) for r in rows),
            "decode_tokens": dec_tok,
            "f1": statistics.mean(r[b]["f1"] for r in rows),
            "em": statistics.mean(r[b]["em"] for r in rows),
            "answer_s_median": statistics.median(r[b]["prefill_s"] + r[b]["decode_s"] for r in rows),
            "median_decode_tok_s": statistics.median(
                (len(r[b]["tokens"]) - 1) / r[b]["decode_s"]
                for r in rows
                if r[b]["decode_s"] > 0 and len(r[b]["tokens"]) > 1
            ),
        }
        return out

    hf, ll = agg("hf"), agg("llama")
    hf_bytes = 4 * (hf_params if hf_tied else hf_params - emb_in.weight.numel())
    bw = bandwidth["traffic_GBps"] * 1e9
    hf["bytes_per_token"], ll["bytes_per_token"] = hf_bytes, weights["read_per_token"]
    hf["bound_tok_s"], ll["bound_tok_s"] = bw / hf_bytes, bw / weights["read_per_token"]
    hf["fraction_of_bound"] = hf["decode_tok_s"] / hf["bound_tok_s"]
    ll["fraction_of_bound"] = ll["decode_tok_s"] / ll["bound_tok_s"]
    hf["load_s"], ll["load_s"] = hf_load, llama_load_s
    hf["dtype"] = g.dtype  # what load_generator chose for this CPU (bfloat16 where it is native)

    llama_eog = llama_eog_ids(llm)
    spec = {"ids": prepared[0][1], "eos": sorted(eos), "max_new": args.max_new_tokens, "gguf": str(path)}
    del llm
    rss = {} if args.no_rss else {b: run_probe(b, name, spec, args.threads) for b in ("hf", "llama")}
    return {
        "model": name,
        "gguf": str(path),
        "weights": weights,
        "hf_params": hf_params,
        "hf_tied": hf_tied,
        "eos_project": sorted(eos),
        "eog_llama": llama_eog,
        "prompt_style": g.prompt_style.name,
        "tokenizer_mismatches": tok_mismatch,
        "hf": hf,
        "llama": ll,
        "rss": rss,
        "rows": rows,
        "identical": sum(r["identical"] for r in rows),
        "total": len(rows),
    }


# --------------------------------------------------------------------------- report


def report(results: list[dict], bandwidth: dict, args, load: tuple) -> None:
    print(
        f"\n{this_cpu().describe()}; threads {args.threads}, {args.questions} SQuAD questions "
        f"({'gold paragraph only' if args.passages == 1 else f'gold paragraph and the {args.passages - 1} after it'}), "
        f"greedy, max {args.max_new_tokens} new tokens; load average before/after {load[0]:.2f}/{load[1]:.2f}"
    )
    print(
        f"memory copy bandwidth (numpy, 512 MiB, best of 15, 1 thread): {bandwidth['copy_GBps']:.2f} GB/s copied "
        f"= {bandwidth['traffic_GBps']:.2f} GB/s read+write (used for the bound)\n"
    )
    head = (
        "| model | backend | prefill tok/s | decode tok/s | prefill CPU s | decode CPU s | new tok | "
        "MB read/token | bound tok/s | of bound | peak RSS MiB | load s | F1 | EM |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for res in results:
        for b in ("hf", "llama"):
            r = res[b]
            rss = res["rss"].get(b, {})
            peak = f"{rss['peak_rss_MiB']:.0f}" if "peak_rss_MiB" in rss else rss.get("error", "-")
            print(
                f"| {res['model']} | {'transformers ' + r.get('dtype', 'float32') if b == 'hf' else 'llama.cpp GGUF'} | "
                f"{r['prefill_tok_s']:.1f} | {r['decode_tok_s']:.1f} | {r['prefill_cpu_s']:.1f} | "
                f"{r['decode_cpu_s']:.1f} | {r['new_tokens']} | {r['bytes_per_token'] / 1e6:.0f} | "
                f"{r['bound_tok_s']:.1f} | {r['fraction_of_bound']:.0%} | {peak} | {r['load_s']:.1f} | "
                f"{r['f1']:.3f} | {r['em']:.2f} |"
            )
    print()
    for res in results:
        hf, ll = res["hf"], res["llama"]
        w = res["weights"]
        print(
            f"{res['model']}: llama.cpp/transformers speed-up prefill x{ll['prefill_tok_s'] / hf['prefill_tok_s']:.2f}, "
            f"decode x{ll['decode_tok_s'] / hf['decode_tok_s']:.2f} (median per-question decode "
            f"{hf['median_decode_tok_s']:.1f} vs {ll['median_decode_tok_s']:.1f} tok/s); "
            f"greedy identical {res['identical']}/{res['total']}"
        )
        ratio = hf["answer_s_median"] / ll["answer_s_median"]
        offer = ratio > 1 and res["identical"] == res["total"]
        print(
            f"  whole answers (median): transformers {hf.get('dtype', 'float32')} {hf['answer_s_median']:.2f} s, "
            f"llama.cpp {ll['answer_s_median']:.2f} s (x{ratio:.2f}); the rule (faster end to end and the same "
            f"greedy tokens for every question): {'met' if offer else 'not met'} on this CPU"
        )
        print(
            f"  GGUF {w['file_bytes'] / 1e6:.1f} MB, tensors {w['tensor_bytes'] / 1e6:.1f} MB, token_embd "
            f"{w['token_embd_bytes'] / 1e6:.1f} MB ({w['token_embd_type']}), "
            f"{'tied (table read in full as output layer)' if w['tied'] else 'untied (table excluded)'}; "
            f"hf params {res['hf_params'] / 1e6:.1f}M tied={res['hf_tied']}"
        )
        print(
            f"  eos ids (project): {res['eos_project']}; llama.cpp EOG ids: {res['eog_llama']}; "
            f"prompt style {res['prompt_style']}"
        )
        if res["tokenizer_mismatches"]:
            print(
                f"  llama.cpp tokenize(prompt) != project ids for {len(res['tokenizer_mismatches'])}/{res['total']}: "
                f"{res['tokenizer_mismatches'][0]}"
            )
        else:
            print(f"  llama.cpp tokenize(prompt) == project ids for all {res['total']} prompts")
        for b in ("hf", "llama"):
            if res["rss"].get(b):
                print(f"  RSS {b}: {res['rss'][b]}")
        for r in res["rows"]:
            if not r["identical"]:
                print(
                    f"  DIFF at token {r['first_diff']}: {r['question']!r} gold {r['answers'][0]!r}\n"
                    f"     hf:    {r['hf']['text']!r} (F1 {r['hf']['f1']:.2f})\n"
                    f"     llama: {r['llama']['text']!r} (F1 {r['llama']['f1']:.2f})"
                )
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated presets")
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--passages", type=int, default=1, help="1: the gold paragraph; 5: a RAG-sized prompt")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--json", help="also write every figure (and each answer) to this file")
    parser.add_argument("--probe", choices=("hf", "llama"), help=argparse.SUPPRESS)
    parser.add_argument("--probe-input", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args)
        return

    load0 = os.getloadavg()[0]
    bandwidth = copy_bandwidth()
    items = squad_items(args.questions, args.passages)
    results = []
    for name in args.models.split(","):
        print(f"{name} ...", flush=True)
        results.append(bench_model(name.strip(), items, args, bandwidth))
    report(results, bandwidth, args, (load0, os.getloadavg()[0]))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "cpu": this_cpu().describe(),
                    "bandwidth": bandwidth,
                    "threads": args.threads,
                    "passages": args.passages,
                    "results": results,
                },
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
