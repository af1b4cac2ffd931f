"""Our metrics against references: retrieval metrics against pytrec_eval (trec_eval, which BEIR
uses), EM/F1 against values worked out by hand with the official SQuAD v1.1 normalisation."""

from __future__ import annotations

import random

import pytest
import pytrec_eval  # the dev extra's pytrec-eval-terrier (pytrec_eval itself has no wheel for Python 3.11)

from rag.bench.metrics import exact_match, f1, mrr_at_k, ndcg_at_k, recall_at_k

# --- retrieval: recall@k, MRR@10, nDCG@10 vs pytrec_eval ----------------------------------------
#
# Graded judgements (0 = judged not relevant, negative = judged harmful, unjudged = absent).
# Our metrics take a ranked list, trec_eval a score per document; trec_eval breaks equal scores
# by document id, we have no scores, so the runs below give strictly decreasing scores (no ties)
# and the two see the same order.
QRELS = {
    "graded": {"d1": 2, "d2": 1, "d3": 0, "d4": 3},
    "one-relevant-deep": {"d9": 1},  # found at rank 12: outside the cut-offs
    "none-relevant": {"d1": 0, "d2": 0},  # judged, but nothing relevant: everything scores 0
    "negative-grade": {"a": 2, "b": -1, "c": 1},  # a negative grade gains nothing, like 0
    "not-retrieved": {"x": 1, "y": 2},
    "more-relevant-than-k": {f"r{i}": 1 + i % 3 for i in range(12)},  # ideal ranking longer than 10
}
RANKED = {
    "graded": ["d3", "u1", "d1", "d2", "u2", "d4"],
    "one-relevant-deep": [f"u{i}" for i in range(11)] + ["d9"],
    "none-relevant": ["d1", "d2", "u1"],
    "negative-grade": ["b", "c", "a"],
    "not-retrieved": ["u1", "u2"],
    "more-relevant-than-k": ["r11", "u1", "r3", "r0", "r7", "u2", "r5", "r1", "r2", "r4", "r6", "r8", "r9", "r10"],
}


def random_cases(n: int, seed: int = 7) -> tuple[dict, dict]:
    """Seeded qrels (grades 0-3 over 25 documents) and rankings (15 of them, distinct)."""
    rng = random.Random(seed)
    docs = [f"doc{i}" for i in range(25)]
    qrels, ranked = {}, {}
    for q in range(n):
        qrels[f"r{q}"] = {d: rng.choice([0, 0, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 8))}
        ranked[f"r{q}"] = rng.sample(docs, 15)
    return qrels, ranked


def reference(qrels: dict, ranked: dict, measures: set[str]) -> dict:
    """pytrec_eval's scores for our rankings, given as strictly decreasing scores."""
    run = {q: {doc: float(len(docs) - i) for i, doc in enumerate(docs)} for q, docs in ranked.items()}
    return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)


@pytest.mark.parametrize("cases", ["hand-made", "seeded"])
def test_retrieval_metrics_match_pytrec_eval(cases):
    qrels, ranked = (QRELS, RANKED) if cases == "hand-made" else random_cases(40)
    ref = reference(qrels, ranked, {"recall.1,3,5,10", "ndcg_cut.10"})
    # trec_eval's recip_rank has no cut-off: MRR@10 is recip_rank of the run cut to its top 10
    ref_rr = reference(qrels, {q: docs[:10] for q, docs in ranked.items()}, {"recip_rank"})
    checked = 0
    for q in qrels:
        gold = qrels[q]
        for k in (1, 3, 5, 10):
            assert recall_at_k(ranked[q], gold, k) == pytest.approx(ref[q][f"recall_{k}"], abs=1e-12), (q, k)
        assert ndcg_at_k(ranked[q], gold, 10) == pytest.approx(ref[q]["ndcg_cut_10"], abs=1e-12), q
        assert mrr_at_k(ranked[q], gold, 10) == pytest.approx(ref_rr[q]["recip_rank"], abs=1e-12), q
        checked += 1
    assert checked == len(qrels) == len(ref)  # pytrec_eval scored every query we did
    if cases == "hand-made":  # the fixture does reach the cases it is meant to
        assert ref["graded"]["ndcg_cut_10"] not in (0.0, 1.0) and ref["one-relevant-deep"]["recall_10"] == 0.0
        assert ref["negative-grade"]["ndcg_cut_10"] > 0 and ref["more-relevant-than-k"]["recall_10"] < 1


# --- answers: EM and F1 by hand, official SQuAD v1.1 normalisation --------------------------------
#
# Normalisation (evaluate-v1.1.py): lower case -> drop ASCII punctuation -> drop the words a/an/the
# -> collapse whitespace. F1 = 2PR / (P + R) on token multisets; both take the best gold answer.
# Each expected value below was worked out by hand; none is computed by our code.
SQUAD_CASES = [
    # (prediction, gold answers, EM, F1)
    ("The Eiffel Tower", ["Eiffel Tower"], 1, 1),  # "eiffel tower" both
    ("a  Tower\t", ["the tower."], 1, 1),  # "tower" both: article, case, punctuation, whitespace
    ("\n  Marie   Curie \t", ["Marie Curie"], 1, 1),
    ("the 'Big Apple'", ["big apple"], 1, 1),  # quotes go, then the leading article
    ("Levi's Stadium", ["Levis Stadium"], 1, 1),  # the apostrophe goes: "levis stadium"
    ("Denver", ["Denver Broncos", "denver."], 1, 1),  # the second gold answer matches
    # "tower of london" (3) vs "tower" (1): 1 common, P = 1/3, R = 1, F1 = (2/3) / (4/3) = 1/2;
    # vs "london bridge" (2): 1 common, P = 1/3, R = 1/2, F1 = (1/3) / (5/6) = 2/5 -> best 1/2
    ("Tower of London", ["the Tower", "London Bridge"], 0, 1 / 2),
    ("1,000", ["1000"], 1, 1),  # the comma goes: "1000"
    ("1 000", ["1000"], 0, 0),  # tokens "1", "000" vs "1000": nothing in common
    # "4000 steps" (2) vs "4000" (1): P = 1/2, R = 1, F1 = 1 / (3/2) = 2/3
    ("4,000 steps", ["4000"], 0, 2 / 3),
    ("3.5 million", ["3.5m"], 0, 0),  # "35 million" vs "35m"
    # "in 1969 by nasa" (4) vs "1969": P = 1/4, R = 1, F1 = (1/2) / (5/4) = 2/5
    ("in 1969 by NASA", ["1969"], 0, 2 / 5),
    ("1969–1972", ["1969"], 0, 0),  # the en dash is not ASCII punctuation: one token "1969–1972"
    # "new york new york" (4) vs "new york" (2): common {new: 1, york: 1} = 2, P = 2/4, R = 2/2,
    # F1 = 1 / (3/2) = 2/3 (a repeated word counts as often as the gold has it)
    ("New York, New York", ["new york"], 0, 2 / 3),
    # "apple and pear" (3) vs "apple pear" (2): P = 2/3, R = 1, F1 = (4/3) / (5/3) = 4/5
    ("an apple and a pear", ["apple pear"], 0, 4 / 5),
    ("state-of-the-art", ["state of the art"], 0, 0),  # "stateoftheart" vs "state of art"
    ("U.S.-based", ["US based"], 0, 0),  # "usbased" vs "us based"
    ("café", ["Cafe"], 0, 0),  # no accent folding
    ("theory", ["the ory"], 0, 0),  # "theory" keeps its "the"; gold "the ory" -> "ory"
    ("", ["Paris"], 0, 0),  # empty prediction
    # an empty prediction against a gold that normalises to nothing: EM 1 ("" == ""), F1 0
    # (v1.1 returns 0 without common tokens; v2.0's script would give 1)
    ("", ["The"], 1, 0),
    ("Paris", [], 0, 0),  # no gold answer (retrieval-only sets): 0, not an error
]


@pytest.mark.parametrize("prediction, answers, em, expected_f1", SQUAD_CASES)
def test_squad_em_f1_worked_by_hand(prediction, answers, em, expected_f1):
    assert exact_match(prediction, answers) == em
    assert f1(prediction, answers) == pytest.approx(expected_f1, abs=1e-12)


def test_squad_fixture_means():
    # EM: 1+1+1+1+1+1+0+1+0+0+0+0+0+0+0+0+0+0+0+0+1+0 = 8 of 22
    # F1: six 1s, 1/2, 1, 0, 2/3, 0, 2/5, 0, 2/3, 4/5, then 0 x 7 -> 7 + 1/2 + 4/3 + 2/5 + 4/5
    #     = 7 + 15/30 + 40/30 + 12/30 + 24/30 = 7 + 91/30 = 301/30, over 22 -> 301/660
    ems = [exact_match(p, a) for p, a, _, _ in SQUAD_CASES]
    f1s = [f1(p, a) for p, a, _, _ in SQUAD_CASES]
    assert len(SQUAD_CASES) == 22
    assert sum(ems) / 22 == pytest.approx(8 / 22)
    assert sum(f1s) / 22 == pytest.approx(301 / 660)
