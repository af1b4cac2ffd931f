"""The build's stages on Ray (`rag index --ray`): the plan and the embed run on workers, the
driver keeps the one writer.

Files are listed on the driver. Planning (read, decode, chunk) runs as Ray Data tasks: workers
read each file where it lives (a path every node sees), or, with `ship`, the driver reads the
bytes and sends them. Embedding runs in an actor pool (`map_batches` with a callable class), one
model load per actor. Both stream their results back in order to this process, which records
them through the ledger exactly as a local build does (same checkpoints, same commit), so a
killed driver resumes from what was stored and a killed worker is retried by Ray. Large text
files that a local build streams a block at a time are planned on the driver, as locally.

Nothing here is imported unless `--ray` is asked for; Ray itself is an optional extra.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from ..cluster import RayOptions, connect
from .embed import Embedded, Runner, Work, embed_batch
from .plan import FilePlan, is_streamed, plan_one
from .settings import Settings
from .sources import Source

PLAN_BATCH = 16  # files per planning task


# -- plan -----------------------------------------------------------------------------------------

_TOKENIZERS: dict[tuple[str, str], object] = {}


def _tokenizer(name: str, backend: str):
    """The embedder's tokenizer, loaded once per worker process."""
    key = (name, backend)
    if key not in _TOKENIZERS:
        from ..embedders import load_embedder

        _TOKENIZERS[key] = load_embedder(name, backend).tokenizer
    return _TOKENIZERS[key]


def plan_batch(batch: dict, settings: bytes, name: str, backend: str) -> dict:
    """A planning task: each (source, old) of the batch -> its pickled `FilePlan`."""
    s: Settings = pickle.loads(settings)
    tokenizer = _tokenizer(name, backend)
    plans = []
    for item in batch["item"]:
        src, old = pickle.loads(item)
        said: list[str] = []
        fp = plan_one(src, old, s, tokenizer, warn=said.append)
        fp.warnings = said
        plans.append(pickle.dumps(fp))
    return {"plan": plans}


def planner(options: RayOptions, settings: Settings, name: str, backend: str, local: Callable) -> Callable:
    """Plans (source, old) pairs on Ray, in order; large streamed text files on the driver. Ray
    is joined only when some file is to be planned (an update with nothing changed starts none)."""

    def run(candidates: Iterable[tuple[Source, tuple | None]]) -> Iterator[tuple[Source, tuple | None, FilePlan]]:
        pairs = list(candidates)
        remote = [(i, src, old) for i, (src, old) in enumerate(pairs) if not is_streamed(src)]
        items = [{"item": pickle.dumps((_shipped(src) if options.ship else src, old))} for _, src, old in remote]
        planned: dict[int, FilePlan] = {}
        if items:
            ray = connect(options)
            ds = ray.data.from_items(items).map_batches(
                plan_batch,
                batch_size=PLAN_BATCH,
                fn_kwargs={"settings": pickle.dumps(settings), "name": name, "backend": backend},
                num_cpus=1,
                concurrency=max(options.workers, 1),
                batch_format="numpy",
            )
            rows = (pickle.loads(row["plan"]) for row in ds.iter_rows())
            planned = {i: fp for (i, _, _), fp in zip(remote, rows)}
        for i, (src, old) in enumerate(pairs):
            if i in planned:
                yield src, old, planned[i]
            else:
                yield from local([(src, old)])

    return run


def _shipped(src: Source) -> Source:
    """The source with its bytes read here (a file only the driver sees); a failure travels as its reason."""
    from ..errors import LoadError

    if src.file is None or src.problem is not None:
        return src
    try:
        return replace(src, data=src.read())
    except LoadError as e:
        return replace(src, problem=str(e))


# -- embed ----------------------------------------------------------------------------------------


class EmbedActor:
    """One embedding worker: loads the model once, embeds one slice per call."""

    def __init__(self, name: str, backend: str, batch_size: int, threads: int = 1) -> None:
        from ..embedders import load_embedder

        self.embedder = load_embedder(name, backend, batch_size=batch_size, notify=lambda message: None)
        if hasattr(self.embedder, "threads"):
            self.embedder.threads = threads  # ONNX Runtime: as many threads as the actor has CPUs
        else:
            import torch

            torch.set_num_threads(threads)

    def __call__(self, batch: dict) -> dict:
        fault = os.environ.get("RAG_RAY_FAULT_ONCE")  # tests: once armed, the next call kills its actor, once
        if fault and (Path(fault) / "arm").exists() and not (Path(fault) / "died").exists():
            (Path(fault) / "died").touch()
            os._exit(1)
        out = []
        for item in batch["item"]:
            shas, texts = pickle.loads(item)
            out.append(pickle.dumps(embed_batch(self.embedder, shas, texts)))
        return {"embedded": out}


def embed_runner(options: RayOptions, name: str, backend: str, batch_size: int) -> Runner:
    """Embeds the slices in an actor pool, in order (see `rag.build.embed.embed_pending`); Ray is
    joined only when there is something to embed."""

    def run(work: Work) -> Iterator[Embedded]:
        items = [{"item": pickle.dumps((shas, texts))} for shas, texts in work]
        if not items:
            return
        ray = connect(options)
        ds = ray.data.from_items(items).map_batches(
            EmbedActor,
            batch_size=1,
            fn_constructor_kwargs={"name": name, "backend": backend, "batch_size": batch_size},
            num_cpus=1,
            concurrency=max(options.workers, 1),
            batch_format="numpy",
            max_restarts=-1,
            max_task_retries=-1,
        )
        for row in ds.iter_rows():
            yield pickle.loads(row["embedded"])

    return run
