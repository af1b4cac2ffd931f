"""Prompt templates per model family, the context budget, and shaping of the answer text.

Everything here is pure (no torch), so the budget can be tested with exact token counts:
a generator hands in its own tokenizer's counter, a test hands in `str.split`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag.documents import Passage
from rag.generators.base import CUT, DROPPED, ENCODER_DECODER, WHOLE, BudgetError, BudgetItem

# --------------------------------------------------------------------------- templates

Render = Callable[[str, Sequence[str]], str]


class PromptStyle:
    """How one family of models wants its question and passages laid out.

    `add_special_tokens` says how the rendered prompt is tokenised (chat templates already
    hold their special tokens); `stop_at_newline` cuts completions of base models, which
    otherwise ramble on into a new "Question:".
    """

    name = "base"
    add_special_tokens = True
    stop_at_newline = False

    def render(self, question: str, texts: Sequence[str]) -> str:
        raise NotImplementedError

    def __call__(self, question: str, texts: Sequence[str]) -> str:  # a style is a Render
        return self.render(question, texts)


class FlanPrompt(PromptStyle):
    """Instruction style that FLAN-T5 was tuned on."""

    name = "flan"

    def render(self, question: str, texts: Sequence[str]) -> str:
        context = "\n\n".join(texts)
        return f"Answer the question using the context.\n\nContext: {context}\n\nQuestion: {question.strip()}"


class T5QAPrompt(PromptStyle):
    """The SQuAD prefix format of the original (not instruction-tuned) T5 checkpoints."""

    name = "t5-qa"

    def render(self, question: str, texts: Sequence[str]) -> str:
        return f"question: {question.strip()} context: {' '.join(texts)}"


class CompletionPrompt(PromptStyle):
    """A plain text to continue, for base decoder-only models without a chat template (GPT-2)."""

    name = "completion"
    stop_at_newline = True

    def __init__(self, cue: str = "Answer:") -> None:
        self.cue = cue

    def render(self, question: str, texts: Sequence[str]) -> str:
        context = "\n".join(texts)
        return f"Context: {context}\n\nQuestion: {question.strip()}\n{self.cue}"


PLAIN = CompletionPrompt()  # the default rendering of `fit_passages` (it holds no state)

# Asks for the short answer (SQuAD-style). Chosen on SQuAD v1.1 dev part A only, among the
# variants in benchmarks/prompts.py (BENCHMARKS.md); for SmolLM2 they are all within noise.
SYSTEM_PROMPT = "Answer the question from the context in a few words."


class ChatPrompt(PromptStyle):
    """Instruction-tuned decoder-only models: the tokenizer's own chat template."""

    name = "chat"
    add_special_tokens = False  # the template writes its own special tokens

    def __init__(self, tokenizer: Any, system: str = SYSTEM_PROMPT, suffix: str = "") -> None:
        self.tokenizer = tokenizer
        self.system = system
        self.suffix = suffix  # a line after the question, e.g. a reminder of the answer's form

    def render(self, question: str, texts: Sequence[str]) -> str:
        context = "\n".join(f"[{i}] {t}" for i, t in enumerate(texts, 1))
        user = f"Context:\n{context}\n\nQuestion: {question.strip()}"
        if self.suffix:
            user += f"\n{self.suffix}"
        messages = [
            {"role": "system", "content": self.system},
            {"role": "user", "content": user},
        ]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class QuestionPassagePrompt(PromptStyle):
    """The layout rag's MiniLM generators were trained on: `question [SEP] passage [SEP] passage`
    ([CLS] before and [SEP] after come from the tokenizer)."""

    name = "question-passage"

    def render(self, question: str, texts: Sequence[str]) -> str:
        return " [SEP] ".join([question.strip(), *texts])


STYLES = {
    "flan": FlanPrompt,
    "t5-qa": T5QAPrompt,
    "completion": CompletionPrompt,
    "chat": ChatPrompt,
    "question-passage": QuestionPassagePrompt,
}


def choose_prompt(family: str, tokenizer: Any, preferred: str | None = None) -> PromptStyle:
    """The style for a loaded model: a preset's preference, else by family and chat template."""
    if preferred == "chat" or (
        preferred is None and family != ENCODER_DECODER and getattr(tokenizer, "chat_template", None)
    ):
        return ChatPrompt(tokenizer)
    if preferred is not None:
        return STYLES[preferred]()
    return FlanPrompt() if family == ENCODER_DECODER else CompletionPrompt()


# --------------------------------------------------------------------------- sentences

# A sentence ends after . ! ? (and closing quotes/brackets) before whitespace, or at a blank line.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s|$)|\n[ \t]*\n")
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "cf", "dr", "mr", "mrs", "ms", "prof", "fig", "no", "approx", "al"}


def sentence_ends(text: str) -> list[int]:
    """Offsets just past each sentence end in `text`, ascending, excluding the text's own end."""
    stop = len(text.rstrip())
    ends: list[int] = []
    for m in _SENTENCE_END.finditer(text):
        if m.group().startswith("."):
            word = re.search(r"(\S+)$", text[: m.start()])
            token = word.group(1).lower() if word else ""
            if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
                continue  # "e.g." or an initial "J." is not a sentence end
        end = m.end() if m.group()[0] != "\n" else m.start()
        if 0 < end < stop and (not ends or end > ends[-1]) and text[:end].strip():
            ends.append(end)
    return ends


def cut_passage(passage: Passage, end: int) -> Passage:
    """The passage's first `end` characters, with span and lines narrowed to match."""
    text = passage.text[:end].rstrip()
    return replace(passage, text=text, end=passage.start + len(text), last_line=passage.first_line + text.count("\n"))


# --------------------------------------------------------------------------- budget


@dataclass
class Fit:
    """What the budget decided: the passages given (best first), one BudgetItem per passage
    retrieved, and the final prompt with its exact token count."""

    passages: list[Passage]
    budget: list[BudgetItem]
    prompt: str
    prompt_tokens: int
    fixed_tokens: int  # template + question, no passages


def fit_passages(
    passages: Sequence[Passage],
    count_tokens: Callable[[str], int],
    budget_tokens: int,
    *,
    question: str,
    render: Render = PLAIN,
) -> Fit:
    """Add passages best-first while the whole rendered prompt fits `budget_tokens`.

    Counting the full rendered prompt (not pieces) keeps counts exact whatever the tokenizer
    does at the joins. Policy: every passage is tried whole, in rank order; the first one that
    does not fit whole is cut to its longest sentence prefix that fits (dropped if not even one
    sentence fits); only that first one is tried cut, later ones go in only if they fit whole.
    Each item's `tokens` is what it added to the prompt, so
    `fixed_tokens + sum(item.tokens) == prompt_tokens`.
    """
    fixed_prompt = render(question, [])
    fixed = count_tokens(fixed_prompt)
    if fixed > budget_tokens:
        raise BudgetError(
            f"the question and prompt template alone take {fixed} tokens, more than the {budget_tokens} available"
        )
    texts = [p.text.strip() for p in passages]
    given: list[Passage] = []
    given_texts: list[str] = []
    items: list[BudgetItem] = []
    used, prompt, cut_done = fixed, fixed_prompt, False
    for passage, text in zip(passages, texts):
        candidate = render(question, [*given_texts, text])
        n = count_tokens(candidate)
        if n <= budget_tokens:
            given.append(passage)
            given_texts.append(text)
            items.append(BudgetItem(passage.citation, passage.rank, WHOLE, n - used))
            used, prompt = n, candidate
            continue
        if not cut_done:
            cut_done = True
            best = _longest_prefix(passage, given_texts, count_tokens, budget_tokens, question, render)
            if best is not None:
                short, candidate, n = best
                given.append(short)
                given_texts.append(short.text.strip())
                items.append(BudgetItem(passage.citation, passage.rank, CUT, n - used))
                used, prompt = n, candidate
                continue
        items.append(BudgetItem(passage.citation, passage.rank, DROPPED, 0))
    return Fit(given, items, prompt, used, fixed)


def _longest_prefix(passage, given_texts, count_tokens, budget_tokens, question, render):
    """Binary search over sentence ends for the longest prefix that fits; None if none does."""
    ends = sentence_ends(passage.text)
    lo, hi, best = 0, len(ends) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        short = cut_passage(passage, ends[mid])
        candidate = render(question, [*given_texts, short.text.strip()])
        n = count_tokens(candidate)
        if n <= budget_tokens:
            best, lo = (short, candidate, n), mid + 1
        else:
            hi = mid - 1
    return best


# --------------------------------------------------------------------------- answer text


def cut_answer(text: str, stop_at_newline: bool) -> str:
    """The answer as reported: stripped and, for completions, only its first line of text."""
    text = text.lstrip()
    if stop_at_newline:
        text = text.split("\n", 1)[0]
    return text.strip()


def has_finished_line(text: str) -> bool:
    """True once a completion has written some text and then a newline (where it is cut)."""
    stripped = text.lstrip()
    return "\n" in stripped


class AnswerStream:
    """Forwards streamed text so that the pieces join to exactly `cut_answer(full_text)`.

    Leading whitespace is dropped, trailing whitespace is held back until more text follows,
    and with `stop_at_newline` nothing after the first line is passed on.
    """

    def __init__(self, on_text: Callable[[str], None], stop_at_newline: bool) -> None:
        self.on_text = on_text
        self.stop_at_newline = stop_at_newline
        self.started = False
        self.stopped = False
        self.pending = ""

    def feed(self, piece: str) -> None:
        if self.stopped or not piece:
            return
        if not self.started:
            piece = piece.lstrip()
            if not piece:
                return
            self.started = True
        if self.stop_at_newline and "\n" in piece:
            piece, self.stopped = piece.split("\n", 1)[0], True
        text = self.pending + piece
        body = text.rstrip()
        self.pending = text[len(body) :]
        if body:
            self.on_text(body)
