"""Paired comparisons of two generators on the same questions: is one measurably better?

Two generators' EM/F1 means differ by chance on a small sample. Because both answered the same
questions, the per-question differences carry the signal, and a paired bootstrap (resample the
questions, keep each question's pair together) gives an interval for the mean difference without
assuming a distribution. Pure numpy and seeded, so a report is reproducible to the last digit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np

RESAMPLES = 1000
CONFIDENCE = 0.95
SEED = 0  # one fixed seed: the same records always give the same intervals
METRICS = ("em", "f1")
NO_DIFFERENCE = "no measurable difference"


def scores_by_question(records: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    """question id -> {"em": ..., "f1": ...} for one generator's records (the last record wins).

    Records with an error (the prompt did not fit) keep their scores of 0, as in the generator
    table, so a pair's difference agrees with the difference of the table's means.
    """
    return {str(r["question_id"]): {m: float(r[m]) for m in METRICS} for r in records}


def bootstrap_interval(
    diffs: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile interval of the mean of `diffs` over `resamples` resamples of the questions."""
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(resamples, len(diffs)))].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def verdict(low: float, high: float, a: str, b: str) -> str:
    """What the interval says: no measurable difference when it holds 0, else who is higher."""
    if low <= 0 <= high:
        return NO_DIFFERENCE
    return f"{a} higher" if low > 0 else f"{b} higher"


def compare(
    a: str,
    records_a: Sequence[Mapping],
    b: str,
    records_b: Sequence[Mapping],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict | None:
    """Generator `a` minus generator `b` on the questions both answered; None when they share none.

    For EM and F1: the mean difference, its paired bootstrap interval and a verdict. Wins, ties
    and losses count questions where a's F1 is above, equal to or below b's.
    """
    sa, sb = scores_by_question(records_a), scores_by_question(records_b)
    common = sorted(set(sa) & set(sb))  # sorted: the resampling does not depend on record order
    if not common:
        return None
    entry: dict = {
        "a": a,
        "b": b,
        "questions": len(common),
        "only_a": len(sa) - len(common),
        "only_b": len(sb) - len(common),
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
    }
    for metric in METRICS:
        diffs = np.array([sa[q][metric] - sb[q][metric] for q in common], dtype=np.float64)
        low, high = bootstrap_interval(diffs, resamples, seed, confidence)
        entry[metric] = {"diff": float(diffs.mean()), "low": low, "high": high, "verdict": verdict(low, high, a, b)}
    f1_diffs = [sa[q]["f1"] - sb[q]["f1"] for q in common]
    entry["wins"] = sum(d > 0 for d in f1_diffs)
    entry["ties"] = sum(d == 0 for d in f1_diffs)
    entry["losses"] = sum(d < 0 for d in f1_diffs)
    return entry


def compare_all(records: Mapping[str, Sequence[Mapping]], **options) -> list[dict]:
    """Every pair of generators in the given order (a before b), skipping pairs with no common question."""
    pairs = (compare(a, records[a], b, records[b], **options) for a, b in combinations(records, 2))
    return [p for p in pairs if p is not None]
