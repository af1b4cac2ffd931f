"""How good a reader is on held-in questions, and the no-answer margin it should use.

Three readings per question: the gold paragraph alone; the passages the retriever returns
(answerable, if retrieval found the answer); and the retrieved passages with every passage of
the question's own article removed (unanswerable: nothing there is about it). F1 and EM are the
official SQuAD v1.1 ones. The no-answer margin is the largest that declines at most 10 % of the
readings whose passages hold the answer (`calibrate`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rag.metrics import exact_match, f1


@dataclass
class Scored:
    """One reading: the best span's text, its F1/EM, and its margin over no-answer."""

    f1: float
    em: float
    gap: float  # best span score - no-answer score (-inf: no span)
    seconds: float


@dataclass
class ReaderEval:
    gold: list[Scored] = field(default_factory=list)
    retrieved: list[Scored] = field(default_factory=list)
    unanswerable: list[Scored] = field(default_factory=list)

    def summary(self, margin: float | None = None) -> dict:
        """Means (span always given) and, at `margin`, what abstaining does."""

        def mean(values):
            return round(statistics.fmean(values), 4) if values else None

        out = {
            "questions": len(self.gold),
            "gold_f1": mean([s.f1 for s in self.gold]),
            "gold_em": mean([s.em for s in self.gold]),
            "retrieved_f1": mean([s.f1 for s in self.retrieved]),
            "retrieved_em": mean([s.em for s in self.retrieved]),
            "read_ms_p50_retrieved": round(1000 * statistics.median([s.seconds for s in self.retrieved]), 1)
            if self.retrieved
            else None,
        }
        if margin is not None:
            out.update(
                {
                    "margin": round(margin, 4),
                    "retrieved_f1_abstaining": mean([s.f1 if s.gap >= margin else 0.0 for s in self.retrieved]),
                    "abstain_answerable_gold": mean([float(s.gap < margin) for s in self.gold]),
                    "abstain_answerable_retrieved": mean([float(s.gap < margin) for s in self.retrieved]),
                    "abstain_unanswerable": mean([float(s.gap < margin) for s in self.unanswerable]),
                }
            )
        return out


FALSE_ABSTAIN = 0.10  # the share of answerable readings the reader may decline, at most


def calibrate(
    answerable: Sequence[Scored], unanswerable: Sequence[Scored], false_abstain: float = FALSE_ABSTAIN
) -> float:
    """The largest margin at which the reader declines at most `false_abstain` of the readings whose
    passages hold the answer: a user asking what the documents say is rarely told "not there",
    and as many unanswerable readings as that allows are declined (the rate is reported beside it).
    Measured against an equal-weight objective, which declined a quarter of answerable readings."""
    gaps = sorted(s.gap for s in answerable)
    if not gaps or not unanswerable:
        return float("-inf")
    allowed = int(false_abstain * len(gaps))  # this many answerable readings may fall below the margin
    return float(gaps[allowed])  # readings with gap < margin are declined: exactly `allowed` of them (ties aside)


def read_scored(reader, question: str, texts: Sequence[str], answers: Sequence[str]) -> Scored:
    start = time.perf_counter()
    reading = reader.read(question, texts)
    seconds = time.perf_counter() - start
    if not reading.candidates:
        return Scored(0.0, 0.0, float("-inf"), seconds)
    best = reading.candidates[0]
    return Scored(f1(best.text, answers), exact_match(best.text, answers), best.score - reading.null_score, seconds)


def evaluate(
    reader,
    questions: Sequence,  # rag.train.data.Example
    retrieved: dict[str, list[str]] | None = None,
    unanswerable: dict[str, list[str]] | None = None,
    progress: Callable | None = None,
) -> ReaderEval:
    """Read every held-in question three ways (see the module's docstring)."""
    result = ReaderEval()
    items = progress(questions) if progress else questions
    for q in items:
        result.gold.append(read_scored(reader, q.question, [q.context], q.answers))
        if retrieved is not None:
            result.retrieved.append(read_scored(reader, q.question, retrieved.get(q.id, []), q.answers))
        if unanswerable is not None:
            result.unanswerable.append(read_scored(reader, q.question, unanswerable.get(q.id, []), q.answers))
    return result
