"""`rag bench --ray`: questions answered by Ray actors, one loaded generator or reader per actor.

The driver keeps everything else: retrieval, the resume and prompt keys, and the one
results.jsonl it appends to, in the questions' order. Decoding is greedy, so an actor's answer is
the one a local run gives. Each actor reports its load time and peak memory; the session records
the first actor's load time and the largest peak, each being one process with one model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rag.cluster import RayOptions, connect
from rag.documents import Passage


class AnswerActor:
    """One answering worker: loads the answerer once, answers one question per call."""

    def __init__(self, name: str, settings) -> None:
        from rag.answerers import load_answerer
        from rag.bench.answerer import Answerer

        # Threads: Ray sets OMP_NUM_THREADS to the actor's one CPU, which torch follows.
        self.answerer = Answerer(load_answerer, name, settings)

    def describe(self) -> dict:
        a = self.answerer
        return {"key": a.key, "info": a.info, "family": a.family, "load_s": a.load_s}

    def answer(self, question: str, offered: list[Passage]) -> tuple[object, str | None]:
        return next(self.answerer.answer_all([(question, offered)]))

    def measured(self) -> dict:
        return self.answerer.measured()


class RayAnswerer:
    """`rag.bench.answerer.Answerer` over `options.workers` actors (raises ModelNotAvailable
    as a local load would)."""

    def __init__(self, options: RayOptions, name: str, settings) -> None:
        from rag.generators import ModelNotAvailable

        self.ray = connect(options)
        remote = self.ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(AnswerActor)
        self.actors = [remote.remote(name, settings) for _ in range(max(options.workers, 1))]
        try:
            described = self.ray.get([actor.describe.remote() for actor in self.actors])
        except self.ray.exceptions.RayActorError as e:
            cause = getattr(e, "cause", None) or e
            self.close()
            if isinstance(cause, ModelNotAvailable) or "ModelNotAvailable" in str(e):
                raise ModelNotAvailable(str(cause).splitlines()[-1]) from None
            raise
        first = described[0]
        if any(d["key"] != first["key"] for d in described):
            self.close()
            raise RuntimeError(f"{name}: the actors loaded answerers with different prompt keys")
        self.key, self.info, self.family, self.load_s = first["key"], first["info"], first["family"], first["load_s"]

    def answer_all(self, items: Iterable[tuple[str, list[Passage]]]) -> Iterator[tuple[object, str | None]]:
        """Answers in the order of `items`, as each lands, with every actor busy."""
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        yield from pool.map(lambda actor, item: actor.answer.remote(*item), list(items))

    def measured(self) -> dict:
        each = self.ray.get([actor.measured.remote() for actor in self.actors])
        peak = max(each, key=lambda m: m["peak_rss_mb"])
        return {**peak, "memory_method": f"{peak['memory_method']}; the largest of {len(each)} Ray actors"}

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
