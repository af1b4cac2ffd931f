"""One loaded answerer (generator or reader) in this process, as the bench drives it: what it
is, how long it took to load, its peak memory, and its answers. `rag.bench.on_ray.RayAnswerer`
is the same over Ray actors, each holding one of these."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator

from rag.documents import Passage


class Answerer:
    """One loaded answerer in this process: what it is (`key`, `info`, `family`), its load time
    and memory, and its answers. `rag.bench.on_ray.RayAnswerer` is the same over actors."""

    def __init__(self, load: Callable[[str], object], name: str, settings) -> None:
        from rag.answerers import clear_loaded
        from rag.bench.resume import prompt_key
        from rag.bench.system import PeakMemory, model_info

        self.settings, self.memory = settings, PeakMemory()
        clear_loaded()  # a model loaded earlier in this process would make the load time 0
        gc.collect()
        self.memory.reset()
        self.baseline = self.memory.current_mb()
        started = time.perf_counter()
        self.generator = load(name)  # raises ModelNotAvailable
        self.load_s = time.perf_counter() - started
        self.family = getattr(self.generator, "family", None)
        self.key = prompt_key(
            self.generator, settings
        )  # answers made with another prompt or settings are answered again
        self.info = model_info(self.generator)

    def answer_all(self, items: Iterable[tuple[str, list[Passage]]]) -> Iterator[tuple[object, str | None]]:
        """(answer, None) or (None, why) per (question, offered passages), in order, as each lands."""
        from rag.generators import BudgetError
        from rag.pipeline import answer_from

        for question, offered in items:
            try:
                yield answer_from(self.generator, question, offered, self.settings), None
            except BudgetError as e:
                yield None, str(e)

    def measured(self) -> dict:
        return {
            "peak_rss_mb": round(self.memory.peak_mb(), 1),
            "baseline_rss_mb": None if self.baseline is None else round(self.baseline, 1),
            "memory_method": self.memory.method,
        }

    def close(self) -> None:
        from rag.answerers import clear_loaded

        del self.generator
        clear_loaded()  # free it before the next generator, so each peak is its own
        gc.collect()
