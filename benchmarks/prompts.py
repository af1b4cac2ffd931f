"""Prompt variants for the offline generators, scored on SQuAD v1.1 dev part A only.

Each variant answers the same questions (a seeded sample, the gold paragraph as the one
passage, so the prompt and not retrieval is what varies), greedy, and gets EM and F1. The
variants run interleaved per question so that a noisy machine slows them all alike.

    .venv/bin/python benchmarks/prompts.py -g smollm2 --questions 40 [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SQUAD = ROOT.parent / "shared" / "datasets" / "squad" / "dev-v1.1-part-a.json"

# (name, system prompt, line after the question) for chat models.
CHAT = (
    (
        "before (issue 3)",
        "Answer the question using only the numbered context passages. Answer briefly; if the "
        "passages do not hold the answer, say you do not know.",
        "",
    ),
    ("few words", "Answer the question from the context in a few words.", ""),
    ("few words, repeated", "Answer the question from the context in a few words.", "Answer in a few words."),
    (
        "shortest phrase",
        "Answer with the shortest phrase from the context that answers the question. Do not write a sentence.",
        "",
    ),
)
# (name, text before the answer) for base models: the prompt ends with it.
COMPLETION = (
    ("Answer:", "Answer:"),
    ("Short answer:", "Short answer:"),
    ("Answer (a few words):", "Answer (a few words):"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-g", "--generator", default="smollm2")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not SQUAD.exists():
        raise SystemExit(f"{SQUAD} is not here: this benchmark needs ../shared/datasets")

    import torch

    from rag.bench.answering import document_texts, oracle_passages
    from rag.bench.datasets import load_dataset
    from rag.bench.metrics import exact_match, f1
    from rag.bench.runner import sample_questions
    from rag.generators import load_generator
    from rag.generators.prompts import ChatPrompt, CompletionPrompt

    torch.set_num_threads(args.threads)
    bench = load_dataset(SQUAD)
    questions = sample_questions(bench.questions, args.questions, args.seed)
    texts = document_texts(bench)
    generator = load_generator(args.generator)
    if generator.prompt_style.name == "chat":
        styles = {name: ChatPrompt(generator.tokenizer, system, suffix) for name, system, suffix in CHAT}
    else:
        styles = {name: CompletionPrompt(cue) for name, cue in COMPLETION}
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in styles}
    seconds: dict[str, float] = {name: 0.0 for name in styles}
    examples: dict[str, list[str]] = {name: [] for name in styles}
    for i, q in enumerate(questions):
        passages = oracle_passages(q, texts, 1)
        for name, style in styles.items() if i % 2 == 0 else reversed(list(styles.items())):
            generator.prompt_style = style
            started = time.perf_counter()
            answer = generator.generate(q.question, passages, max_new_tokens=args.max_new_tokens)
            seconds[name] += time.perf_counter() - started
            scores[name].append((exact_match(answer.text, q.answers), f1(answer.text, q.answers)))
            if len(examples[name]) < 3:
                examples[name].append(f"{q.question} -> {answer.text!r} (gold {q.answers[0]!r})")
    print(f"{args.generator}: {len(questions)} SQuAD part A questions (seed {args.seed}), gold paragraph, greedy")
    results = {}
    for name in styles:
        em = statistics.fmean(s[0] for s in scores[name])
        f = statistics.fmean(s[1] for s in scores[name])
        results[name] = {"em": round(em, 3), "f1": round(f, 3), "seconds": round(seconds[name], 1)}
        print(f"  {name:>24}: EM {em:.3f}  F1 {f:.3f}  {seconds[name]:6.1f} s")
        for line in examples[name]:
            print(f"      {line}")
    if args.out:
        Path(args.out).write_text(
            json.dumps({"generator": args.generator, "questions": len(questions), "results": results}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
