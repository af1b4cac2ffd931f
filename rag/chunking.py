"""Cut a document into overlapping chunks measured in the embedder's own tokens.

Cuts prefer, in order: a paragraph break, a sentence end, a line break, a word
boundary. Chunks are spans of the original text (so they can be cited by line),
consecutive chunks share at most `overlap` tokens, and every non-blank character
of the document lies in some chunk.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
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
    gap = text[offsets[j - 1][1] : offsets[j][0]]
    if not gap:
        return 0
    if gap.count("\n") >= 2:
        return 4
    if _SENTENCE_END.search(text[offsets[j - 1][0] : offsets[j - 1][1]]):
        return 3
    if "\n" in gap:
        return 2
    return 1


def chunk_offsets(
    text: str, offsets: Sequence[tuple[int, int]], size: int = 200, overlap: int = 40
) -> list[tuple[int, int]]:
    """Token-index ranges [start, end) of the chunks, given token offsets."""
    ranges, _, _ = _ranges(text, offsets, size, overlap, 0, 0, final=True)
    return ranges


def _ranges(
    text: str, offsets: Sequence[tuple[int, int]], size: int, overlap: int, start: int, prev_end: int, final: bool
) -> tuple[list[tuple[int, int]], int, int]:
    """Chunk ranges from token `start` on, and (start, prev_end) to resume from. Without `final`
    it stops where a decision would need tokens past the end (more text may follow)."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 token, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be between 0 and size-1 ({size - 1}) tokens, got {overlap}")
    n = len(offsets)
    ranges: list[tuple[int, int]] = []
    while start < n:
        limit = start + size
        if limit >= n:
            if not final:
                break
            ranges.append((start, n))
            start = n
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
    return ranges, start, prev_end


def chunk_document(doc: Document, tokenizer: OffsetTokenizer, size: int = 200, overlap: int = 40) -> list[Chunk]:
    """The chunks of one document, with character spans and 1-based line numbers."""
    return list(chunk_stream([doc.text], doc.path, tokenizer, size, overlap))


WINDOW = 200_000  # characters tokenised at a time: memory stays flat however long the document


def chunk_stream(
    pieces: Iterable[str],
    doc_path: str,
    tokenizer: OffsetTokenizer,
    size: int = 200,
    overlap: int = 40,
    window: int = WINDOW,
) -> Iterator[Chunk]:
    """The chunks of a document given as consecutive pieces of its text (a file read block by
    block), the same as `chunk_document` on the whole text, in bounded memory: the text is
    tokenised a window at a time, each window cut at whitespace (so no word is split between
    two), and only what is not yet chunked is carried into the next one."""
    buffer, base, line = "", 0, 1  # text not yet chunked, its offset in the document, its first line
    start_char, prev_end_char = 0, -1  # where the next chunk starts, where the last one ended (in buffer)
    chunked = False
    for text, final in _windows(pieces, window):
        buffer += text
        offsets = token_offsets(buffer, tokenizer)
        starts = [s for s, _ in offsets]
        start = bisect.bisect_left(starts, start_char)
        prev_end = bisect.bisect_left(starts, prev_end_char) if prev_end_char >= 0 else 0
        ranges, start, prev_end = _ranges(buffer, offsets, size, overlap, start, prev_end, final)
        newlines = [i for i, c in enumerate(buffer) if c == "\n"]
        for a, b in ranges:
            s, e = offsets[a][0], offsets[b - 1][1]
            yield Chunk(
                doc_path,
                buffer[s:e],
                base + s,
                base + e,
                line + bisect.bisect_right(newlines, s),
                line + bisect.bisect_right(newlines, e - 1),
            )
        if final:
            return
        # Keep the text from the word that holds the next chunk's first token (re-tokenising from a
        # word start gives the same tokens), and where the last chunk ended, as character offsets.
        chunked = chunked or bool(ranges)
        resume = offsets[start][0] if start < len(offsets) else len(buffer)
        cut = max(buffer.rfind(" ", 0, resume), buffer.rfind("\n", 0, resume), buffer.rfind("\t", 0, resume)) + 1
        start_char = resume - cut
        prev_end_char = offsets[prev_end][0] - cut if chunked and prev_end < len(offsets) else -1
        line += buffer.count("\n", 0, cut)
        base += cut
        buffer = buffer[cut:]


def _windows(pieces: Iterable[str], window: int) -> Iterator[tuple[str, bool]]:
    """(text, is last) of at most about `window` characters each, each (but the last) ending at
    whitespace where there is any, from pieces of any size."""
    carry = ""
    iterator = iter(pieces)
    exhausted = False
    while True:
        while len(carry) < window and not exhausted:
            piece = next(iterator, None)
            if piece is None:
                exhausted = True
            else:
                carry += piece
        if exhausted and len(carry) <= window:
            yield carry, True
            return
        cut = max(carry.rfind(" ", 0, window), carry.rfind("\n", 0, window), carry.rfind("\t", 0, window)) + 1
        if cut <= 0:
            cut = window  # one word longer than the window: cut it anyway
        yield carry[:cut], False
        carry = carry[cut:]
