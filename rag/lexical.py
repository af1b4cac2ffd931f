"""BM25 over the same chunks as the dense index, with bm25s, saved in the index folder.

A lexical ranking catches what an encoder-only retriever blurs: exact names, numbers and
rare words. Its statistics (document frequencies, average length) depend on every chunk, so
it is rebuilt from the chunk texts on each save; tokenising is cheap next to embedding.

Tokenisation, chosen by principle rather than per question: lower-case word characters
(numbers and one-letter tokens kept, since years and figures are often what a question
names), NLTK's English stop words (which include the question words what, which, who, when:
they say what kind of answer is wanted, not where it is), then the Snowball English stemmer
so "encoders" matches "encoder". BM25 runs with k1 = 0.9 and b = 0.4, Anserini's defaults
for passage retrieval. BENCHMARKS.md compares these choices with Lucene's.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FOLDER = "bm25"
IDS_FILE = "chunk_ids.npy"
TOKENIZER = "lower-words-nltk-stopwords-snowball-english"
K1, B, METHOD = 0.9, 0.4, "lucene"

_WORD = re.compile(r"\w+")
_stemmer = None
_stopwords: frozenset[str] = frozenset()


def tokenize(text: str) -> list[str]:
    """The BM25 terms of a text (the same for chunks and queries)."""
    global _stemmer, _stopwords
    if _stemmer is None:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN_PLUS

        _stemmer, _stopwords = Stemmer.Stemmer("english"), frozenset(STOPWORDS_EN_PLUS)  # bm25s ships a tuple
    return _stemmer.stemWords([w for w in _WORD.findall(text.lower()) if w not in _stopwords])


def settings() -> dict:
    """What the manifest records about the BM25 index."""
    import bm25s

    return {"library": "bm25s", "version": bm25s.__version__, "tokenizer": TOKENIZER,
            "method": METHOD, "k1": K1, "b": B}


def compatible(recorded: dict | None) -> bool:
    """Whether a BM25 index recorded in a manifest was built the way this code queries it."""
    current = settings()
    return bool(recorded) and all(recorded.get(key) == current[key] for key in ("tokenizer", "method", "k1", "b"))


def build(ids: np.ndarray, texts: Sequence[str], folder: Path) -> None:
    """Write a BM25 index of `texts` (chunk `ids`, same order) into `folder/bm25/`."""
    import bm25s

    target = folder / FOLDER
    target.mkdir()
    np.save(target / IDS_FILE, np.asarray(ids, dtype=np.int64), allow_pickle=False)
    if len(ids) == 0:
        return  # an empty index: nothing to score; `Bm25.search` answers with nothing
    model = bm25s.BM25(method=METHOD, k1=K1, b=B)
    model.index([tokenize(t) for t in texts], show_progress=False)
    model.save(str(target), show_progress=False)


@dataclass
class Bm25:
    """A loaded BM25 index: chunk ids by row, and the bm25s scorer (None when empty)."""

    ids: np.ndarray
    model: object | None

    @classmethod
    def load(cls, folder: Path) -> Bm25:
        """The BM25 index in an index folder (whose manifest records one)."""
        target = folder / FOLDER
        if not (target / IDS_FILE).is_file():
            from .errors import IndexError_

            raise IndexError_(f"index {folder} is damaged: {target / IDS_FILE} is missing; rebuild it with `rag index FOLDER`")
        ids = np.load(target / IDS_FILE, allow_pickle=False)
        if len(ids) == 0:
            return cls(ids, None)
        import bm25s

        return cls(ids, bm25s.BM25.load(str(target), load_corpus=False, allow_pickle=False, show_progress=False))

    def search_many(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Per query, up to k (chunk id, BM25 score) best first; chunks sharing no term are left out."""
        k = min(k, len(self.ids))
        out: list[list[tuple[int, float]]] = [[] for _ in queries]
        terms = [tokenize(q) for q in queries]
        asked = [i for i, t in enumerate(terms) if t]  # a query of stop words only matches nothing
        if self.model is None or k < 1 or not asked:
            return out
        rows, scores = self.model.retrieve([terms[i] for i in asked], k=k, show_progress=False, n_threads=0)
        for i, row, row_scores in zip(asked, rows, scores):
            out[i] = [(int(self.ids[r]), float(s)) for r, s in zip(row, row_scores) if s > 0]
        return out
