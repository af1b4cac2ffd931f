"""Paired comparisons (rag/bench/paired.py) on hand-made records, and how the report shows them."""

from __future__ import annotations

import numpy as np
import pytest

from rag.bench.paired import NO_DIFFERENCE, bootstrap_interval, compare, compare_all, verdict
from rag.bench.plots import pair_points
from rag.bench.report import markdown, paired_rows, text_table


def records(scores: dict[str, tuple[float, float]]) -> list[dict]:
    """question id -> (em, f1) as results.jsonl records."""
    return [{"question_id": q, "em": em, "f1": f1, "error": None} for q, (em, f1) in scores.items()]


# A is right on q1..q8, B on q1..q2 only: EM differences 0,0,1,1,1,1,1,1 -> mean 6/8 = 0.75.
A = records({f"q{i}": (1.0, 1.0) for i in range(1, 9)})
B = records({**{f"q{i}": (1.0, 1.0) for i in (1, 2)}, **{f"q{i}": (0.0, 0.5) for i in range(3, 9)}})


def test_known_difference_and_its_interval():
    p = compare("A", A, "B", B)
    assert p["questions"] == 8 and p["only_a"] == p["only_b"] == 0
    assert p["em"]["diff"] == pytest.approx(6 / 8)
    assert p["f1"]["diff"] == pytest.approx(6 * 0.5 / 8)  # F1 differences: 0, 0, then six of 1/2
    for metric in ("em", "f1"):
        m = p[metric]
        assert m["low"] <= m["diff"] <= m["high"]
        assert m["low"] > 0 and m["verdict"] == "A higher"  # 6 of 8 questions favour A, none favour B
    # the largest possible mean of a resample is 1 (all drawn from the six ones), the smallest 0
    assert 0 < p["em"]["low"] < p["em"]["high"] <= 1
    assert (p["wins"], p["ties"], p["losses"]) == (6, 2, 0)
    assert (p["resamples"], p["seed"], p["confidence"]) == (1000, 0, 0.95)
    # swapped, the signs and the verdict turn round
    q = compare("B", B, "A", A)
    assert q["em"]["diff"] == pytest.approx(-6 / 8) and q["em"]["high"] == pytest.approx(-p["em"]["low"])
    assert q["em"]["verdict"] == "A higher" and (q["wins"], q["ties"], q["losses"]) == (0, 2, 6)


def test_identical_generators_give_exactly_zero():
    p = compare("A", A, "A again", [dict(r) for r in A])
    for metric in ("em", "f1"):
        assert (p[metric]["diff"], p[metric]["low"], p[metric]["high"]) == (0.0, 0.0, 0.0)
        assert p[metric]["verdict"] == NO_DIFFERENCE
    assert (p["wins"], p["ties"], p["losses"]) == (0, 8, 0)


def test_an_interval_holding_zero_is_no_measurable_difference():
    # one win and one loss of equal size: mean 0, and resamples on both sides of it
    a = records({"q1": (1.0, 1.0), "q2": (0.0, 0.0), "q3": (1.0, 0.4)})
    b = records({"q1": (0.0, 0.0), "q2": (1.0, 1.0), "q3": (1.0, 0.4)})
    p = compare("a", a, "b", b)
    assert p["em"]["low"] < 0 < p["em"]["high"] and p["em"]["verdict"] == NO_DIFFERENCE
    assert (p["wins"], p["ties"], p["losses"]) == (1, 1, 1)
    assert verdict(0.0, 0.2, "a", "b") == NO_DIFFERENCE  # an end at exactly 0 holds 0
    assert verdict(0.01, 0.2, "a", "b") == "a higher" and verdict(-0.2, -0.01, "a", "b") == "b higher"


def test_same_seed_same_interval_and_the_seed_matters():
    first, again = compare("A", A, "B", B), compare("A", A, "B", B)
    assert first == again
    # the records' order does not change the resampling (questions are sorted first)
    assert compare("A", A[::-1], "B", B[::-1]) == first
    diffs = np.array([0.13, -0.4, 0.9, 0.27, -0.05, 0.61, 0.33, -0.72, 0.18, 0.44])  # F1-like, many distinct means
    assert bootstrap_interval(diffs, seed=1) == bootstrap_interval(diffs, seed=1)
    assert bootstrap_interval(diffs, seed=1) != bootstrap_interval(diffs, seed=2)


def test_questions_answered_by_one_side_only_are_left_out():
    # B has not answered q7, q8 yet (an interrupted run) and answered q9 that A has not
    b = [r for r in B if r["question_id"] not in ("q7", "q8")] + records({"q9": (1.0, 1.0)})
    p = compare("A", A, "B", b)
    assert (p["questions"], p["only_a"], p["only_b"]) == (6, 2, 1)
    # on q1..q6: EM differences 0, 0, 1, 1, 1, 1 -> 4/6; q9 (B right, A absent) does not count against A
    assert p["em"]["diff"] == pytest.approx(4 / 6)
    assert (p["wins"], p["ties"], p["losses"]) == (4, 2, 0)
    assert compare("A", A, "C", records({"x": (1.0, 1.0)})) is None


def test_every_pair_in_order():
    c = records({f"q{i}": (0.0, 0.0) for i in range(1, 9)})
    pairs = compare_all({"A": A, "B": B, "C": c, "D": records({"other": (1.0, 1.0)})})
    assert [(p["a"], p["b"]) for p in pairs] == [("A", "B"), ("A", "C"), ("B", "C")]  # D shares no question


def test_pair_points_merge_equal_scores():
    a = {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 0.5}
    b = {"q1": 1.0, "q2": 1.0, "q3": 0.6666667, "q5": 1.0}
    # q4 and q5 were answered by one side only; q1 and q2 fall on one point
    assert pair_points(a, b) == [(0.0, 0.667, 1), (1.0, 1.0, 2)]


# --- the report ----------------------------------------------------------------------------------


def summary_with(pairs: list[dict]) -> dict:
    """The least of a summary that the tables and the report read."""
    return {
        "dataset": {"name": "mini", "format": "qa-jsonl", "questions": 8, "path": "mini/qa.jsonl", "documents": 4},
        "sample": {"questions": 8, "limit": None, "seed": 0},
        "settings": {
            "mode": "retrieved",
            "passages": 2,
            "ks": [1],
            "max_new_tokens": 6,
            "decoding": "greedy (temperature 0)",
            "generators": ["A", "B"],
        },
        "index": {
            "documents": 4,
            "chunks": 4,
            "chunk_tokens": 256,
            "overlap": 32,
            "embedder": "e",
            "index_type": "flat",
        },
        "retrieval": {"recall@1": 1.0, "latency_ms": {"p50": 1.0, "p95": 2.0, "n": 8}, "batch_ms_per_question": 0.5},
        "generators": [],
        "paired": pairs,
        "notes": [],
        "machine": {},
        "versions": {},
        "command": None,
        "started": "2025-01-01T00:00:00+00:00",
        "seconds": 1.0,
    }


def test_report_and_table_show_the_pairs():
    partial = compare("A", A, "B", [r for r in B if r["question_id"] != "q8"])
    same = compare("A", A, "A2", A)
    summary = summary_with([partial, same])
    rows = paired_rows(summary)
    assert rows[0][:4] == ["A", "B", "7", f"+{5 / 7:.3f}"]  # EM differences 0, 0, 1, 1, 1, 1, 1 over 7
    assert rows[0][5] == "A higher" and rows[0][-1] == "5/2/0"
    assert rows[1][3:6] == ["+0.000", "[+0.000, +0.000]", NO_DIFFERENCE]
    table = text_table(summary)
    assert "W/T/L (F1)" in table and NO_DIFFERENCE in table
    assert "A vs B: 7 questions in common (1 answered by A only, 0 by B only, left out)" in table
    report = markdown(summary)
    assert "## Paired comparisons" in report and "95% paired bootstrap interval (1,000 resamples" in report
    assert "| A | A2 | 8 | +0.000 | [+0.000, +0.000] | no measurable difference |" in report
    # no pairs (one generator, or retrieval only): no section
    assert "Paired" not in markdown(summary_with([])) and "W/T/L" not in text_table(summary_with([]))
