"""Every metric checked against values worked out by hand (written out here, not recomputed)."""

import math

import pytest

from rag.metrics import (
    answer_in_passages,
    dedupe,
    exact_match,
    f1,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    percentile,
    prediction_supported,
    recall_at_k,
)

# --- SQuAD normalisation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("The Denver Broncos", "denver broncos"),  # case + leading article
        ("An apple a day", "apple day"),  # a / an as whole words
        ("  Hello,   World!\t\n", "hello world"),  # punctuation + whitespace collapse
        ("The theory of theatres", "theory of theatres"),  # "the" inside words is kept
        ("Ana and Thea", "ana and thea"),  # "an"/"a"/"the" prefixes of names kept
        ("U.S.A.", "usa"),  # dots removed, letters joined
        ("the-end", "theend"),  # punctuation goes first, so no article is left to drop
        ("$1,000.50", "100050"),
        ("1–2", "1–2"),  # en dash is not ASCII punctuation: kept, as in the official script
        ("the", ""),
        ("", ""),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


# --- exact match and F1 --------------------------------------------------------------------


def test_exact_match_takes_the_best_gold_answer():
    answers = ["Broncos", "the Denver Broncos!"]
    assert exact_match("Denver Broncos", answers) == 1.0
    assert exact_match("denver  BRONCOS.", answers) == 1.0
    assert exact_match("Carolina Panthers", answers) == 0.0
    assert exact_match("Denver", answers) == 0.0


def test_f1_max_over_several_answers():
    # vs "Broncos": P = 1/2, R = 1/1 -> F1 = 2/3; vs "the Denver Broncos!": identical -> 1.0
    assert f1("Denver Broncos", ["Broncos", "the Denver Broncos!"]) == pytest.approx(1.0)
    assert f1("Denver Broncos", ["Broncos"]) == pytest.approx(2 / 3)


def test_f1_partial_overlap_exact_fraction():
    # prediction -> "cat sat on mat" (4 tokens), gold -> "cat on mat" (3 tokens), 3 in common
    # P = 3/4, R = 3/3, F1 = 2 * 3/4 * 1 / (3/4 + 1) = 1.5 / 1.75 = 6/7
    assert f1("The cat sat on the mat.", ["a cat on a mat"]) == pytest.approx(6 / 7)


def test_f1_counts_repeated_tokens_once_per_occurrence():
    # "x y y" vs "y y z": common = {y: 2}; P = 2/3, R = 2/3 -> F1 = 2/3
    assert f1("x y y", ["y y z"]) == pytest.approx(2 / 3)
    # "y y y" vs "y": common = {y: 1}; P = 1/3, R = 1 -> F1 = 2 * 1/3 / (4/3) = 1/2
    assert f1("y y y", ["y"]) == pytest.approx(0.5)


def test_no_overlap_and_empty_inputs():
    assert f1("Paris", ["London"]) == 0.0
    assert f1("", ["London"]) == 0.0
    assert exact_match("", ["London"]) == 0.0
    # retrieval-only questions have no answers: score 0 rather than fail
    assert f1("anything", []) == 0.0
    assert exact_match("anything", []) == 0.0
    # the official script's quirk: an answer that normalises to "" matches an empty prediction
    # for EM, while F1 stays 0 (no common tokens)
    assert exact_match("", ["The"]) == 1.0
    assert f1("", ["The"]) == 0.0


# --- support and faithfulness proxies -------------------------------------------------------


def test_answer_in_passages():
    passages = ["Super Bowl 50 was won by the Denver Broncos.", "Levi's Stadium, Santa Clara."]
    assert answer_in_passages(["denver broncos"], passages)
    assert answer_in_passages(["Panthers", "Santa Clara"], passages)  # any of the answers
    assert not answer_in_passages(["Carolina Panthers"], passages)
    assert not answer_in_passages(["Bronco"], passages)  # not a substring of a longer word
    assert not answer_in_passages(["the"], passages)  # normalises to nothing
    assert not answer_in_passages([], passages)
    assert not answer_in_passages(["Broncos"], [])


def test_prediction_supported():
    passages = ["BERT uses a masked language model objective.", "It was released in 2018."]
    assert prediction_supported("a Masked Language Model", passages)
    assert prediction_supported("2018", passages)
    assert not prediction_supported("2019", passages)
    assert not prediction_supported("", passages)
    assert not prediction_supported("  the ", passages)  # empty after normalisation


# --- retrieval metrics ---------------------------------------------------------------------


def test_dedupe_keeps_first_occurrence():
    assert dedupe(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_recall_at_k_counts_each_document_once():
    gold = {"a": 1, "b": 1}
    # deduplicated: [a, b] -> both relevant docs in the top 2 (without dedup: [a, a] = 1/2)
    assert recall_at_k(["a", "a", "a", "b"], gold, k=2) == 1.0
    assert recall_at_k(["a", "a", "a", "b"], gold, k=1) == 0.5
    assert recall_at_k(["x", "y", "a"], gold, k=2) == 0.0
    assert recall_at_k(["x", "y", "a"], gold, k=3) == 0.5
    # grade 0 is judged non-relevant: only "a" counts, found at rank 1
    assert recall_at_k(["a"], {"a": 1, "z": 0}, k=1) == 1.0
    assert recall_at_k(["a"], {}, k=5) == 0.0


def test_mrr_at_k_with_duplicates():
    # deduplicated: [x, y, a] -> first relevant at rank 3 (without dedup it would be rank 4)
    assert mrr_at_k(["x", "x", "y", "a"], {"a": 1}) == pytest.approx(1 / 3)
    assert mrr_at_k(["a", "b"], {"a": 1, "b": 1}) == 1.0
    assert mrr_at_k(["x", "x", "y", "a"], {"a": 1}, k=2) == 0.0
    assert mrr_at_k(["z", "a"], {"z": 0, "a": 2}) == 0.5  # grade 0 is not relevant
    assert mrr_at_k([], {"a": 1}) == 0.0


def test_ndcg_graded():
    gold = {"d1": 2, "d2": 1, "d3": 0}
    # ideal order d1, d2: IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.6309298 = 2.6309298
    # ranked d3, d1, d2: DCG = 0/log2(2) + 2/log2(3) + 1/log2(4) = 0 + 1.2618595 + 0.5
    #                        = 1.7618595 -> nDCG = 1.7618595 / 2.6309298 = 0.6696718
    assert ndcg_at_k(["d3", "d1", "d2"], gold) == pytest.approx(0.6696718, abs=1e-6)
    # ranked d2, x, d1: DCG = 1/1 + 0/log2(3) + 2/log2(4) = 1 + 0 + 1 = 2.0
    #                   -> nDCG = 2 / 2.6309298 = 0.7601875
    assert ndcg_at_k(["d2", "x", "d1"], gold) == pytest.approx(0.7601875, abs=1e-6)
    # cut at k=2: DCG@2 = 0 + 2/log2(3) = 1.2618595; IDCG@2 = 2.6309298 -> 0.4796249
    assert ndcg_at_k(["d3", "d1", "d2"], gold, k=2) == pytest.approx(0.4796249, abs=1e-6)
    assert ndcg_at_k(["d3", "d1", "d2"], gold, k=1) == 0.0
    assert ndcg_at_k(["d1", "d2"], gold) == pytest.approx(1.0)


def test_ndcg_with_duplicates_never_exceeds_one():
    # deduplicated: [d1, d2] = the ideal order -> 1.0. Without dedup, [d1, d1] would give
    # DCG@2 = 2 + 2/log2(3) = 3.26 > IDCG = 2.63, an nDCG above 1.
    assert ndcg_at_k(["d1", "d1", "d2"], {"d1": 2, "d2": 1}, k=2) == pytest.approx(1.0)


def test_ndcg_ideal_uses_all_gold_grades():
    # three relevant docs (grades 1,1,1), only one retrieved at rank 1:
    # DCG = 1; IDCG = 1 + 1/log2(3) + 1/log2(4) = 1 + 0.6309298 + 0.5 = 2.1309298
    # -> nDCG = 1 / 2.1309298 = 0.4692787
    gold = {"a": 1, "b": 1, "c": 1}
    assert ndcg_at_k(["a", "x"], gold) == pytest.approx(0.4692787, abs=1e-6)
    assert ndcg_at_k(["x"], {}) == 0.0


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k must be at least 1"):
        recall_at_k(["a"], {"a": 1}, k=0)


# --- percentile ----------------------------------------------------------------------------


def test_percentile_linear_interpolation():
    values = [4.0, 1.0, 3.0, 2.0]  # sorted: 1 2 3 4
    assert percentile(values, 50) == 2.5  # position 3 * 0.5 = 1.5 -> 2 + 0.5 * (3 - 2)
    assert percentile(values, 95) == pytest.approx(3.85)  # position 2.85 -> 3 + 0.85 * 1
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile([10, 20, 30], 50) == 20  # exact middle element
    assert percentile([7.5], 95) == 7.5
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 101)
