"""BM25 over the same chunks as the dense index: postings kept per generation, scored at query time.

A lexical ranking catches what an encoder-only retriever blurs: exact names, numbers and
rare words.

Tokenisation, chosen by principle rather than per question: lower-case word characters
(numbers and one-letter tokens kept, since years and figures are often what a question
names), NLTK's English stop words (which include the question words what, which, who, when:
they say what kind of answer is wanted, not where it is), then the Snowball English stemmer
so "encoders" matches "encoder". BM25 runs with k1 = 0.9 and b = 0.4, Anserini's defaults
for passage retrieval. BENCHMARKS.md compares these choices with Lucene's.

Scoring is Lucene's BM25 (bm25s's `lucene` method, which the tests check against):
idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)), and each query term adds
idf * tf / (tf + k1 * (1 - b + b * len / avg_len)). It is computed at query time from raw term
frequencies, so the global statistics (N, df, avg_len) are never baked into stored numbers:
an update removes the rows of deleted chunks and appends new ones without touching the rest,
and no chunk is ever tokenised twice (its terms are kept in meta.sqlite).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError

import numpy as np

FOLDER = "bm25"
FILES = ("chunk_ids.npy", "lengths.npy", "term_ptr.npy", "rows.npy", "tfs.npy")
# Hashed on every load (one entry per chunk or term); rows and tfs (one per posting, ~40x larger)
# are checked as a query reads them instead: see `_check_postings` and BENCHMARKS.md.
CHECKED_ON_LOAD = ("chunk_ids.npy", "lengths.npy", "term_ptr.npy")
TOKENIZER = "lower-words-nltk-stopwords-snowball-english"
K1, B, METHOD = 0.9, 0.4, "lucene"

# NLTK's English stop words (as bm25s ships them in STOPWORDS_EN_PLUS), kept here so that
# tokenising imports neither bm25s nor scipy.
STOPWORDS = frozenset(
    """
a about above after again against ain all am an and any are aren aren't as at be because been before being below
between both but by can couldn couldn't d did didn didn't do does doesn doesn't doing don don't down during each
few for from further had hadn hadn't has hasn hasn't have haven haven't having he her here hers herself him
himself his how i if in into is isn isn't it it's its itself just ll m ma me mightn mightn't more most mustn
mustn't my myself needn needn't no nor not now o of off on once only or other our ours ourselves out over own re
s same shan shan't she she's should should've shouldn shouldn't so some such t than that that'll the their
theirs them themselves then there these they this those through to too under until up ve very was wasn wasn't we
were weren weren't what when where which while who whom why will with won won't wouldn wouldn't y you you'd
you'll you're you've your yours yourself yourselves
""".split()
)

_WORD = re.compile(r"\w+")
_stemmer = None


def tokenize(text: str) -> list[str]:
    """The BM25 terms of a text (the same for chunks and queries)."""
    global _stemmer
    if _stemmer is None:
        import Stemmer

        _stemmer = Stemmer.Stemmer("english")
    return _stemmer.stemWords([w for w in _WORD.findall(text.lower()) if w not in STOPWORDS])


def settings() -> dict:
    """What the manifest records about the BM25 index."""
    return {"library": "rag", "tokenizer": TOKENIZER, "method": METHOD, "k1": K1, "b": B}


def compatible(recorded: dict | None) -> bool:
    """Whether a BM25 index recorded in a manifest was built the way this code queries it."""
    current = settings()
    return bool(recorded) and all(recorded.get(key) == current[key] for key in ("tokenizer", "method", "k1", "b"))


@dataclass
class Postings:
    """An inverted index: for term id t, `rows[term_ptr[t]:term_ptr[t+1]]` are the rows (in
    increasing order) whose chunk holds t, `tfs` the counts; row r is chunk `chunk_ids[r]`
    with `lengths[r]` terms."""

    chunk_ids: np.ndarray  # int64 (N,)
    lengths: np.ndarray  # int32 (N,)
    term_ptr: np.ndarray  # int64 (V + 1,)
    rows: np.ndarray  # int32 (nnz,)
    tfs: np.ndarray  # int32 (nnz,)
    name: str = ""  # where it was loaded from (`gen-000007/base-000/bm25`), for naming it when damaged

    @classmethod
    def build(cls, ids: Sequence[int], terms: Sequence[np.ndarray]) -> Postings:
        """From scratch: chunk `ids[i]` holds the term ids `terms[i]` (with repeats)."""
        empty = cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            np.zeros(1, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.int32),
        )
        return empty.update(np.zeros(0, np.int64), ids, terms)

    def update(self, removed: Sequence[int], ids: Sequence[int], terms: Sequence[np.ndarray]) -> Postings:
        """A new Postings without the chunks `removed` and with the chunks `ids` (holding `terms`)
        appended: a few linear passes over the arrays, nothing re-tokenised."""
        vocab = len(self.term_ptr) - 1
        keep = ~np.isin(self.chunk_ids, np.asarray(removed, dtype=np.int64))
        counts = np.diff(self.term_ptr)
        rows, tfs = np.asarray(self.rows), np.asarray(self.tfs)
        if not keep.all():
            renumber = (np.cumsum(keep) - 1).astype(np.int32)
            term_of = np.repeat(np.arange(vocab, dtype=np.int32), counts)
            kept = keep[rows]
            rows, tfs, term_of = renumber[rows[kept]], tfs[kept], term_of[kept]
            counts = np.bincount(term_of, minlength=vocab)
        live = int(keep.sum())
        # The new chunks' postings, as (term, row, tf) sorted by term then row.
        new_terms, new_rows, new_tfs, lengths = [], [], [], []
        for i, term_ids in enumerate(terms):
            unique, tf = np.unique(np.asarray(term_ids, dtype=np.int32), return_counts=True)
            new_terms.append(unique)
            new_rows.append(np.full(len(unique), live + i, dtype=np.int32))
            new_tfs.append(tf.astype(np.int32))
            lengths.append(len(term_ids))
        t = np.concatenate(new_terms) if new_terms else np.zeros(0, np.int32)
        r = np.concatenate(new_rows) if new_rows else np.zeros(0, np.int32)
        f = np.concatenate(new_tfs) if new_tfs else np.zeros(0, np.int32)
        order = np.argsort(t, kind="stable")  # rows are already increasing within each term
        t, r, f = t[order], r[order], f[order]
        vocab2 = max(vocab, int(t.max()) + 1 if len(t) else 0)
        counts = np.concatenate([counts, np.zeros(vocab2 - vocab, dtype=counts.dtype)])
        ends = np.cumsum(counts)  # new rows go after each term's old postings: they are the highest
        rows = np.insert(rows, ends[t], r)
        tfs = np.insert(tfs, ends[t], f)
        counts = counts + np.bincount(t, minlength=vocab2)
        return Postings(
            chunk_ids=np.concatenate([np.asarray(self.chunk_ids)[keep], np.asarray(ids, dtype=np.int64)]),
            lengths=np.concatenate([np.asarray(self.lengths)[keep], np.asarray(lengths, dtype=np.int32)]),
            term_ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            rows=rows.astype(np.int32, copy=False),
            tfs=tfs.astype(np.int32, copy=False),
        )

    def save(self, folder: Path, write) -> dict[str, dict]:
        """Write the arrays into `folder/bm25/` with `write(path, save_fn)`; their sizes and hashes."""
        target = folder / FOLDER
        target.mkdir()
        files = {}
        for name in FILES:
            array = np.ascontiguousarray(getattr(self, name[:-4]))
            files[f"{FOLDER}/{name}"] = write(target / name, lambda f, a=array: np.save(f, a, allow_pickle=False))
        return files

    @classmethod
    def load(cls, folder: Path) -> Postings:
        """The arrays of a generation folder, memory-mapped: a search reads only the postings it needs."""
        from .store import DamagedFile

        target = folder / FOLDER
        arrays = {}
        for name in FILES:
            try:
                arrays[name[:-4]] = np.load(target / name, mmap_mode="r", allow_pickle=False)
            except FileNotFoundError:
                raise
            except (OSError, ValueError, SyntaxError, TokenError) as e:
                # numpy parses a .npy header as a Python literal: damage there is a SyntaxError or a
                # TokenError as often as a ValueError
                why = (str(e).splitlines() or [""])[0][:100] or type(e).__name__
                raise DamagedFile(f"{folder.name}/{FOLDER}/{name}", f"not a readable array ({why})") from None
        return cls(**arrays, name=f"{folder.parent.name}/{folder.name}/{FOLDER}")

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def check(self) -> str | None:
        """What is inconsistent in the arrays, or None: a cheap check on every load."""
        n, nnz = len(self.chunk_ids), len(self.rows)
        if len(self.lengths) != n or len(self.tfs) != nnz or len(self.term_ptr) < 1:
            return "its arrays have different lengths"
        if int(self.term_ptr[0]) != 0 or int(self.term_ptr[-1]) != nnz:
            return "its term pointers do not cover its postings"
        return None

    def search(self, query_terms: Sequence[Sequence[int]], k: int) -> list[list[tuple[int, float]]]:
        """`search_segments` over this one segment."""
        return search_segments([(self, None)], query_terms, k)


def search_segments(
    segments: Sequence[tuple[Postings, np.ndarray | None]], query_terms: Sequence[Sequence[int]], k: int
) -> list[list[tuple[int, float]]]:
    """BM25 over several segments as if they were one index: each is (postings, mask of its live
    rows, or None for all). N, df and the average length count live rows only. Per query (a list
    of term ids, repeats counting again), up to k (chunk id, score) best first; chunks sharing no
    term with the query are left out; ties go to the older chunk."""
    live = [np.ones(len(p), dtype=bool) if mask is None else np.asarray(mask) for p, mask in segments]
    n = sum(int(m.sum()) for m in live)
    if n == 0:
        return [[] for _ in query_terms]
    total = sum(float(np.asarray(p.lengths, dtype=np.float64)[m].sum()) for (p, _), m in zip(segments, live))
    average = max(total / n, 1e-9)
    norms = [K1 * (1 - B + B * np.asarray(p.lengths, dtype=np.float64) / average) for p, _ in segments]
    offsets = np.cumsum([0] + [len(p) for p, _ in segments])
    chunk_ids = np.concatenate([np.asarray(p.chunk_ids) for p, _ in segments])
    out = []
    for term_ids in query_terms:
        scores = np.zeros(int(offsets[-1]), dtype=np.float64)
        for t in term_ids:
            postings = []
            for (p, _), m in zip(segments, live):
                if 0 <= t < len(p.term_ptr) - 1:
                    start, end = int(p.term_ptr[t]), int(p.term_ptr[t + 1])
                    rows = np.asarray(p.rows[start:end])
                    tf = np.asarray(p.tfs[start:end])
                    _check_postings(p, start, end, rows, tf)
                    keep = m[rows]
                    postings.append((rows[keep], tf.astype(np.float64)[keep]))
                else:
                    postings.append((np.zeros(0, np.int32), np.zeros(0)))
            df = sum(len(rows) for rows, _ in postings)
            if df == 0:
                continue  # a term no live chunk holds
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            for (rows, tf), norm, offset in zip(postings, norms, offsets):
                scores[offset + rows] += idf * tf / (tf + norm[rows])
        out.append(_top(scores, chunk_ids, k))
    return out


def _check_postings(p: Postings, start: int, end: int, rows: np.ndarray, tf: np.ndarray) -> None:
    """The postings a query reads, checked as they are read (the arrays are too large to hash on
    every load: BENCHMARKS.md): pointers in order and within the arrays, rows within the
    segment, each count at least 1 and at most its chunk's length. Flipped bytes fail these
    far more often than not; `rag info --check` and every `rag index` compare checksums."""
    from .store import DamagedFile

    n = len(p.chunk_ids)
    problem = None
    if not 0 <= start <= end <= len(p.rows):
        problem = ("term_ptr.npy", "its term pointers are out of order or past the postings")
    elif len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= n):
        problem = ("rows.npy", f"a posting points past the segment's {n} rows")
    elif len(tf) and (int(tf.min()) < 1 or bool((tf > np.asarray(p.lengths)[rows]).any())):
        problem = ("tfs.npy", "a term count is below 1 or above its chunk's length")
    if problem is not None:
        raise DamagedFile(f"{p.name}/{problem[0]}" if p.name else problem[0], problem[1])


def _top(scores: np.ndarray, chunk_ids: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k best positive scores as (chunk id, score), ties broken by row (older chunks first)."""
    candidates = np.flatnonzero(scores > 0)
    if len(candidates) > k:
        threshold = np.partition(scores[candidates], len(candidates) - k)[len(candidates) - k]
        candidates = candidates[scores[candidates] >= threshold]
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    return [(int(chunk_ids[candidates[i]]), float(scores[candidates[i]])) for i in order]
