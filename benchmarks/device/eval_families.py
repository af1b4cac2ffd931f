"""The three families' curve points on all of SQuAD dev part A, batched on a GPU: what
benchmarks/families.py measures with `rag bench` on a CPU (hours there for 9 models x 4,961
questions x 2 readings), in a minute or two on a lent GPU.

    python3 benchmarks/device/eval_families.py --inputs .dev/part-a.json.xz --family encoder-decoder \\
        --run /tmp/runs/encdec --sizes 2000,8000,16000 --out /tmp/families [--device cuda] [--until EPOCH_S]

Same inputs as `rag bench` (benchmarks/device/part_a_inputs.py wrote the gold paragraph and the
5 hybrid-retrieved passages of every question), same prompts and budgets (each generator's own
`prepare` / `prepare_fid`), greedy decoding of at most 64 new tokens (the bench's default), the
answer cut and scored as the bench does (SQuAD F1 / EM). Only the batching differs: the
encoder-decoder pads its encoder inputs (masked, so each row is what it alone gives) and the
decoder-only family batches prompts of exactly equal length (no padding at all). The reader reads
one question at a time, as in `rag bench`, in PyTorch on the device. Waits for each curve point
to appear (the training runs beside it) until --until; writes OUT/<family>-<N>q-<mode>.jsonl
(one line per question: id, answer, f1, em) and skips files already complete.
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
MAX_NEW_TOKENS = 64  # rag bench's default (rag.config.DEFAULT_MAX_NEW_TOKENS)
MODES = ("gold", "hybrid")


def passages_of(rows: list[dict]):
    from rag.documents import Passage

    return [Passage(**{k: v for k, v in r.items() if k in Passage.__dataclass_fields__}) for r in rows]


def wait_for_point(run: Path, n: int, until: float) -> dict | None:
    """The curve point for `n` questions once out/curve.jsonl records it (None past `until`)."""
    from families import curve_points

    while True:
        if (run / "curve.jsonl").exists():
            point = curve_points(run).get(n)
            if point is not None:
                return point
        if time.time() > until:
            return None
        time.sleep(5)


def marked(mark, run: Path, point: dict, tries: int = 60) -> Path:
    """`mark(run, point)` (the card reads the run's checkpoint for its settings), retried while
    the training beside it has written none yet or is replacing it."""
    for _ in range(tries - 1):
        try:
            return mark(run, point)
        except Exception:  # noqa: BLE001 - no checkpoint yet, or one being replaced: wait
            time.sleep(3)
    return mark(run, point)


def load(family: str, run: Path, point: dict, device: str):
    from families import mark_generator_point, mark_reader_point

    if family == "reader":
        from rag.readers.loading import load_reader

        folder = marked(mark_reader_point, run, point)
        reader = load_reader(str(folder), backend="torch", threads=1)
        reader.logits.model.to(device)
        return reader
    from rag.generators.loading import load_generator

    return load_generator(str(marked(mark_generator_point, run, point)), device=device)


def answer_reader(reader, questions: list[dict], mode: str) -> list[str]:
    return [reader.generate(q["question"], passages_of(q[mode]), max_new_tokens=MAX_NEW_TOKENS).text for q in questions]


def answer_encdec(gen, questions: list[dict], mode: str, batch: int = 64) -> list[str]:
    """Greedy answers, `batch` questions a call: each question's passages encoded (one row each,
    Fusion-in-Decoder for 5 passages; the gold paragraph is one), joined, padded across questions."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    from rag.generators.prompts import cut_answer

    inputs = []
    for q in questions:
        passages = passages_of(q[mode])
        if mode == "gold":
            inputs.append([gen.prepare(q["question"], passages, MAX_NEW_TOKENS)[1]])
        else:
            inputs.append(gen.prepare_fid(q["question"], passages, MAX_NEW_TOKENS)[1])
    order = sorted(range(len(questions)), key=lambda i: sum(len(x) for x in inputs[i]))
    texts: list[str] = [""] * len(questions)
    kwargs = gen.generation_kwargs(MAX_NEW_TOKENS)
    pad = gen.pad_token_id or 0
    for b in range(0, len(order), batch):
        rows = order[b : b + batch]
        flat = [ids for i in rows for ids in inputs[i]]
        longest = max(len(x) for x in flat)
        ids = torch.full((len(flat), longest), pad, dtype=torch.long)
        keep = torch.zeros_like(ids)
        for r, x in enumerate(flat):
            ids[r, : len(x)] = torch.tensor(x)
            keep[r, : len(x)] = 1
        ids, keep = ids.to(gen.device), keep.to(gen.device)
        with torch.inference_mode():
            states = gen.model.encode(ids, keep)
            joined, r = [], 0
            for i in rows:
                parts = [states[r + j][keep[r + j].bool()] for j in range(len(inputs[i]))]
                joined.append(torch.cat(parts))
                r += len(inputs[i])
            width = max(j.shape[0] for j in joined)
            enc = states.new_zeros((len(rows), width, states.shape[-1]))
            mask = torch.zeros((len(rows), width), dtype=torch.long, device=states.device)
            for k, j in enumerate(joined):
                enc[k, : j.shape[0]] = j
                mask[k, : j.shape[0]] = 1
            out = gen.model.generate(
                encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=mask, **kwargs
            )
        for k, i in enumerate(rows):
            texts[i] = cut_answer(gen.tokenizer.decode(out[k, 1:].tolist(), skip_special_tokens=True), False)
    return texts


def answer_deconly(gen, questions: list[dict], mode: str, batch: int = 64) -> list[str]:
    """Greedy answers, prompts of exactly equal length batched together (nothing padded)."""
    import torch

    from rag.generators.prompts import cut_answer

    prompts = [gen.prepare(q["question"], passages_of(q[mode]), MAX_NEW_TOKENS)[1] for q in questions]
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    texts: list[str] = [""] * len(questions)
    kwargs = gen.generation_kwargs(MAX_NEW_TOKENS)
    stop = gen.prompt_style.stop_at_newline
    for length, members in sorted(groups.items()):
        for b in range(0, len(members), batch):
            rows = members[b : b + batch]
            ids = torch.tensor([prompts[i] for i in rows], dtype=torch.long, device=gen.device)
            with torch.inference_mode():
                out = gen.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
            for k, i in enumerate(rows):
                texts[i] = cut_answer(gen.tokenizer.decode(out[k, length:].tolist(), skip_special_tokens=True), stop)
    return texts


ANSWER = {"reader": answer_reader, "encoder-decoder": answer_encdec, "decoder-only": answer_deconly}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--family", choices=sorted(ANSWER), required=True)
    parser.add_argument("--run", type=Path, help="a training run: its curve points at --sizes")
    parser.add_argument("--model", help="instead: one answerer rag loads by name or folder (e.g. minilm-encdec)")
    parser.add_argument("--sizes", default="2000,8000,16000")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--until", type=float, default=None, help="epoch seconds after which no point is awaited")
    parser.add_argument("--limit", type=int, default=None, help="the sample `rag bench --limit N` draws")
    parser.add_argument("--modes", default=",".join(MODES), help="gold, hybrid or both")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a GPU; the cores on a CPU)")
    args = parser.parse_args()

    import torch

    from rag.bench.config import DEFAULT_SAMPLE_SEED
    from rag.bench.runner import sample_questions

    torch.set_num_threads(args.threads)
    with lzma.open(args.inputs, "rt") as f:
        questions = sample_questions(json.load(f)["questions"], args.limit, DEFAULT_SAMPLE_SEED)
    sample = f"-sample{len(questions)}" if args.limit else ""
    args.out.mkdir(parents=True, exist_ok=True)
    until = args.until or time.time() + 3600
    if args.model:
        from rag.answerers import load_answerer

        model = load_answerer(args.model, device=args.device)  # a reader ignores the device: ONNX on the CPU
        evaluate(model, args.family, Path(args.model).name, questions, args.modes, args.out, sample)
        return
    if args.run is None:
        parser.error("give --run (curve points) or --model")
    for n in (int(s) for s in args.sizes.split(",")):
        point = wait_for_point(args.run, n, until)
        if point is None:
            print(f"{args.family}: no {n}-question point by the deadline", file=sys.stderr)
            break
        evaluate(None, args.family, f"{n}q", questions, args.modes, args.out, sample, (args.run, point, args.device))


def evaluate(model, family: str, label: str, questions: list, modes: str, out: Path, sample: str, lazy=None) -> None:
    """Answer and score every question in each mode into OUT/<family>-<label>-<mode><sample>.jsonl
    (a complete file is not redone); `lazy` = (run, point, device) loads the model on first need."""
    from rag.metrics import exact_match, f1

    for mode in modes.split(","):
        path = out / f"{family}-{label}-{mode}{sample}.jsonl"
        if path.exists() and len(path.read_text().splitlines()) == len(questions):
            continue
        model = model or load(family, *lazy)
        t = time.perf_counter()
        answers = ANSWER[family](model, questions, mode)
        seconds = time.perf_counter() - t
        lines = [
            json.dumps({"id": q["id"], "answer": a, "f1": f1(a, q["answers"]), "em": exact_match(a, q["answers"])})
            for q, a in zip(questions, answers)
        ]
        work = path.with_suffix(".tmp")
        work.write_text("\n".join(lines) + "\n", encoding="utf-8")
        work.replace(path)
        mean = sum(json.loads(x)["f1"] for x in lines) / len(lines)
        print(f"{family} {label} {mode}: F1 {mean:.3f} over {len(lines)} in {seconds:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
