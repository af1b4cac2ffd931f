"""Answer and retrieval metrics, written out in plain Python so each can be checked by hand.

Answer metrics follow the official SQuAD v1.1 evaluation script (evaluate-v1.1.py) exactly,
so our exact-match and F1 figures are comparable with published SQuAD numbers.
Retrieval metrics follow BEIR / pytrec_eval (graded gains for nDCG), so our nDCG@10 on a BEIR
set is comparable with the BEIR leaderboard.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


# --- answer metrics (SQuAD v1.1) -------------------------------------------------------------


def normalize_answer(s: str) -> str:
    """Lower case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace.

    Same steps in the same order as evaluate-v1.1.py: punctuation goes before articles, so
    "the-end" becomes "theend" (no article left to remove), and `\\b` keeps "the" in "theory".
    """
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _f1_one(prediction: str, truth: str) -> float:
    """Token F1 between two answers after normalisation (official definition)."""
    pred_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(truth).split()
    common = Counter(pred_tokens) & Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0.

    An empty `answers` list (retrieval-only sets) scores 0.0 rather than failing.
    """
    norm = normalize_answer(prediction)
    return max((float(norm == normalize_answer(a)) for a in answers), default=0.0)


def f1(prediction: str, answers: Sequence[str]) -> float:
    """Best token F1 of the prediction against any gold answer (0.0 when there are none)."""
    return max((_f1_one(prediction, a) for a in answers), default=0.0)


def _contains_tokens(haystack: str, needle: str) -> bool:
    """Whether the normalised `needle` occurs in the normalised `haystack` on token boundaries.

    Padding both with spaces means "broncos" is not found inside "broncosaurus": a substring
    of a longer word is not support for an answer.
    """
    return bool(needle) and f" {needle} " in f" {haystack} "


def answer_in_passages(answers: Iterable[str], passage_texts: Iterable[str]) -> bool:
    """Whether any gold answer occurs in the passages given to the generator (support proxy).

    Tells apart "the retriever never gave the generator the answer" from "the generator missed
    it". Passages are normalised and joined with a space; answers that normalise to nothing
    (e.g. "the") never count.
    """
    text = " ".join(normalize_answer(p) for p in passage_texts)
    return any(_contains_tokens(text, normalize_answer(a)) for a in answers)


def prediction_supported(prediction: str, passage_texts: Iterable[str]) -> bool:
    """Whether the (non-empty) normalised prediction occurs in the passages (faithfulness proxy).

    An extractive-looking answer found verbatim in the context was at least grounded in it;
    an empty prediction is never supported.
    """
    text = " ".join(normalize_answer(p) for p in passage_texts)
    return _contains_tokens(text, normalize_answer(prediction))


# --- retrieval metrics (BEIR / pytrec_eval) ----------------------------------------------------


def dedupe(ranked: Iterable[str]) -> list[str]:
    """Drop repeated doc ids, keeping each at its first (best) rank.

    A chunked index can return several chunks of one document; relevance is judged per document,
    so the document counts once, at the rank of its best chunk. Without this, recall could count
    a document twice and nDCG could exceed 1.
    """
    return list(dict.fromkeys(ranked))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def recall_at_k(ranked: Iterable[str], gold: Mapping[str, int], k: int) -> float:
    """Fraction of the relevant documents (grade > 0) found in the top k distinct documents.

    Ids are deduplicated first (see `dedupe`). A question with no relevant documents scores 0.0,
    as pytrec_eval does, so averages match BEIR's.
    """
    _check_k(k)
    relevant = {doc for doc, grade in gold.items() if grade > 0}
    if not relevant:
        return 0.0
    found = relevant.intersection(dedupe(ranked)[:k])
    return len(found) / len(relevant)


def mrr_at_k(ranked: Iterable[str], gold: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal of the rank of the first relevant document in the top k distinct ones, else 0.

    Ids are deduplicated first (see `dedupe`), so repeated chunks do not push a relevant
    document down the list.
    """
    _check_k(k)
    for rank, doc in enumerate(dedupe(ranked)[:k], start=1):
        if gold.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Iterable[str], gold: Mapping[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain at k, with graded gains as in BEIR/pytrec_eval.

    gain = grade (linear, not 2**grade - 1), discount = log2(rank + 1) with 1-based ranks, and the
    ideal ranking is the gold grades sorted descending. Ids are deduplicated first (see `dedupe`).
    Returns 0.0 when no document is relevant.
    """
    _check_k(k)
    dcg = sum(max(gold.get(doc, 0), 0) / math.log2(rank + 1) for rank, doc in enumerate(dedupe(ranked)[:k], start=1))
    ideal = sorted((g for g in gold.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


# --- latency summaries ---------------------------------------------------------------------


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation, as numpy's default method.

    Used for p50/p95 latency without importing numpy. An empty input gives nan, so a missing
    measurement shows as such instead of as a fake zero.
    """
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {p}")
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)
