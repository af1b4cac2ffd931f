"""SpanReader: reads every given passage and points at the best span, or says it is not there.

Each passage is cut into question + passage windows (long ones strided), all windows go through
the span head in length-sorted batches, and spans are compared across every window of every
passage (`rag.readers.spans`). When no span beats the no-answer score by the model's calibrated
margin (`rag-reader.json`, chosen on the held-in split), the answer is "Not in the documents."
with `Answer.found` False; the best span is still in `Answer.candidates`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.answers import ENCODER_ONLY, WHOLE, Answer, BudgetItem, ModeNotSupported, Span
from rag.documents import Passage
from rag.readers.base import NOT_FOUND
from rag.readers.features import MAX_LENGTH, STRIDE, pad, windows
from rag.readers.spans import MAX_ANSWER_TOKENS, Candidate, best_spans

BATCH = 16  # windows per forward pass, unless the backend says otherwise (`batch`)


@dataclass
class Reading:
    """What the span head made of a question and its passages."""

    candidates: list[Candidate]
    null_score: float
    margin: float
    windows: int
    tokens: int = 0

    @property
    def found(self) -> bool:
        return bool(self.candidates) and self.candidates[0].score - self.null_score >= self.margin


class SpanReader:
    """An encoder-only reader over any logits backend (`rag.readers.backends`)."""

    family = ENCODER_ONLY
    questions_trained: int | None = None  # set from a trained reader's rag-reader.json

    def __init__(
        self,
        name: str,
        tokenizer,
        logits: Callable,
        *,
        margin: float = float("-inf"),
        max_length: int = MAX_LENGTH,
        stride: int = STRIDE,
        max_answer_tokens: int = MAX_ANSWER_TOKENS,
        pad_id: int = 0,
        top: int = 5,
    ) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.logits = logits
        self.margin = margin
        self.max_length = max_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.pad_id = pad_id
        self.top = top
        self.context_window = max_length
        self.runtime = getattr(logits, "runtime", "")
        self.dtype = getattr(logits, "dtype", "")

    def read(self, question: str, texts: Sequence[str]) -> Reading:
        """Score spans of `texts` for `question` (no abstention decided here: see `Reading.found`)."""
        if not texts:
            return Reading([], float("-inf"), self.margin, 0)
        found = windows(
            self.tokenizer, [question] * len(texts), list(texts), max_length=self.max_length, stride=self.stride
        )
        order = sorted(range(len(found)), key=lambda i: len(found[i]))
        starts: list = [None] * len(found)
        ends: list = [None] * len(found)
        size = getattr(self.logits, "batch", BATCH)
        for b in range(0, len(order), size):
            rows = order[b : b + size]
            s, e = self.logits(pad([found[i] for i in rows], self.pad_id))
            for r, i in enumerate(rows):
                starts[i], ends[i] = s[r], e[r]
        candidates, null = best_spans(found, starts, ends, texts, top=self.top, max_tokens=self.max_answer_tokens)
        return Reading(candidates, null, self.margin, len(found), sum(len(w) for w in found))

    def generate(
        self,
        question: str,
        passages: list[Passage],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        seed: int | None = None,
        on_text: Callable[[str], None] | None = None,
        extractive: bool = False,
        fid: bool = False,
    ) -> Answer:
        """Answer by pointing: the best span of the passages, cited; generation settings do not apply."""
        if fid:
            raise ModeNotSupported(f"{self.name} is {ENCODER_ONLY}: --fid needs an encoder-decoder model")
        start = time.perf_counter()
        reading = self.read(question, [p.text for p in passages])
        seconds = time.perf_counter() - start
        budget = [BudgetItem(p.citation, rank, WHOLE, 0) for rank, p in enumerate(passages, start=1)]
        span = None
        if reading.found:
            best = reading.candidates[0]
            text = best.text
            span = Span(best.passage, best.start, best.end, passages[best.passage].citation)
        else:
            text = NOT_FOUND
        if on_text is not None:
            on_text(text)
        above = [round(c.score - reading.null_score, 4) for c in reading.candidates]  # over the no-answer score
        return Answer(
            question=question,
            text=text,
            generator=self.name,
            family=ENCODER_ONLY,
            passages=list(passages),
            budget=budget,
            prompt_tokens=reading.tokens,
            output_tokens=0,
            # generation_ms: the answering step's time under the name every table reads, reading here
            timings={"read_ms": seconds * 1000, "generation_ms": seconds * 1000, "total_ms": seconds * 1000},
            extractive=True,
            runtime=self.runtime,
            dtype=self.dtype,
            span=span,
            questions_trained=self.questions_trained,
            found=reading.found,
            score=above[0] if above else None,
            candidates=[
                {**c.to_dict(), "score": gap, "citation": passages[c.passage].citation}
                for c, gap in zip(reading.candidates, above)
            ],
        )
