"""From a span head's logits to answers: the best spans across every window of every passage.

A span's score is its start logit plus its end logit (end >= start, at most `max_tokens`
long, context tokens only), compared across windows and passages as they come. Each window is
its own softmax in training (transformers' SQuAD 2.0 recipe, not Clark & Gardner's shared
normalisation over all of a question's windows); what makes raw scores comparable across
passages is training on no-answer windows of passages that do not hold the answer. A window's
no-answer score is the same sum at [CLS].

NumPy only, so the ONNX path imports no torch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.readers.features import Window

MAX_ANSWER_TOKENS = 30
BREAK = re.compile(r"\n[ \t]*\n")  # a blank line: the tokenizer sees only whitespace, the reader never learnt it


@dataclass
class Candidate:
    """One scored span: `passage` indexes the passages read, `start`/`end` are characters in it."""

    passage: int
    start: int
    end: int
    score: float
    text: str

    def to_dict(self) -> dict:
        return {
            "passage": self.passage,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "text": self.text,
        }


def best_spans(
    windows: Sequence[Window],
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    passages: Sequence[str],
    *,
    top: int = 5,
    max_tokens: int = MAX_ANSWER_TOKENS,
) -> tuple[list[Candidate], float]:
    """The `top` best distinct spans over all windows (best first), and the no-answer score (the
    lowest [CLS] score of any window, as transformers' QA pipeline takes it)."""
    found: dict[tuple[int, int, int], Candidate] = {}
    null = float("inf")
    for window, starts, ends in zip(windows, start_logits, end_logits):
        n = len(window)
        starts, ends = np.asarray(starts[:n], dtype=np.float32), np.asarray(ends[:n], dtype=np.float32)
        context = np.array([o is not None for o in window.offsets])
        if not context.any():
            continue  # nothing of a passage here: its [CLS] score says nothing either
        null = min(null, float(starts[0] + ends[0]))
        scores = starts[:, None] + ends[None, :]
        i, j = np.indices(scores.shape)
        allowed = context[:, None] & context[None, :] & (j >= i) & (j - i < max_tokens)
        scores = np.where(allowed, scores, -np.inf)
        flat = scores.ravel()
        keep = min(4 * top, int(allowed.sum()))  # more than `top`: some are dropped below
        best = np.argpartition(-flat, keep - 1)[:keep] if keep < flat.size else np.arange(flat.size)
        for k in best:
            s, e = divmod(int(k), n)
            if not np.isfinite(flat[k]):
                continue
            passage = passages[window.passage]
            s, e = _whole_words(window, s, e)
            char_start, char_end = window.offsets[s][0], window.offsets[e][1]
            text = passage[char_start:char_end]
            # Trim whitespace so the span is the answer's characters exactly (still a substring).
            left = len(text) - len(text.lstrip())
            right = len(text.rstrip())
            if right <= left or BREAK.search(text, left, right):
                continue  # nothing, or across a paragraph break: an answer is within one paragraph
            key = (window.passage, char_start + left, char_start + right)
            score = float(flat[k])
            if key not in found or found[key].score < score:
                found[key] = Candidate(window.passage, key[1], key[2], score, text[left:right])
    ranked = sorted(found.values(), key=lambda c: -c.score)[:top]
    return ranked, (null if np.isfinite(null) else float("-inf"))


def _whole_words(window: Window, s: int, e: int) -> tuple[int, int]:
    """Widen a span that starts or ends inside a word (a WordPiece like "##ional") to the whole
    word, as the tokenizer's pre-tokenizer cut words (so CJK characters stay one each)."""
    words = window.words
    if words is None:
        return s, e
    while s > 0 and words[s] is not None and words[s - 1] == words[s]:
        s -= 1
    while e + 1 < len(words) and words[e] is not None and words[e + 1] == words[e]:
        e += 1
    return s, e
