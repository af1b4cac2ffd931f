"""Extractive decoding: whatever the model wants to write, the answer is a span of a passage it
was given, and it cites the passage that holds the span. Both families, tiny random models."""

from __future__ import annotations

import json

import pytest
from tiny_models import build_scripted_gpt2, build_tiny_gpt2

from rag.documents import Passage
from rag.generators import load_generator
from rag.generators.extractive import SpanIndex, vocab_pieces
from rag.generators.prompts import ChatPrompt, CompletionPrompt
from rag.pipeline import GenerationSettings, split_label, with_modes


def passage(text: str, rank: int, path: str) -> Passage:
    return Passage(rank, path, text, 0, len(text), 1, 1 + text.count("\n"), 1.0 - rank / 10, rank)


PASSAGES = [
    passage("The capital of France is Paris. Paris answers the question.", 1, "france.md"),
    passage("BERT uses attention layers.\nT5 encodes short passages.", 2, "models.md"),
    passage("The index stores dense vectors in 1990.", 3, "index.md"),
]
QUESTION = "What is the capital of France?"


# A toy vocabulary: token i's text. Spaces lead, as in GPT-2's and SentencePiece's vocabularies.
PIECES = [
    "Paris",
    " Paris",
    " is",
    " the",
    "The",
    " capital",
    ".",
    " of",
    " France",
    "\n",
    None,
    " London",
    "par",
    "is",
]


def ids(*texts: str) -> list[int]:
    return [PIECES.index(t) for t in texts]


def test_span_index_allows_only_continuations_of_a_passage_ignoring_case_and_spacing():
    spans = SpanIndex(["The capital of France is Paris.", "Paris is\n the capital."], PIECES)
    first = set(spans.next_tokens([]))
    assert (
        set(ids("Paris", " Paris", "The", " the", " capital", "par", "is", " is")) <= first
    )  # case, leading space free
    assert not first & set(ids(" London", "\n", ".")) and 10 not in first  # not in a passage; no text; no start
    # "the capital" is in both passages (upper and lower case): either continuation is allowed,
    # and where the passage has a space, a newline token (which reads as one) may come too
    assert set(spans.next_tokens(ids(" the"))) == set(ids(" capital", "\n"))
    assert set(spans.next_tokens(ids("The", " capital"))) == set(ids(".", " of", "\n"))
    assert set(spans.next_tokens(ids("Paris", " is"))) == set(ids("\n", " the"))  # a newline reads as a space
    assert spans.next_tokens(ids("Paris", ".")) == []  # passage 1 ends: no run crosses into passage 2
    assert spans.next_tokens(ids(" London")) == []

    span = spans.locate(ids(" the", " capital"))  # lower case, leading space: found in the first passage
    assert (span.passage, span.start, span.end) == (0, 0, 11) and spans.answer(span) == "The capital"
    span = spans.locate(ids("Paris", " is", " the"))  # across the passage's newline and extra space
    assert span.passage == 1 and spans.answer(span) == "Paris is\n the"
    span = spans.locate(ids("par", "is"))
    assert (span.passage, spans.answer(span)) == (0, "Paris")
    assert spans.locate(ids("Paris", " of")) is None and spans.locate([]) is None


def test_vocab_pieces_keep_leading_spaces(tiny_gpt2, tiny_t5):
    for path in (tiny_gpt2, tiny_t5):
        tok = load_generator(path).tokenizer
        pieces = vocab_pieces(tok)
        assert len(pieces) == len(tok)
        text = " The capital of France is Paris."
        assert "".join(pieces[i] for i in tok.encode(text, add_special_tokens=False)).strip() == text.strip()
        assert all(pieces[i] is None for i in tok.all_special_ids)


def assert_is_span(answer, given: list[Passage]) -> None:
    assert answer.extractive
    assert answer.text, "an extractive answer has at least one token of text"
    span = answer.span
    holder = given[span.passage]
    assert answer.text == holder.text[span.start : span.end].strip()
    assert answer.text in holder.text
    assert span.citation == holder.citation == answer.source
    assert answer.passages == given


@pytest.mark.parametrize("family", ["t5", "gpt2", "chat"])
def test_every_answer_is_a_span_of_a_given_passage(family, tiny_t5, tiny_gpt2, gpt2_chat):
    """Random weights sampled hot write anything; constrained, every answer is a span."""
    g = load_generator({"t5": tiny_t5, "gpt2": tiny_gpt2, "chat": gpt2_chat}[family])
    free_spans, holders = 0, set()
    for seed in range(8):
        answer = g.generate(QUESTION, PASSAGES, max_new_tokens=6, temperature=1.5, seed=seed, extractive=True)
        assert_is_span(answer, PASSAGES)
        holders.add(answer.span.passage)
        free = g.generate(QUESTION, PASSAGES, max_new_tokens=6, temperature=1.5, seed=seed)
        assert not free.extractive and free.span is None and free.source is None
        free_spans += bool(free.text) and any(free.text in p.text for p in PASSAGES)
    assert free_spans < 8, "unconstrained random models do not copy: the processor is what makes spans"
    assert len(holders) > 1, "spans come from more than one passage"


def test_the_span_comes_from_the_passages_that_fit(tiny_gpt2):
    """When the budget cuts and drops passages, the answer is a span of what the model was given."""
    g = load_generator(tiny_gpt2, context_window=80)
    long = [
        passage("Paris is the capital. " * 3, 1, "a.md"),
        passage("BERT uses attention layers. " * 8, 2, "b.md"),
        passage("T5 encodes short passages. " * 8, 3, "c.md"),
    ]
    for seed in range(4):
        answer = g.generate(QUESTION, long, max_new_tokens=6, temperature=1.5, seed=seed, extractive=True)
        assert answer.passages_cut >= 1
        assert_is_span(answer, answer.passages)


@pytest.fixture(scope="module")
def gpt2_chat(tmp_path_factory) -> str:
    return str(build_tiny_gpt2(tmp_path_factory.mktemp("models") / "chat-gpt2", chat=True))


def scripted(tiny_gpt2: str, folder, text: str, question: str, given: list[Passage]) -> str:
    """A GPT-2 that writes `text` then a newline after the completion prompt for `given`."""
    tok = load_generator(tiny_gpt2).tokenizer
    prompt_len = len(tok.encode(CompletionPrompt().render(question, [p.text.strip() for p in given])))
    return str(build_scripted_gpt2(tiny_gpt2, folder, tok.encode(text) + tok.encode("\n"), prompt_len))


def test_a_model_that_wants_a_span_gets_it_and_cites_its_passage(tiny_gpt2, tmp_path):
    given = PASSAGES[:2]
    g = load_generator(scripted(tiny_gpt2, tmp_path / "s1", " attention layers", "Which layers?", given))
    assert g.generate("Which layers?", given, max_new_tokens=12).text == "attention layers"
    answer = g.generate("Which layers?", given, max_new_tokens=12, extractive=True)
    assert answer.text == "attention layers"
    assert answer.span.passage == 1 and answer.source == "models.md:1-2"  # the passage that holds it
    assert answer.output_tokens <= 12


def test_a_model_that_wants_to_invent_still_answers_with_a_span(tiny_gpt2, tmp_path):
    given = PASSAGES[:2]
    g = load_generator(scripted(tiny_gpt2, tmp_path / "s2", " London is big", QUESTION, given))
    assert g.generate(QUESTION, given, max_new_tokens=12).text == "London is big"
    answer = g.generate(QUESTION, given, max_new_tokens=12, extractive=True)
    assert "London" not in answer.text
    assert_is_span(answer, given)


def test_answer_json_carries_the_span(tiny_t5):
    answer = load_generator(tiny_t5).generate(QUESTION, PASSAGES, max_new_tokens=4, extractive=True)
    data = json.loads(json.dumps(answer.to_dict()))
    assert data["extractive"] is True
    assert data["span"]["citation"] == data["citations"][data["span"]["passage"]]
    assert PASSAGES[data["span"]["passage"]].text[data["span"]["start"] : data["span"]["end"]].strip() == data["text"]


def test_labels_name_a_mode():
    assert split_label("smollm2+extractive") == ("smollm2", {"extractive"})
    assert split_label("smollm2") == ("smollm2", set()) and split_label("+extractive") == ("+extractive", set())
    assert with_modes(["a", "b"], False) == ["a", "b"]
    assert with_modes(["a", "b+extractive"], True) == ["a", "a+extractive", "b+extractive"]
    assert GenerationSettings().extractive is False


def test_chat_prompt_is_unchanged_by_extractive_mode(gpt2_chat):
    """The mode constrains decoding only: the prompt (and so the budget) is the same."""
    g = load_generator(gpt2_chat)
    assert isinstance(g.prompt_style, ChatPrompt)
    free = g.generate(QUESTION, PASSAGES, max_new_tokens=4)
    span = g.generate(QUESTION, PASSAGES, max_new_tokens=4, extractive=True)
    assert free.prompt_tokens == span.prompt_tokens and free.budget == span.budget
