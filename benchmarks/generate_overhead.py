"""SmolLM2 through `Pipeline.ask` against a bare `model.generate` on the identical prompt,
and SmolLM2's first load (GGUF conversion) against its second (safetensors cache).

Per question, in the same process and interleaved (ask, bare, ask, bare, ...):
  ask  = Pipeline.ask: retrieval + budget + tokenisation + generate + decode
  bare = model.generate on the very prompt ids ask used, with the same settings
The overhead is the median over questions of ask/bare - 1 (target <= 5%). Retrieval is part of
`ask` and is reported apart. Loads are timed in fresh processes with an empty RAG_CACHE (first)
and then the filled one (second); each figure excludes importing torch and transformers.

    .venv/bin/python benchmarks/generate_overhead.py [--questions 10] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
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

LOAD_SNIPPET = (
    "import sys, time; sys.path.insert(0, {root!r}); import torch, transformers; "
    "from rag.generators import load_generator; t = time.perf_counter(); load_generator('smollm2'); "
    "print(time.perf_counter() - t)"
)


def timed_load(cache: str) -> float:
    env = {**os.environ, "RAG_CACHE": cache}
    out = subprocess.run(
        [sys.executable, "-c", LOAD_SNIPPET.format(root=str(ROOT))], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rag-cache-") as cache:
        first, second = timed_load(cache), timed_load(cache)
    print(
        f"smollm2 load: first (convert GGUF) {first:.1f} s, second (cached safetensors) {second:.1f} s, "
        f"ratio {second / first:.2f} (target <= 0.25)"
    )

    import torch

    from rag.generators import load_generator
    from rag.index import Index
    from rag.pipeline import GenerationSettings, Pipeline

    work = Path(tempfile.mkdtemp(prefix="rag-overhead-"))
    index = Index.build(ROOT / "corpora" / "encoder-roles" / "docs", work / "idx", warn=lambda m: None)
    generator = load_generator("smollm2")
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    pipeline = Pipeline(index, generator, k=5, settings=settings)
    questions = [json.loads(line)["question"] for line in (ROOT / "corpora/encoder-roles/qa.jsonl").open()]
    questions = questions[:: max(1, len(questions) // args.questions)][: args.questions]
    pipeline.ask(questions[0])  # warm-up

    ratios, asks, bares, retrievals = [], [], [], []
    for q in questions:
        passages = index.search(q, 5)
        _, ids = generator.prepare(q, passages, args.max_new_tokens)
        kwargs = generator.generation_kwargs(args.max_new_tokens)
        input_ids = torch.tensor([ids])
        for _ in range(args.repeats):
            t = time.perf_counter()
            answer = pipeline.ask(q)
            ask_s = time.perf_counter() - t
            t = time.perf_counter()
            with torch.inference_mode():
                out = generator.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
            bare_s = time.perf_counter() - t
            new = out.shape[1] - input_ids.shape[1]
            if new != answer.output_tokens:  # same prompt, same greedy settings: same tokens
                print(f"  note: {new} bare tokens vs {answer.output_tokens} for {q[:50]!r}")
            ratios.append(ask_s / bare_s)
            asks.append(ask_s)
            bares.append(bare_s)
            retrievals.append(answer.timings["retrieval_ms"] / 1000)
    print(
        f"questions: {len(questions)} x {args.repeats}, max_new_tokens {args.max_new_tokens}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"Pipeline.ask   median {statistics.median(asks):.3f} s (retrieval median {statistics.median(retrievals) * 1000:.0f} ms)"
    )
    print(f"model.generate median {statistics.median(bares):.3f} s")
    print(
        f"overhead: median per-question {100 * (statistics.median(ratios) - 1):+.1f}%, "
        f"total {100 * (sum(asks) / sum(bares) - 1):+.1f}% (target <= 5%)"
    )


if __name__ == "__main__":
    main()
