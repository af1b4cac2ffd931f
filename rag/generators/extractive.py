"""Span-faithful decoding: the answer is a contiguous run of one given passage's text.

The constraint works on characters, not on the passages' own token ids: at every step the only
tokens allowed are those whose text extends what has been written so far into a longer run of
some passage, compared without letter case and with whitespace runs as one space. So a chat
model may begin "The then-popular…" where the passage says "…the then-popular…", or write
"Denver" where the passage's token is " Denver", and still be held to the passage's words; an
end token is allowed once something has been written. The model still chooses *which* span
(by its own scores), but it can only copy, never paraphrase or invent.

The reported answer is cut from the passage's own characters (its case, its whitespace), so it
is always a substring of that passage. numpy-free and torch-free; the torch logits processor
lives in hf.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.generators.base import Span

SEPARATOR = "\0"  # between passages: no token's text holds it, so no run crosses two passages
MAX_PIECE = 32  # longest token text looked up (characters); longer tokens are never needed to copy


def normalise(text: str) -> tuple[str, list[int]]:
    """Lower-cased text with each whitespace run as one space, and for each of its characters
    the index of the original character it came from (a run maps to its first character)."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            if out and out[-1] == " ":
                continue
            ch = " "
        else:
            low = ch.lower()
            ch = low if len(low) == 1 else ch
        out.append(ch)
        where.append(i)
    return "".join(out), where


def piece_key(piece: str) -> str:
    return normalise(piece)[0]


class SpanIndex:
    """The passages' normalised text end to end, answering "which tokens may come next?" and
    "where is this run?".

    `pieces[i]` is token i's text (None for special tokens and ids with no text of their own):
    see `vocab_pieces`.
    """

    def __init__(self, texts: Sequence[str], pieces: Sequence[str | None]) -> None:
        self.texts = list(texts)
        parts, self.owner, self.where = [], [], []
        for p, text in enumerate(self.texts):
            norm, where = normalise(text)
            parts.append(norm + SEPARATOR)
            self.owner += [p] * (len(norm) + 1)
            self.where += [*where, len(text)]
        self.text = "".join(parts)
        self.keys: list[str | None] = [None if piece is None else piece_key(piece) for piece in pieces]
        self.by_key: dict[str, list[int]] = {}  # a continuation: the text as it is, leading space and all
        self.by_start: dict[str, list[int]] = {}  # a first token: its text without leading space
        for i, key in enumerate(self.keys):
            if key and len(key) <= MAX_PIECE and SEPARATOR not in key:
                self.by_key.setdefault(key, []).append(i)
                if key.lstrip():
                    self.by_start.setdefault(key.lstrip(), []).append(i)
        self._first: list[int] | None = None

    def runs(self, generated: Sequence[int]) -> list[tuple[int, int]]:
        """(start, end) in the joined normalised text of every run equal to the generated text,
        its leading whitespace dropped; in order, so the first is in the best-ranked passage."""
        if not generated:
            return []
        first = self.keys[generated[0]] if 0 <= generated[0] < len(self.keys) else None
        first = first.lstrip() if first else ""
        if not first or not first[0].isalnum():
            return []
        runs, at = [], self.text.find(first)
        while at >= 0:
            runs.append((at, at + len(first)))
            at = self.text.find(first, at + 1)
        for token in generated[1:]:
            key = self.keys[token] if 0 <= token < len(self.keys) else None
            if not key:
                return []
            runs = [(s, e + len(key)) for s, e in runs if self.text.startswith(key, e)]
        return runs

    def next_tokens(self, generated: Sequence[int]) -> list[int]:
        """The token ids whose text extends the generated text into a longer run of some passage."""
        if not generated:
            return self.first_tokens()
        allowed: set[int] = set()
        for end in sorted({e for _, e in self.runs(generated)}):
            for length in range(1, MAX_PIECE + 1):
                ids = self.by_key.get(self.text[end : end + length])
                if ids:
                    allowed.update(ids)
        return sorted(allowed)

    def first_tokens(self) -> list[int]:
        """Tokens that may begin an answer: any whose text, leading space dropped, is in a passage
        from a letter or digit on."""
        if self._first is None:
            allowed: set[int] = set()
            text = self.text
            for start in range(len(text)):
                if not text[start].isalnum():  # an answer starts at a letter or digit, not at "." or a space
                    continue
                for length in range(1, MAX_PIECE + 1):
                    ids = self.by_start.get(text[start : start + length])
                    if ids:
                        allowed.update(ids)
            self._first = sorted(allowed)
        return self._first

    def locate(self, generated: Sequence[int]) -> Span | None:
        """The first (best-ranked) passage run equal to the generated text, in that passage's
        own characters; None if there is none."""
        runs = self.runs(generated)
        if not runs:
            return None
        start, end = runs[0]
        passage, text = self.owner[start], self.texts[self.owner[start]]
        first, last = self.where[start], self.where[end - 1] + 1
        while first < last and text[first].isspace():  # the span is the answer's own characters, no more
            first += 1
        while last > first and text[last - 1].isspace():
            last -= 1
        return Span(passage, first, last, "")

    def answer(self, span: Span) -> str:
        return self.texts[span.passage][span.start : span.end].strip()


def vocab_pieces(tokenizer: Any) -> list[str | None]:
    """Each token id's own text, as it reads inside a text (leading space included), found by
    decoding it after a fixed anchor token and dropping the anchor's text: tokenizers differ in
    how they mark spaces (Ġ, ▁, byte fallback), and decoding is the one thing all of them do.
    Special tokens and ids whose text is not their own (byte pieces) get None."""
    anchor = tokenizer.encode("a", add_special_tokens=False)[-1]
    prefix = tokenizer.decode([anchor], clean_up_tokenization_spaces=False)
    size = len(tokenizer)
    texts = tokenizer.batch_decode([[anchor, i] for i in range(size)], clean_up_tokenization_spaces=False)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    pieces: list[str | None] = []
    for i, text in enumerate(texts):
        ok = i not in special and text.startswith(prefix) and "\ufffd" not in text
        pieces.append(text[len(prefix) :] if ok else None)
    return pieces


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
