"""Span-faithful decoding: the answer is a contiguous run of one given passage's tokens.

The passages are tokenised by the generator's own tokenizer and laid end to end, with a
separator between them so that no span crosses two passages. At every step the only tokens
allowed are those that extend what has been generated so far into a longer run of some
passage; an end token is allowed once at least one token is out. The model still chooses
*which* span (by its own scores), but it can only copy, never paraphrase or invent.

The reported answer is cut from the passage's own text by the tokenizer's character offsets,
so it is always a substring of that passage, whatever the tokenizer's decoding does to
spaces. numpy only; the torch logits processor lives in hf.py.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rag.generators.base import Span

SEPARATOR = -1


class SpanIndex:
    """The passages' token ids end to end (SEPARATOR between), each with its passage and its
    characters, answering "which tokens may come next?" and "where is this run?".

    `tokenize(text) -> (ids, offsets)` with `offsets[i] = (start, end)` characters of token i.
    """

    def __init__(self, texts: Sequence[str], tokenize) -> None:
        self.texts = list(texts)
        ids: list[int] = []
        owner: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        for p, text in enumerate(self.texts):
            token_ids, offsets = tokenize(text)
            ids.extend(int(i) for i in token_ids)
            owner.extend([p] * len(token_ids))
            starts.extend(int(a) for a, _ in offsets)
            ends.extend(int(b) for _, b in offsets)
            ids.append(SEPARATOR)
            owner.append(p)
            starts.append(len(text))
            ends.append(len(text))
        self.ids = np.asarray(ids, dtype=np.int64)
        self.owner = np.asarray(owner, dtype=np.int64)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)

    def matches(self, generated: Sequence[int]) -> np.ndarray:
        """Start positions j (ascending) where ids[j : j + len(generated)] == generated."""
        active = np.flatnonzero(self.ids != SEPARATOR)
        n = len(self.ids)
        for k, token in enumerate(generated):
            active = active[active + k < n]
            active = active[self.ids[active + k] == int(token)]
            if not active.size:
                break
        return active

    def next_tokens(self, generated: Sequence[int]) -> np.ndarray:
        """The distinct token ids that extend `generated` into a longer run of some passage."""
        if not len(generated):
            return np.unique(self.ids[self.ids != SEPARATOR])
        active = self.matches(generated)
        following = self.ids[active + len(generated)]  # in range: every passage ends in SEPARATOR
        return np.unique(following[following != SEPARATOR])

    def locate(self, generated: Sequence[int]) -> Span | None:
        """The first (best-ranked) passage run equal to `generated`, as characters; None if none."""
        if not len(generated):
            return None
        active = self.matches(generated)
        if not active.size:
            return None
        j = int(active[0])
        last = j + len(generated) - 1
        p = int(self.owner[j])
        return Span(p, int(self.starts[j]), int(self.ends[last]), "")

    def text(self, span: Span) -> str:
        return self.texts[span.passage][span.start : span.end].strip()


def hf_tokenize(tokenizer: Any):
    """`tokenize` for SpanIndex from a Hugging Face tokenizer: ids without special tokens and
    their character offsets (a fast tokenizer gives them; a slow one is walked by decoding)."""

    def tokenize(text: str) -> tuple[list[int], list[tuple[int, int]]]:
        if getattr(tokenizer, "is_fast", False):
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        ids = tokenizer.encode(text, add_special_tokens=False)
        return ids, _offsets_by_decoding(tokenizer, ids, text)

    return tokenize


def _offsets_by_decoding(tokenizer: Any, ids: Sequence[int], text: str) -> list[tuple[int, int]]:
    """Character offsets of each token, from the lengths of decoded prefixes (for slow
    tokenizers without offset mapping); clamped to the text."""
    offsets, previous = [], 0
    for i in range(1, len(ids) + 1):
        end = min(len(tokenizer.decode(ids[:i], skip_special_tokens=True)), len(text))
        offsets.append((previous, max(previous, end)))
        previous = max(previous, end)
    return offsets


def end_tokens(tokenizer: Any, eos_ids: Sequence[int], stop_at_newline: bool) -> list[int]:
    """Tokens that may end an extractive answer: the model's end-of-answer ids, and for
    completion prompts (which end at a line break) the newline tokens too."""
    ends = [int(i) for i in eos_ids]
    if stop_at_newline:
        for text in ("\n", "\n\n", " \n"):
            ids = tokenizer.encode(text, add_special_tokens=False)
            if ids and ids[-1] not in ends:
                ends.append(int(ids[-1]))
    return ends
