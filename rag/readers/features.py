"""Question + passage windows for a span head, and their answer labels: the offsets recipe.

This is transformers' `run_qa.py` recipe (`prepare_train_features`): the tokenizer cuts each
passage into windows of `max_length` tokens that overlap by `stride`, and its offset mapping
turns an answer's characters into start/end token positions. A window that does not hold the
whole answer is labelled at its first token ([CLS]), the "no answer" position; so are the
windows of passages that hold no answer at all (multi-passage training, Clark & Gardner 2018).

Only tokenizer calls and lists: no torch, so inference with ONNX Runtime uses it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 384
STRIDE = 128


@dataclass
class Window:
    """One question + passage window as the model sees it.

    `offsets[t]` is token t's (start, end) in its passage's characters, or None for question and
    special tokens: only context tokens may start or end an answer.
    """

    input_ids: list[int]
    token_type_ids: list[int] | None
    offsets: list[tuple[int, int] | None]
    passage: int  # which passage (or training example) it came from
    start: int = 0  # answer label: token positions, 0 ([CLS]) when the window holds no answer
    end: int = 0
    words: list[int | None] | None = None  # each context token's word (the pre-tokenizer's), None elsewhere

    def __len__(self) -> int:
        return len(self.input_ids)


def windows(
    tokenizer,
    questions: Sequence[str],
    passages: Sequence[str],
    *,
    max_length: int = MAX_LENGTH,
    stride: int = STRIDE,
) -> list[Window]:
    """Tokenize each (question, passage) pair into strided windows; `Window.passage` indexes the pair.

    `tokenizer` is a Hugging Face fast tokenizer or a `tokenizers.Tokenizer` (what the ONNX path
    loads, without transformers): both run the same Rust tokenizer with the truncation transformers
    sets for run_qa.py (only the passage is cut, windows overlap by `stride` tokens).
    """
    backend, plain = _truncating(tokenizer, max_length, stride)
    # The tokenizer needs room for `stride` passage tokens besides the question and 3 special tokens.
    limit = max(1, min(max_length // 2, max_length - stride - 4))
    questions = [_cut_question(plain, q.lstrip(), limit) for q in questions]
    out = []
    for i, first in enumerate(backend.encode_batch(list(zip(questions, passages)))):
        for enc in (first, *first.overflowing):
            context = [s == 1 for s in enc.sequence_ids]
            offsets = [tuple(o) if c else None for o, c in zip(enc.offsets, context)]
            words = [w if c else None for w, c in zip(enc.word_ids, context)]
            out.append(Window(list(enc.ids), list(enc.type_ids), offsets, i, words=words))
    return out


_CONFIGURED: dict[tuple[int, int, int], Any] = {}


def _truncating(tokenizer, max_length: int, stride: int):
    """Copies of the tokenizer's Rust backend: one cutting pairs into strided windows, one not cutting (cached)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "encode_batch"):
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer: a span reader needs offset mappings")
    key = (id(backend), max_length, stride)
    if key not in _CONFIGURED:
        from tokenizers import Tokenizer

        copy = Tokenizer.from_str(backend.to_str())
        copy.no_padding()
        copy.enable_truncation(max_length, stride=stride, strategy="only_second")
        plain = Tokenizer.from_str(backend.to_str())
        plain.no_padding()
        plain.no_truncation()
        for t in (copy, plain):  # a document about BERT that says "[SEP]" is text, not a separator
            t.encode_special_tokens = True
        _CONFIGURED.clear()  # one tokenizer at a time is the common case; keep memory flat
        _CONFIGURED[key] = (backend, copy, plain)  # holding backend keeps its id from being reused
    return _CONFIGURED[key][1:]


def _cut_question(backend, question: str, limit: int) -> str:
    offsets = backend.encode(question, add_special_tokens=False).offsets
    if len(offsets) <= limit:
        return question
    return question[: offsets[limit - 1][1]]


def label(window: Window, answer_start: int | None, answer_text: str | None) -> Window:
    """Set the window's start/end token labels for an answer at `answer_start` (characters in its
    passage); None, or an answer not wholly inside the window, labels [CLS] (position 0)."""
    window.start = window.end = 0
    if answer_start is None or not answer_text:
        return window
    start_char, end_char = answer_start, answer_start + len(answer_text)
    context = [t for t, o in enumerate(window.offsets) if o is not None]
    if not context:
        return window
    first, last = context[0], context[-1]
    if not (window.offsets[first][0] <= start_char and window.offsets[last][1] >= end_char):
        return window  # the answer is not (wholly) in this window
    t = first
    while t <= last and window.offsets[t][0] <= start_char:
        t += 1
    window.start = t - 1
    t = last
    while t >= first and window.offsets[t][1] >= end_char:
        t -= 1
    window.end = t + 1
    return window


def span_text(window: Window, passage: str) -> str:
    """The passage's characters under the window's labelled tokens ("" for no answer)."""
    if window.start == 0 and window.end == 0:
        return ""
    return passage[window.offsets[window.start][0] : window.offsets[window.end][1]]


def pad(windows: Sequence[Window], pad_id: int = 0) -> dict[str, Any]:
    """NumPy arrays for a batch, padded to its longest window (dynamic padding)."""
    from rag.models.batch import pad_rows

    return pad_rows([w.input_ids for w in windows], [w.token_type_ids for w in windows], pad_id)
