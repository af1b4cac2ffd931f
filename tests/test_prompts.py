"""The context budget and prompt shaping, with exact token counts.

A whitespace counter makes every number checkable by eye; the tiny model's own tokenizer
checks the same rules hold with a real subword tokenizer.
"""

from __future__ import annotations

import pytest
from tiny_models import build_tiny_gpt2

from rag.documents import Passage
from rag.generators import BudgetError
from rag.generators.base import CUT, DROPPED, WHOLE
from rag.generators.prompts import (
    AnswerStream,
    ChatPrompt,
    CompletionPrompt,
    FlanPrompt,
    T5QAPrompt,
    choose_prompt,
    cut_answer,
    cut_passage,
    fit_passages,
    has_finished_line,
    sentence_ends,
)


def words(text: str) -> int:
    return len(text.split())


def passage(text: str, rank: int, path: str = "doc.md", first_line: int = 1) -> Passage:
    return Passage(
        chunk_id=rank,
        doc_path=path,
        text=text,
        start=100,
        end=100 + len(text),
        first_line=first_line,
        last_line=first_line + text.count("\n"),
        score=1.0 / rank,
        rank=rank,
    )


QUESTION = "What is it?"  # 3 words; the completion template adds Context: Question: Answer:
FIXED = 3 + 3


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    folder = build_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))
    return AutoTokenizer.from_pretrained(folder)


def test_everything_fits_with_exact_counts():
    ps = [passage("one two three four five", 1), passage("six seven eight nine ten eleven", 2)]
    fit = fit_passages(ps, words, FIXED + 11, question=QUESTION)
    assert fit.fixed_tokens == FIXED
    assert [(b.status, b.tokens) for b in fit.budget] == [(WHOLE, 5), (WHOLE, 6)]
    assert fit.passages == ps
    assert fit.prompt_tokens == FIXED + 11 == words(fit.prompt)
    assert (
        fit.prompt
        == "Context: one two three four five\nsix seven eight nine ten eleven\n\nQuestion: What is it?\nAnswer:"
    )


def test_passage_cut_at_sentence_boundary_and_later_whole_passage_still_fits():
    first = passage("alpha beta gamma delta epsilon", 1, "a.md")
    second = passage("One two three. Four five six.\nSeven eight nine.", 2, "b.md", first_line=10)
    third = passage("Tiny.", 3, "c.md")
    fit = fit_passages([first, second, third], words, FIXED + 5 + 7, question=QUESTION)

    assert [b.status for b in fit.budget] == [WHOLE, CUT, WHOLE]
    assert [b.tokens for b in fit.budget] == [5, 6, 1]
    cut = fit.passages[1]
    assert cut.text == "One two three. Four five six."
    assert (cut.first_line, cut.last_line) == (10, 10)  # the cut span, not the retrieved 10-11
    assert cut.end == cut.start + len(cut.text)
    assert fit.budget[1].citation == "b.md:10-11"  # budget names the retrieved passage
    assert fit.prompt_tokens == FIXED + 12 == words(fit.prompt)
    assert "Seven" not in fit.prompt


def test_passage_dropped_when_no_sentence_fits_and_only_first_misfit_is_cut():
    ps = [
        passage("a b c d e", 1),
        passage("This first sentence is far too long to fit. Short one.", 2),
        passage("Would fit if cut. But it is too long whole here.", 3),
        passage("Fits.", 4),
    ]
    fit = fit_passages(ps, words, FIXED + 5 + 4, question=QUESTION)
    assert [b.status for b in fit.budget] == [WHOLE, DROPPED, DROPPED, WHOLE]
    assert [b.tokens for b in fit.budget] == [5, 0, 0, 1]
    assert [p.rank for p in fit.passages] == [1, 4]
    assert fit.fixed_tokens + sum(b.tokens for b in fit.budget) == fit.prompt_tokens


def test_question_longer_than_window_raises_budget_error():
    long_question = " ".join(["word"] * 50)
    with pytest.raises(BudgetError) as info:
        fit_passages([passage("x y", 1)], words, 20, question=long_question)
    message = str(info.value)
    assert "\n" not in message and "53" in message and "20" in message


def test_no_passages_gives_template_only():
    fit = fit_passages([], words, 100, question=QUESTION)
    assert fit.passages == [] and fit.budget == [] and fit.prompt_tokens == FIXED


def test_sentence_ends():
    text = "Dr. Smith arrived, e.g. at 3.14 pm. Then (he left.) Next!\n\nNew paragraph\n\nEnd."
    cuts = [text[:e] for e in sentence_ends(text)]
    assert cuts == [
        "Dr. Smith arrived, e.g. at 3.14 pm.",
        "Dr. Smith arrived, e.g. at 3.14 pm. Then (he left.)",
        "Dr. Smith arrived, e.g. at 3.14 pm. Then (he left.) Next!",
        "Dr. Smith arrived, e.g. at 3.14 pm. Then (he left.) Next!\n\nNew paragraph",
    ]
    assert sentence_ends("no boundary at all") == []


def test_cut_passage_narrows_span_and_lines():
    p = passage("Line one.\nLine two.\nLine three.", 1, first_line=5)
    short = cut_passage(p, sentence_ends(p.text)[1])
    assert short.text == "Line one.\nLine two."
    assert (short.first_line, short.last_line, short.start, short.end) == (5, 6, 100, 119)
    assert short.citation == "doc.md:5-6"


def test_budget_with_a_real_tokenizer_is_exact(tiny_tokenizer):
    def count(text: str) -> int:
        return len(tiny_tokenizer.encode(text))

    ps = [
        passage("BERT uses attention layers. The index stores dense vectors.", 1),
        passage("Paris answers the question. T5 encodes short passages. GPT-2 cites citations.", 2),
        passage("The decoder builds token budgets.", 3),
    ]
    render = CompletionPrompt()
    one = count(render(QUESTION, [ps[0].text]))
    two_first_sentence = count(render(QUESTION, [ps[0].text, "Paris answers the question."]))
    fit = fit_passages(ps, count, two_first_sentence, question=QUESTION, render=render)
    assert [b.status for b in fit.budget] == [WHOLE, CUT, DROPPED]
    assert fit.passages[1].text == "Paris answers the question."
    assert fit.budget[0].tokens == one - fit.fixed_tokens
    assert fit.prompt_tokens == count(fit.prompt) == two_first_sentence
    assert fit.fixed_tokens + sum(b.tokens for b in fit.budget) == fit.prompt_tokens

    fit = fit_passages(ps, count, one, question=QUESTION, render=render)  # room for exactly one
    assert [b.status for b in fit.budget] == [WHOLE, DROPPED, DROPPED]
    with pytest.raises(BudgetError):
        fit_passages(ps, count, count(render(QUESTION, [])) - 1, question=QUESTION, render=render)


def test_completion_answer_cut_at_first_newline():
    assert cut_answer(" Paris.\nQuestion: What else?\nAnswer: Lyon", stop_at_newline=True) == "Paris."
    assert cut_answer("\n\n Paris \nmore", stop_at_newline=True) == "Paris"  # leading newlines are not the cut
    assert cut_answer(" two\nlines ", stop_at_newline=False) == "two\nlines"
    assert not has_finished_line("\n  Par")
    assert has_finished_line("\n Paris\n")


def test_answer_stream_pieces_join_to_the_cut_answer():
    raw = ["\n", " Par", "is ", " is", " big ", "\n", "Question", ": more"]
    got: list[str] = []
    stream = AnswerStream(got.append, stop_at_newline=True)
    for piece in raw:
        stream.feed(piece)
    assert "".join(got) == cut_answer("".join(raw), True) == "Paris  is big"

    got = []
    stream = AnswerStream(got.append, stop_at_newline=False)
    for piece in [" a\n", "b ", " "]:
        stream.feed(piece)
    assert "".join(got) == cut_answer("a\nb  ", False) == "a\nb"


def test_prompt_styles_per_family(tiny_tokenizer):
    flan = FlanPrompt().render("Why?", ["p1", "p2"])
    assert flan == "Answer the question using the context.\n\nContext: p1\n\np2\n\nQuestion: Why?"
    assert T5QAPrompt().render("Why?", ["p1", "p2"]) == "question: Why? context: p1 p2"
    assert CompletionPrompt().render("Why?", ["p1"]) == "Context: p1\n\nQuestion: Why?\nAnswer:"
    assert CompletionPrompt.stop_at_newline and not FlanPrompt.stop_at_newline

    assert isinstance(choose_prompt("encoder-decoder", tiny_tokenizer), FlanPrompt)
    assert isinstance(choose_prompt("decoder-only", tiny_tokenizer), CompletionPrompt)  # no chat template
    assert isinstance(choose_prompt("encoder-decoder", tiny_tokenizer, "t5-qa"), T5QAPrompt)

    from tiny_models import CHAT_TEMPLATE

    tiny_tokenizer.chat_template = CHAT_TEMPLATE
    try:
        style = choose_prompt("decoder-only", tiny_tokenizer)
        assert isinstance(style, ChatPrompt) and not style.add_special_tokens
        text = style.render("Why?", ["p1", "p2"])
        assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
        assert "[1] p1\n[2] p2\n\nQuestion: Why?" in text
    finally:
        tiny_tokenizer.chat_template = None
