from __future__ import annotations

import re

import pytest

from rag.chunking import chunk_document, chunk_offsets, token_offsets
from rag.documents import Document

PARAGRAPHS = [
    "Encoder-only models read the whole input at once. Every token attends to every other token, "
    "so the representation of a word depends on both its left and right context.",
    "Decoder-only models generate text one token at a time! Each position may only attend to earlier "
    "positions, which is enforced with a causal mask.\nThat mask is what makes them autoregressive.",
    "Encoder-decoder models combine both halves. The decoder reads the encoder's output through "
    "cross-attention? Yes: at every layer, its queries look at the encoder's keys and values.",
]
TEXT = "# Roles\n\n" + "\n\n".join(p * 3 for p in PARAGRAPHS) + "\n"


@pytest.fixture(scope="module")
def tokenizer(embedder):
    return embedder.tokenizer


def _covered(text: str, chunks) -> str:
    mask = [False] * len(text)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        for i in range(c.start, c.end):
            mask[i] = True
    return "".join(ch for ch, m in zip(text, mask) if not m)


@pytest.mark.parametrize("size, overlap", [(200, 40), (50, 10), (32, 0), (20, 19)])
def test_chunks_cover_every_character_and_overlap_at_most_the_overlap(tokenizer, size, overlap):
    doc = Document("roles.md", TEXT)
    chunks = chunk_document(doc, tokenizer, size, overlap)
    assert len(chunks) >= (1 if size == 200 else 3)
    assert _covered(TEXT, chunks).strip() == ""  # nothing but whitespace between chunks is lost
    offsets = token_offsets(TEXT, tokenizer)
    starts = {s: i for i, (s, _) in enumerate(offsets)}
    ends = {e: i for i, (_, e) in enumerate(offsets)}
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start and a.end < b.end  # moving forward
        shared = ends[a.end] - starts[b.start] + 1
        assert shared <= overlap  # duplicated text is bounded by the overlap, in tokens
    for c in chunks:
        assert ends[c.end] - starts[c.start] + 1 <= size


def test_cuts_prefer_sentence_and_paragraph_boundaries(tokenizer):
    chunks = chunk_document(Document("roles.md", TEXT), tokenizer, 60, 10)
    for c in chunks[:-1]:
        assert re.search(r"[.!?]$", c.text), c.text[-40:]  # every cut but the last ends a sentence
    later_starts = [c.text[0] for c in chunks[1:]]
    assert all(ch.isupper() or ch == "#" for ch in later_starts)  # and the next chunk starts one


def test_line_numbers_point_at_the_chunk(tokenizer):
    chunks = chunk_document(Document("roles.md", TEXT), tokenizer, 40, 8)
    lines = TEXT.split("\n")
    for c in chunks:
        first, last = c.first_line, c.last_line
        assert TEXT.count("\n", 0, c.start) + 1 == first
        assert c.text.splitlines()[0] in lines[first - 1]
        assert c.text.splitlines()[-1] in lines[last - 1]
        assert c.citation == f"roles.md:{first}-{last}" or (first == last and c.citation == f"roles.md:{first}")


def test_short_document_is_one_chunk_and_blank_is_none(tokenizer):
    [chunk] = chunk_document(Document("a.txt", "  Hello there.  \n"), tokenizer)
    assert chunk.text == "Hello there." and (chunk.start, chunk.first_line, chunk.last_line) == (2, 1, 1)
    assert chunk_document(Document("b.txt", " \n\n "), tokenizer) == []


def test_long_word_without_boundaries_still_progresses():
    text = "x" * 50
    offsets = [(i, i + 1) for i in range(50)]
    ranges = chunk_offsets(text, offsets, size=8, overlap=2)
    assert ranges[0][0] == 0 and ranges[-1][1] == 50
    assert all(b - a <= 8 for a, b in ranges)
    assert all(r2[0] > r1[0] for r1, r2 in zip(ranges, ranges[1:]))


@pytest.mark.parametrize("size, overlap", [(0, 0), (10, 10), (10, -1)])
def test_bad_settings_are_refused(size, overlap):
    with pytest.raises(ValueError):
        chunk_offsets("a b", [(0, 1), (2, 3)], size, overlap)


def test_streamed_chunks_equal_whole_document_chunks(tokenizer):
    import random

    from rag.chunking import chunk_stream

    text = (TEXT + "\n") * 6 + "Averyveryveryverylongwordwithoutanyspacesinsideitatall " * 3
    rng = random.Random(0)
    for size, overlap in [(200, 40), (50, 10), (30, 29), (64, 0)]:
        whole = chunk_document(Document("x.md", text), tokenizer, size, overlap)
        for window in (60, 400, 2000):
            pieces, i = [], 0
            while i < len(text):  # pieces of any size, as a file is read block by block
                j = i + rng.randint(1, 300)
                pieces.append(text[i:j])
                i = j
            assert list(chunk_stream(pieces, "x.md", tokenizer, size, overlap, window=window)) == whole, (
                size,
                overlap,
                window,
            )
