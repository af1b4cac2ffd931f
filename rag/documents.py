"""The data that flows through the pipeline: documents, chunks and retrieved passages.

Plain dataclasses so every stage (loading, chunking, indexing, retrieval, generation)
can hand data to the next without knowing how it was made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


def cite(path: str, first_line: int, last_line: int) -> str:
    """`path:12-18`, or `path:12` for a one-line span."""
    lines = f"{first_line}" if first_line == last_line else f"{first_line}-{last_line}"
    return f"{path}:{lines}"


@dataclass(frozen=True)
class Document:
    """One file's extracted text. `path` is relative to the indexed folder (POSIX style)."""

    path: str
    text: str


@dataclass(frozen=True)
class Chunk:
    """A span of a document's text: `text == document.text[start:end]`.

    Lines are 1-based and inclusive, so a chunk can be cited as `path:first_line-last_line`.
    """

    doc_path: str
    text: str
    start: int
    end: int
    first_line: int
    last_line: int

    @property
    def citation(self) -> str:
        return cite(self.doc_path, self.first_line, self.last_line)


@dataclass(frozen=True)
class Passage:
    """A chunk returned by a retriever, with its rank (1-based) and similarity score."""

    chunk_id: int
    doc_path: str
    text: str
    start: int
    end: int
    first_line: int
    last_line: int
    score: float  # the retriever's
    rank: int  # after reranking, where a reranker ran
    rerank_score: float | None = None  # the cross-encoder's logit, for the candidates it read
    reranker: str | None = None  # which model gave rerank_score

    @property
    def citation(self) -> str:
        return cite(self.doc_path, self.first_line, self.last_line)

    def to_dict(self) -> dict:
        return {**asdict(self), "citation": self.citation}
