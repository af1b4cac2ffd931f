"""Cut a document into overlapping chunks measured in the embedder's own tokens.

Cuts prefer, in order: a paragraph break, a sentence end, a line break, a word
boundary. Chunks are spans of the original text (so they can be cited by line),
consecutive chunks share at most `overlap` tokens, and every non-blank character
of the document lies in some chunk.
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import Protocol

from .documents import Chunk, Document

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


class OffsetTokenizer(Protocol):
    """Any Hugging Face fast tokenizer: called with return_offsets_mapping=True."""

    def __call__(self, text: str, **kwargs): ...


def token_offsets(text: str, tokenizer: OffsetTokenizer) -> list[tuple[int, int]]:
    """Character span of each token of `text` (no special tokens), empty spans removed."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)
    return [(s, e) for s, e in enc["offset_mapping"] if e > s]


def _boundary_strength(text: str, offsets: Sequence[tuple[int, int]], j: int) -> int:
    """How good a cut is between token j-1 and token j: 4 paragraph, 3 sentence, 2 line, 1 word, 0 inside a word."""
    gap = text[offsets[j - 1][1]:offsets[j][0]]
    if not gap:
        return 0
    if gap.count("\n") >= 2:
        return 4
    if _SENTENCE_END.search(text[offsets[j - 1][0]:offsets[j - 1][1]]):
        return 3
    if "\n" in gap:
        return 2
    return 1


def chunk_offsets(
    text: str, offsets: Sequence[tuple[int, int]], size: int = 200, overlap: int = 40
) -> list[tuple[int, int]]:
    """Token-index ranges [start, end) of the chunks, given token offsets."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 token, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be between 0 and size-1 ({size - 1}) tokens, got {overlap}")
    n = len(offsets)
    ranges: list[tuple[int, int]] = []
    start, prev_end = 0, 0
    while start < n:
        limit = start + size
        if limit >= n:
            ranges.append((start, n))
            break
        # Cut in the second half of the window (and past the previous cut, so no chunk is contained
        # in the one before), at the strongest boundary, latest on ties.
        lo = max(start + max(1, size // 2), prev_end + 1)
        end = max(range(lo, limit + 1), key=lambda j: (_boundary_strength(text, offsets, j), j))
        ranges.append((start, end))
        prev_end = end
        # Start the next chunk inside the overlap, at the strongest boundary, earliest on ties.
        lo = max(end - overlap, start + 1)
        start = max(range(lo, end + 1), key=lambda j: (_boundary_strength(text, offsets, j), -j))
    return ranges


def chunk_document(doc: Document, tokenizer: OffsetTokenizer, size: int = 200, overlap: int = 40) -> list[Chunk]:
    """The chunks of one document, with character spans and 1-based line numbers."""
    offsets = token_offsets(doc.text, tokenizer)
    newlines = [i for i, c in enumerate(doc.text) if c == "\n"]
    chunks = []
    for a, b in chunk_offsets(doc.text, offsets, size, overlap):
        start, end = offsets[a][0], offsets[b - 1][1]
        chunks.append(
            Chunk(
                doc_path=doc.path,
                text=doc.text[start:end],
                start=start,
                end=end,
                first_line=bisect.bisect_right(newlines, start) + 1,
                last_line=bisect.bisect_right(newlines, end - 1) + 1,
            )
        )
    return chunks
