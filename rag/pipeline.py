"""Retrieve, then generate: the whole question-to-answer path, timed.

`compare` gives the very same retrieved passages to several generators, which is the
point of this project: one contrast between the two generator families, measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .config import DEFAULT_K, DEFAULT_MAX_NEW_TOKENS, DEFAULT_TEMPERATURE
from .documents import Passage
from .errors import RagError
from .generators.base import Answer, BudgetError, Generator, ModelNotAvailable
from .index import Index
from .retrieve import Retriever

# A generator label may end in modes, so `compare` and `bench` can run one model several ways
# side by side: "smollm2", "smollm2+extractive", "flan-t5-small+fid+extractive".
MODES = ("fid", "extractive")


@dataclass
class GenerationSettings:
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    seed: int | None = None
    extractive: bool = False  # constrain the answer to a span of the passages given
    fid: bool = False  # encoder-decoder: Fusion-in-Decoder, one encoder pass per passage

    def __post_init__(self):
        import math

        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise RagError(f"--temperature must be a finite number of at least 0, got {self.temperature}")


@dataclass
class Pipeline:
    """An index and a generator; `ask` retrieves k passages and answers from them."""

    index: Index
    generator: Generator
    k: int = DEFAULT_K
    settings: GenerationSettings | None = None
    retriever: Retriever | str | None = None  # hybrid by default; see `rag.retrieve`

    def retrieve(self, question: str, k: int | None = None) -> tuple[list[Passage], float]:
        start = time.perf_counter()
        passages = self.index.search(question, k or self.k, retriever=self.retriever)
        return passages, (time.perf_counter() - start) * 1000

    def ask(self, question: str, *, k: int | None = None, on_text: Callable[[str], None] | None = None) -> Answer:
        passages, retrieval_ms = self.retrieve(question, k)
        answer = answer_from(self.generator, question, passages, self.settings, on_text=on_text)
        answer.timings["retrieval_ms"] = retrieval_ms
        return answer


def answer_from(
    generator: Generator,
    question: str,
    passages: list[Passage],
    settings: GenerationSettings | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Answer:
    settings = settings or GenerationSettings()
    modes = {m: True for m in MODES if getattr(settings, m)}  # generators without modes still work
    return generator.generate(
        question,
        passages,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        seed=settings.seed,
        on_text=on_text,
        **modes,
    )


def split_label(label: str) -> tuple[str, set[str]]:
    """("flan-t5-small", {"fid", "extractive"}) for "flan-t5-small+fid+extractive": the generator
    to load and its modes (a "+word" that is not a mode stays part of the name)."""
    name, modes = label, set()
    while "+" in name:
        head, _, mode = name.rpartition("+")
        if mode not in MODES or not head:
            break
        name, modes = head, modes | {mode}
    return name, modes


def label_for(name: str, modes: set[str] | Sequence[str]) -> str:
    return name + "".join(f"+{m}" for m in MODES if m in modes)


def with_modes(labels: Sequence[str], extractive: bool = False, fid: bool = False) -> list[str]:
    """The labels to run: as given and, for each mode asked for, each one's twin in that mode
    right after it (side by side), without repeats. A decoder-only model's +fid twin is refused
    when it runs (one line), so it shows in the results as not run, with the reason."""
    from rag.readers.loading import is_reader

    out: list[str] = []
    for label in labels:
        name, modes = split_label(label)
        variants = [set(modes)]
        if is_reader(name):  # a reader always points at a span: no twins
            out.extend([label] if label not in out else [])
            continue
        if fid:
            variants += [v | {"fid"} for v in variants]
        if extractive:
            variants += [v | {"extractive"} for v in variants]
        out.extend(t for t in (label_for(name, v) for v in variants) if t not in out)
    return out


def settings_for(label: str, settings: GenerationSettings | None) -> tuple[str, GenerationSettings]:
    """The generator name to load and the settings to answer with, for one label."""
    from dataclasses import replace

    name, modes = split_label(label)
    settings = settings or GenerationSettings()
    return name, replace(settings, **{m: getattr(settings, m) or m in modes for m in MODES})


def default_comparison() -> list[str]:
    """For `rag compare`: one answerer of each family whose weights are here, best first, and every
    model rag trained and ships (all three families from the same MiniLM, the contrast rag is for)."""
    from .answerers import list_answerers
    from .generators.presets import PRESETS

    chosen: dict[str, str] = {}
    for info in list_answerers():
        if info.available and info.family not in chosen:
            chosen[info.family] = info.name
    trained = [
        info.name
        for info in list_answerers()
        if info.available and getattr(PRESETS.get(info.name), "packaged", None) and info.name not in chosen.values()
    ]
    return list(chosen.values()) + trained


@dataclass
class Comparison:
    """One generator's outcome in a comparison: an answer, or why it could not run."""

    name: str
    answer: Answer | None = None
    error: str | None = None
    load_ms: float = 0.0


def compare(
    index: Index,
    question: str,
    generator_names: Sequence[str],
    *,
    k: int = DEFAULT_K,
    settings: GenerationSettings | None = None,
    load: Callable[[str], Generator] | None = None,
    retriever: Retriever | str | None = None,
) -> tuple[list[Passage], float, list[Comparison]]:
    """Retrieve once, then let each generator answer from the same passages (a name ending in
    "+extractive" answers in extractive mode).

    A generator whose weights are missing is reported with its one-line reason; the others still run.
    """
    from .answerers import load_answerer

    load = load or load_answerer
    start = time.perf_counter()
    passages = index.search(question, k, retriever=retriever)
    retrieval_ms = (time.perf_counter() - start) * 1000
    results = []
    for label in generator_names:
        name, label_settings = settings_for(label, settings)
        start = time.perf_counter()
        try:
            generator = load(name)
        except ModelNotAvailable as e:
            results.append(Comparison(label, error=str(e)))
            continue
        load_ms = (time.perf_counter() - start) * 1000
        try:
            answer = answer_from(generator, question, passages, label_settings)
        except BudgetError as e:
            results.append(Comparison(label, error=str(e), load_ms=load_ms))
            continue
        answer.timings["retrieval_ms"] = retrieval_ms
        results.append(Comparison(label, answer=answer, load_ms=load_ms))
    return passages, retrieval_ms, results
